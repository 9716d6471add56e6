/**
 * Label selectors with Kubernetes' grammar and meaning
 * (apimachinery/pkg/labels/selector.go): comma-separated requirements, all of
 * which must hold —
 *   k=v  k==v   label k is v
 *   k!=v        label k is not v (or k is absent)
 *   k in (a,b)  label k is a or b
 *   k notin (a) label k is not a (or k is absent)
 *   k           label k is present;   !k   label k is absent
 * One pass over at most MAX_SELECTOR_LENGTH characters (linear, no
 * backtracking); a mistake is reported with the 0-based position where it is.
 * `toSql` compiles to jsonb operators on instances.labels (containment for
 * equality, which the GIN index serves); `matches` is the same rule in
 * memory, for checks that have the labels at hand.
 */
import { sql, type SQL } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import { labelKeyProblem, labelValueProblem } from "../../protocol/labels.ts";

export const MAX_SELECTOR_LENGTH = 1024;
export const MAX_REQUIREMENTS = 64;
export const MAX_VALUES = 100;

export type Requirement =
  | { op: "eq" | "neq"; key: string; value: string }
  | { op: "in" | "notin"; key: string; values: string[] }
  | { op: "exists" | "notexists"; key: string };

export class SelectorError extends Error {
  constructor(readonly position: number, message: string) {
    super(`${message} at position ${position}`);
    this.name = "SelectorError";
  }
}

type Token =
  | { kind: "word"; text: string; at: number }
  | { kind: "op"; text: "=" | "==" | "!=" | "!" | "(" | ")" | ","; at: number }
  | { kind: "end"; at: number };

const WORD_CHAR = /[A-Za-z0-9\-_./]/;

function lex(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const ch = input[i]!;
    if (ch === " " || ch === "\t") { i++; continue; }
    if (ch === "!" && input[i + 1] === "=") { tokens.push({ kind: "op", text: "!=", at: i }); i += 2; continue; }
    if (ch === "=" && input[i + 1] === "=") { tokens.push({ kind: "op", text: "==", at: i }); i += 2; continue; }
    if (ch === "=" || ch === "!" || ch === "(" || ch === ")" || ch === ",") { tokens.push({ kind: "op", text: ch, at: i }); i++; continue; }
    if (WORD_CHAR.test(ch)) {
      const start = i;
      while (i < input.length && WORD_CHAR.test(input[i]!)) i++;
      tokens.push({ kind: "word", text: input.slice(start, i), at: start });
      continue;
    }
    throw new SelectorError(i, `unexpected character ${JSON.stringify(ch)}`);
  }
  tokens.push({ kind: "end", at: input.length });
  return tokens;
}

