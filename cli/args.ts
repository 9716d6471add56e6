/**
 * The command line, parsed once (node:util parseArgs) into a typed command;
 * anything wrong is a UsageError (exit 2) before a request is sent.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

export class UsageError extends Error {
  override name = "UsageError";
}

export type WaveTarget = number | string;
export type FailureBudget = { maxFailedInstances: number } | { maxFailedPercent: number };
export type Pause = { kind: "timed"; seconds: number } | { kind: "approval" };

/** Each deployment's post-switch analysis and rollback window (seconds); absent: the API's defaults (5 s, 60 s). */
export interface DeploymentTiming { analysisSeconds?: number; rollbackWindowSeconds?: number }

/** Where the flows come from: exactly one of a file, a stored version or (promote) another stage. */
export type Source = { flowsFile: string } | { versionId: string } | { fromStage: string };

export type Command =
  | { kind: "help"; topic?: string }
  | { kind: "login"; username?: string; passwordStdin: boolean; createKey?: string }
  | { kind: "instances-ls"; selector?: string }
  | { kind: "deploy"; instance: string; flowsFile: string; wait: boolean; timing: DeploymentTiming }
  | {
    kind: "rollout"; selector: string; source: { flowsFile: string } | { versionId: string }; wait: boolean;
    timing: DeploymentTiming; waves?: WaveTarget[]; parallelism?: number; failureBudget?: FailureBudget; onFailure?: "leave" | "rollback_wave"; pause?: Pause; description?: string;
  }
  | { kind: "promote"; pipeline: string; stage: string; source: Source; wait: boolean }
  | { kind: "status"; id: string }
  | { kind: "rollback"; deploymentId: string; wait: boolean };

export interface Globals {
  json: boolean;
  /** How long --wait waits, in milliseconds. */
  timeoutMs: number;
  intervalMs: number;
  url: string;
  apiKey?: string;
}

export const DEFAULT_URL = "http://127.0.0.1:8787";
const DEFAULT_TIMEOUT_S = 30 * 60;

type Options = NonNullable<ParseArgsConfig["options"]>;
const GLOBAL: Options = {
  json: { type: "boolean" },
  timeout: { type: "string" },
  interval: { type: "string" },
  url: { type: "string" },
  help: { type: "boolean", short: "h" },
};
const WAIT: Options = { wait: { type: "boolean" } };
const TIMING: Options = { analysis: { type: "string" }, "rollback-window": { type: "string" } };

/** Each command's own options and how many positionals it takes. */
const COMMANDS: Record<string, { options: Options; positionals: string[] }> = {
  login: { options: { username: { type: "string" }, "password-stdin": { type: "boolean" }, "create-key": { type: "string" } }, positionals: [] },
  "instances ls": { options: { selector: { type: "string" } }, positionals: [] },
  deploy: { options: { flows: { type: "string" }, ...TIMING, ...WAIT }, positionals: ["instance"] },
  rollout: {
    options: {
      selector: { type: "string" }, flows: { type: "string" }, version: { type: "string" }, waves: { type: "string" }, parallelism: { type: "string" },
      "failure-budget": { type: "string" }, "on-failure": { type: "string" }, pause: { type: "string" }, description: { type: "string" }, ...TIMING, ...WAIT,
    },
    positionals: [],
  },
  promote: { options: { flows: { type: "string" }, version: { type: "string" }, "from-stage": { type: "string" }, ...WAIT }, positionals: ["pipeline", "stage"] },
  status: { options: {}, positionals: ["id"] },
  rollback: { options: { ...WAIT }, positionals: ["deployment id"] },
};
export const COMMAND_NAMES = Object.keys(COMMANDS);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** "1,10%,100%" → [1, "10%", "100%"]: counts or percentages, as the rollout API takes them. */
export function parseWaves(text: string): WaveTarget[] {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === "")) throw new UsageError(`--waves: give targets separated by commas, e.g. 1,10%,100% (got "${text}")`);
  return parts.map((p) => {
    if (/^[1-9]\d{0,6}$/.test(p)) return Number(p);
    if (/^(100|[1-9]\d?)%$/.test(p)) return p;
    throw new UsageError(`--waves: "${p}" is neither an instance count (1, 5) nor a percentage (10%, 100%)`);
  });
}

