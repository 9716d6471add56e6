/**
 * Upstash-Retry-Delay: an arithmetic expression in milliseconds over the
 * variable `retried` (0 before the first retry), e.g. "pow(2, retried) * 1000".
 * Parsed once at publish so a bad expression is a 400, then evaluated per retry.
 * A tiny recursive-descent parser: no eval, nothing but numbers and the
 * functions QStash documents.
 */
import { ApiError } from "./types.ts";

type Node = (retried: number) => number;

const FUNCTIONS: Record<string, (...a: number[]) => number> = {
  pow: Math.pow,
  sqrt: Math.sqrt,
  abs: Math.abs,
  exp: Math.exp,
  floor: Math.floor,
  ceil: Math.ceil,
  round: Math.round,
  min: Math.min,
  max: Math.max,
};

export function compileRetryDelay(expr: string): Node {
  const tokens = expr.match(/\d+(?:\.\d+)?|[A-Za-z_]\w*|\S/g) ?? [];
  let i = 0;
  const fail = (why: string): never => {
    throw new ApiError(400, `invalid Upstash-Retry-Delay "${expr}": ${why}`);
  };
  const peek = () => tokens[i];
  const take = (t?: string) => {
    const tok = tokens[i++];
    if (tok === undefined || (t !== undefined && tok !== t)) fail(t ? `expected "${t}"` : "unexpected end");
    return tok!;
  };

  const sum = (): Node => {
    let left = product();
    while (peek() === "+" || peek() === "-") {
      const op = take();
      const l = left, r = product();
      left = op === "+" ? (n) => l(n) + r(n) : (n) => l(n) - r(n);
    }
    return left;
  };
  const product = (): Node => {
    let left = unary();
    while (peek() === "*" || peek() === "/" || peek() === "%") {
      const op = take();
      const l = left, r = unary();
      left = op === "*" ? (n) => l(n) * r(n) : op === "/" ? (n) => l(n) / r(n) : (n) => l(n) % r(n);
    }
    return left;
  };
  const unary = (): Node => {
    if (peek() === "-") {
      take();
      const inner = unary();
      return (n) => -inner(n);
    }
    return primary();
  };
  const primary = (): Node => {
    const tok = take();
    if (/^\d/.test(tok)) {
      const v = Number(tok);
      return () => v;
    }
    if (tok === "(") {
      const inner = sum();
      take(")");
      return inner;
    }
    if (tok === "retried") return (n) => n;
    const fn = FUNCTIONS[tok];
    if (!fn) return fail(`unknown name "${tok}"`);
    take("(");
    const args: Node[] = [];
    if (peek() !== ")") {
      args.push(sum());
      while (peek() === ",") {
        take(",");
        args.push(sum());
      }
    }
    take(")");
    return (n) => fn(...args.map((a) => a(n)));
  };

  const root = sum();
  if (i !== tokens.length) fail(`unexpected "${tokens[i]}"`);
  return root;
}

/** Delay in ms for the retry after `retried` earlier retries; negative or non-finite results become 0. */
export function evalRetryDelay(expr: string, retried: number): number {
  const v = compileRetryDelay(expr)(retried);
  return Number.isFinite(v) && v > 0 ? v : 0;
}