/** Parses a selector; throws SelectorError. The empty selector is refused (it would pick every instance by accident). */
export function parseSelector(input: string): Requirement[] {
  if (input.length > MAX_SELECTOR_LENGTH) throw new SelectorError(MAX_SELECTOR_LENGTH, `selector longer than ${MAX_SELECTOR_LENGTH} characters`);
  const tokens = lex(input);
  let pos = 0;
  const peek = () => tokens[pos]!;
  const take = () => tokens[pos++]!;
  const describe = (t: Token) => (t.kind === "end" ? "end of selector" : JSON.stringify(t.text));
  const key = (): string => {
    const t = take();
    if (t.kind !== "word") throw new SelectorError(t.at, `expected a label key, found ${describe(t)}`);
    const problem = labelKeyProblem(t.text);
    if (problem) throw new SelectorError(t.at, problem);
    return t.text;
  };
  const value = (): string => {
    const t = peek();
    // An empty value is a valid label value (`k=` selects k with the empty value).
    if (t.kind !== "word") return "";
    pos++;
    const problem = labelValueProblem(t.text);
    if (problem) throw new SelectorError(t.at, problem);
    return t.text;
  };
  const expect = (text: string) => {
    const t = take();
    if (t.kind !== "op" || t.text !== text) throw new SelectorError(t.at, `expected ${JSON.stringify(text)}, found ${describe(t)}`);
  };
  const valueSet = (): string[] => {
    expect("(");
    const values: string[] = [];
    for (;;) {
      const t = peek();
      if (t.kind !== "word") throw new SelectorError(t.at, `expected a value, found ${describe(t)}`);
      values.push(value());
      if (values.length > MAX_VALUES) throw new SelectorError(t.at, `more than ${MAX_VALUES} values in one set`);
      const next = take();
      if (next.kind === "op" && next.text === ")") return values;
      if (!(next.kind === "op" && next.text === ",")) throw new SelectorError(next.at, `expected "," or ")", found ${describe(next)}`);
    }
  };

  const out: Requirement[] = [];
  for (;;) {
    const first = peek();
    if (first.kind === "end") throw new SelectorError(first.at, out.length === 0 ? "empty selector" : "expected a requirement after \",\"");
    if (first.kind === "op" && first.text === "!") {
      pos++;
      out.push({ op: "notexists", key: key() });
    } else {
      const k = key();
      const t = peek();
      if (t.kind === "op" && (t.text === "=" || t.text === "==" || t.text === "!=")) {
        pos++;
        out.push({ op: t.text === "!=" ? "neq" : "eq", key: k, value: value() });
      } else if (t.kind === "word" && (t.text === "in" || t.text === "notin")) {
        pos++;
        out.push({ op: t.text, key: k, values: valueSet() });
      } else {
        out.push({ op: "exists", key: k });
      }
    }
    if (out.length > MAX_REQUIREMENTS) throw new SelectorError(first.at, `more than ${MAX_REQUIREMENTS} requirements`);
    const sep = take();
    if (sep.kind === "end") return out;
    if (!(sep.kind === "op" && sep.text === ",")) throw new SelectorError(sep.at, `expected "," or end of selector, found ${describe(sep)}`);
  }
}

/** Whether `labels` satisfy every requirement. */
export function matches(requirements: readonly Requirement[], labels: Readonly<Record<string, string>>): boolean {
  return requirements.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const v = has ? labels[r.key] : undefined;
    switch (r.op) {
      case "eq": return has && v === r.value;
      case "neq": return !has || v !== r.value;
      case "in": return has && r.values.includes(v!);
      case "notin": return !has || !r.values.includes(v!);
      case "exists": return has;
      case "notexists": return !has;
    }
  });
}

/** The requirements as one SQL condition on a jsonb labels column; every key and value is a bound parameter. */
export function toSql(requirements: readonly Requirement[], labels: AnyPgColumn | SQL): SQL {
  const parts = requirements.map((r): SQL => {
    switch (r.op) {
      case "eq": return sql`${labels} @> ${JSON.stringify({ [r.key]: r.value })}::jsonb`;
      case "neq": return sql`not (${labels} @> ${JSON.stringify({ [r.key]: r.value })}::jsonb)`;
      case "in": return sql`(${labels} ->> ${r.key}::text) in (${sql.join(r.values.map((v) => sql`${v}::text`), sql`, `)})`;
      case "notin": return sql`coalesce((${labels} ->> ${r.key}::text) not in (${sql.join(r.values.map((v) => sql`${v}::text`), sql`, `)}), true)`;
      case "exists": return sql`jsonb_exists(${labels}, ${r.key}::text)`;
      case "notexists": return sql`not jsonb_exists(${labels}, ${r.key}::text)`;
    }
  });
  return sql.join(parts.map((p) => sql`(${p})`), sql` and `);
}

/** A canonical spelling (requirements in the order given, sets as given): for display and audit rows. */
export function formatSelector(requirements: readonly Requirement[]): string {
  return requirements.map((r) => {
    switch (r.op) {
      case "eq": return `${r.key}=${r.value}`;
      case "neq": return `${r.key}!=${r.value}`;
      case "in": return `${r.key} in (${r.values.join(",")})`;
      case "notin": return `${r.key} notin (${r.values.join(",")})`;
      case "exists": return r.key;
      case "notexists": return `!${r.key}`;
    }
  }).join(",");
}