/** "2" → at most 2 failed instances per wave; "10%" → at most 10 % of a wave. */
export function parseFailureBudget(text: string): FailureBudget {
  if (/^\d{1,6}$/.test(text)) return { maxFailedInstances: Number(text) };
  const pct = /^(\d{1,3}(?:\.\d+)?)%$/.exec(text);
  if (pct && Number(pct[1]) <= 100) return { maxFailedPercent: Number(pct[1]) };
  throw new UsageError(`--failure-budget: give a count (2) or a percentage (10%), got "${text}"`);
}

/** "30s", "10m", "1h" or plain seconds. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--${flag}: give a duration such as 90, 90s, 10m or 1h (got "${text}")`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h"];
  return Number(m[1]) * unit;
}

export function parsePause(text: string): Pause {
  if (text === "approval") return { kind: "approval" };
  return { kind: "timed", seconds: Math.round(parseDuration("pause", text) / 1000) };
}

function timingFrom(v: Record<string, string | boolean | undefined>): DeploymentTiming {
  const secs = (flag: string) => (typeof v[flag] === "string" ? Math.round(parseDuration(flag, v[flag] as string) / 1000) : undefined);
  const analysisSeconds = secs("analysis");
  const rollbackWindowSeconds = secs("rollback-window");
  return { ...(analysisSeconds !== undefined ? { analysisSeconds } : {}), ...(rollbackWindowSeconds !== undefined ? { rollbackWindowSeconds } : {}) };
}

function exactlyOne(what: string, given: Record<string, string | undefined>): [string, string] {
  const set = Object.entries(given).filter((e): e is [string, string] => e[1] !== undefined);
  if (set.length !== 1) throw new UsageError(`${what}: give exactly one of ${Object.keys(given).map((k) => `--${k}`).join(", ")}`);
  return set[0]!;
}

function globalsFrom(values: Record<string, unknown>, env: Record<string, string | undefined>): Globals {
  const url = (values.url as string | undefined) ?? env.REDFORGE_URL ?? DEFAULT_URL;
  try { new URL(url); } catch { throw new UsageError(`--url / REDFORGE_URL: "${url}" is not a URL`); }
  return {
    json: values.json === true,
    timeoutMs: values.timeout !== undefined ? parseDuration("timeout", values.timeout as string) : DEFAULT_TIMEOUT_S * 1000,
    intervalMs: values.interval !== undefined ? parseDuration("interval", values.interval as string) : 2000,
    url: url.replace(/\/+$/, ""),
    ...(env.REDFORGE_API_KEY ? { apiKey: env.REDFORGE_API_KEY } : {}),
  };
}

export function parseCommandLine(argv: readonly string[], env: Record<string, string | undefined> = {}): { command: Command; globals: Globals } {
  const name = argv[0] === "instances" ? `instances ${argv[1] ?? ""}`.trim() : argv[0];
  const rest = argv.slice(name?.split(" ").length ?? 0);
  if (!name || name === "help" || name === "--help" || name === "-h") {
    return { command: { kind: "help", ...(argv[1] ? { topic: argv[1] } : {}) }, globals: globalsFrom({}, env) };
  }
  const spec = COMMANDS[name];
  if (!spec) throw new UsageError(name === "instances" ? "instances: the subcommand is ls (redforge instances ls [--selector ...])" : `unknown command "${name}"; commands: ${COMMAND_NAMES.join(", ")}`);
  let parsed;
  try {
    parsed = parseArgs({ args: [...rest], options: { ...GLOBAL, ...spec.options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${name}: ${(err as Error).message}`);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const globals = globalsFrom(v, env);
  if (v.help) return { command: { kind: "help", topic: name }, globals };
  const pos = parsed.positionals;
  if (pos.length !== spec.positionals.length) {
    throw new UsageError(`${name}: expected ${spec.positionals.length ? spec.positionals.map((p) => `<${p}>`).join(" ") : "no arguments"}, got ${pos.length ? pos.join(" ") : "none"}`);
  }
  const s = (k: string) => v[k] as string | undefined;
  const wait = v.wait === true;
  switch (name) {
    case "login":
      return { command: { kind: "login", passwordStdin: v["password-stdin"] === true, ...(s("username") ? { username: s("username") } : {}), ...(s("create-key") ? { createKey: s("create-key") } : {}) }, globals };
    case "instances ls":
      return { command: { kind: "instances-ls", ...(s("selector") ? { selector: s("selector") } : {}) }, globals };
    case "deploy":
      if (!s("flows")) throw new UsageError("deploy: --flows <flows.json> is required");
      return { command: { kind: "deploy", instance: pos[0]!, flowsFile: s("flows")!, wait, timing: timingFrom(v) }, globals };
    case "rollout": {
      if (!s("selector")) throw new UsageError("rollout: --selector is required (e.g. --selector env=staging)");
      const [which, value] = exactlyOne("rollout", { flows: s("flows"), version: s("version") });
      const onFailure = s("on-failure");
      if (onFailure !== undefined && onFailure !== "leave" && onFailure !== "rollback_wave") throw new UsageError(`--on-failure: leave or rollback_wave, got "${onFailure}"`);
      const parallelism = s("parallelism");
      if (parallelism !== undefined && !/^[1-9]\d{0,2}$/.test(parallelism)) throw new UsageError(`--parallelism: a whole number from 1, got "${parallelism}"`);
      if (which === "version" && !UUID.test(value)) throw new UsageError(`--version: a flow version id (uuid), got "${value}"`);
      return {
        command: {
          kind: "rollout", selector: s("selector")!, source: which === "flows" ? { flowsFile: value } : { versionId: value }, wait, timing: timingFrom(v),
          ...(s("waves") ? { waves: parseWaves(s("waves")!) } : {}),
          ...(parallelism ? { parallelism: Number(parallelism) } : {}),
          ...(s("failure-budget") ? { failureBudget: parseFailureBudget(s("failure-budget")!) } : {}),
          ...(onFailure ? { onFailure } : {}),
          ...(s("pause") ? { pause: parsePause(s("pause")!) } : {}),
          ...(s("description") ? { description: s("description") } : {}),
        },
        globals,
      };
    }
    case "promote": {
      const [which, value] = exactlyOne("promote", { flows: s("flows"), version: s("version"), "from-stage": s("from-stage") });
      if (which === "version" && !UUID.test(value)) throw new UsageError(`--version: a flow version id (uuid), got "${value}"`);
      const source: Source = which === "flows" ? { flowsFile: value } : which === "version" ? { versionId: value } : { fromStage: value };
      return { command: { kind: "promote", pipeline: pos[0]!, stage: pos[1]!, source, wait }, globals };
    }
    case "status":
      if (!UUID.test(pos[0]!)) throw new UsageError(`status: give a deployment, rollout or promotion id (uuid), got "${pos[0]}"`);
      return { command: { kind: "status", id: pos[0]! }, globals };
    case "rollback":
      if (!UUID.test(pos[0]!)) throw new UsageError(`rollback: give a deployment id (uuid), got "${pos[0]}"`);
      return { command: { kind: "rollback", deploymentId: pos[0]!, wait }, globals };
  }
  throw new UsageError(`unknown command "${name}"`);
}

export const USAGE = `redforge — deploy Node-RED flows to a RedForge fleet from CI

Usage:
  redforge login [--username NAME --password-stdin] [--create-key NAME]
  redforge instances ls [--selector SELECTOR]
  redforge deploy <instance> --flows flows.json [--analysis 5s] [--rollback-window 60s] [--wait]
  redforge rollout --selector SELECTOR (--flows flows.json | --version ID) [--waves 1,10%,100%]
                   [--parallelism N] [--failure-budget N|N%] [--on-failure leave|rollback_wave]
                   [--pause 30s|approval] [--analysis 5s] [--rollback-window 60s] [--description TEXT] [--wait]
  redforge promote <pipeline> <stage> (--flows flows.json | --version ID | --from-stage STAGE) [--wait]
  redforge status <deployment | rollout | promotion id>
  redforge rollback <deployment id> [--wait]

Options for every command:
  --json            print one JSON document on stdout (progress goes to stderr)
  --timeout DUR     how long --wait waits (default 30m; 90, 90s, 10m, 1h)
  --interval DUR    how often --wait polls (default 2s)
  --url URL         the control plane (default $REDFORGE_URL or ${DEFAULT_URL})

A deployment completes once blue stops after its rollback window (default 60 s): deploy --wait waits for it.
A rollout's instance counts as done once it switched (its window runs on).

Environment: REDFORGE_API_KEY (an rf_ API key; required except for login), REDFORGE_URL.
Exit codes: 0 completed, 1 failed / rolled back / rejected, 2 usage, 3 timeout, 4 API or auth error.
See docs/ci.md.`;
