/**
 * The redforge CLI without a server: the command line parsed into commands
 * (usage errors before any request), the exit codes a CI job branches on,
 * --wait printing each change once and giving up at --timeout, and main()
 * mapping usage, API and network failures onto exit codes 2 and 4.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseCommandLine, parseDuration, parseFailureBudget, parseWaves, UsageError } from "../../cli/args.ts";
import { readFlowsFile } from "../../cli/commands.ts";
import { EXIT, exitFor, isFinal } from "../../cli/exitCodes.ts";
import { rolloutLines, waitUntilFinal } from "../../cli/progress.ts";
import { main } from "../../cli/redforge.ts";

const ID = "0b9f4a3e-6f0c-4c1e-9a55-2f7f1d1f7c11";
const parse = (line: string, env: Record<string, string> = {}) => parseCommandLine(line.split(" ").filter(Boolean), env);
const usage = (line: string) => expect(() => parse(line)).toThrow(UsageError);

describe("redforge's command line", () => {
  it("parses each command with its options", () => {
    expect(parse("instances ls --selector env=prod,region!=eu").command).toEqual({ kind: "instances-ls", selector: "env=prod,region!=eu" });
    expect(parse("deploy edge-1 --flows f.json --wait").command).toEqual({ kind: "deploy", instance: "edge-1", flowsFile: "f.json", wait: true, timing: {} });
    expect(parse("rollout --selector env=staging --flows f.json --waves 1,10%,100% --failure-budget 10% --on-failure leave --pause approval --parallelism 3 --wait").command).toEqual({
      kind: "rollout", selector: "env=staging", source: { flowsFile: "f.json" }, wait: true, waves: [1, "10%", "100%"],
      failureBudget: { maxFailedPercent: 10 }, onFailure: "leave", pause: { kind: "approval" }, parallelism: 3, timing: {},
    });
    expect(parse("deploy edge-1 --flows f.json --analysis 1 --rollback-window 2m").command).toMatchObject({ timing: { analysisSeconds: 1, rollbackWindowSeconds: 120 } });
    expect(parse(`rollout --selector a=b --version ${ID}`).command).toMatchObject({ source: { versionId: ID }, wait: false });
    expect(parse("promote web prod --from-stage staging --wait").command).toEqual({ kind: "promote", pipeline: "web", stage: "prod", source: { fromStage: "staging" }, wait: true });
    expect(parse(`status ${ID}`).command).toEqual({ kind: "status", id: ID });
    expect(parse(`rollback ${ID} --wait`).command).toEqual({ kind: "rollback", deploymentId: ID, wait: true });
    expect(parse("login --username ci --password-stdin --create-key pipeline").command).toEqual({ kind: "login", username: "ci", passwordStdin: true, createKey: "pipeline" });
    expect(parse("").command).toEqual({ kind: "help" });
    expect(parse("deploy --help").command).toEqual({ kind: "help", topic: "deploy" });
  });

  it("takes the URL and key from the environment, and --json, --timeout and --interval for every command", () => {
    const { globals } = parse("instances ls --json --timeout 10m --interval 500ms", { REDFORGE_URL: "http://cp.example:8787/", REDFORGE_API_KEY: "rf_abc" });
    expect(globals).toEqual({ json: true, timeoutMs: 600_000, intervalMs: 500, url: "http://cp.example:8787", apiKey: "rf_abc" });
    expect(parse("instances ls").globals).toMatchObject({ url: "http://127.0.0.1:8787", timeoutMs: 1_800_000, intervalMs: 2000, json: false });
    expect(parse("instances ls --url http://other:1").globals.url).toBe("http://other:1");
  });

  it("refuses a wrong command line before sending anything", () => {
    usage("frobnicate");
    usage("instances");
    usage("deploy");
    usage("deploy edge-1");
    usage("deploy edge-1 extra --flows f.json");
    usage("deploy edge-1 --flows f.json --selector x");
    usage("rollout --flows f.json");
    usage("rollout --selector a=b");
    usage(`rollout --selector a=b --flows f.json --version ${ID}`);
    usage("rollout --selector a=b --flows f.json --waves 1,,100%");
    usage("rollout --selector a=b --flows f.json --waves 1,150%");
    usage("rollout --selector a=b --flows f.json --on-failure explode");
    usage("rollout --selector a=b --version not-a-uuid");
    usage("promote web");
    usage("promote web prod");
    usage("status 42");
    usage("rollback nope");
    usage("instances ls --timeout soon");
    usage("instances ls --url not-a-url");
  });

  it("reads waves, failure budgets and durations as the API takes them", () => {
    expect(parseWaves("1, 5,50%,100%")).toEqual([1, 5, "50%", "100%"]);
    expect(() => parseWaves("0")).toThrow(UsageError);
    expect(parseFailureBudget("0")).toEqual({ maxFailedInstances: 0 });
    expect(parseFailureBudget("2.5%")).toEqual({ maxFailedPercent: 2.5 });
    expect(() => parseFailureBudget("101%")).toThrow(UsageError);
    expect([parseDuration("t", "90"), parseDuration("t", "90s"), parseDuration("t", "2m"), parseDuration("t", "1h")]).toEqual([90_000, 90_000, 120_000, 3_600_000]);
  });

  it("reads a flow file as an array or as Node-RED's {flows, rev} export, and refuses anything else as a usage error", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "redforge-cli-"));
    const nodes = [{ id: "t1", type: "tab" }];
    await writeFile(path.join(dir, "a.json"), JSON.stringify(nodes));
    await writeFile(path.join(dir, "b.json"), JSON.stringify({ flows: nodes, rev: "abc" }));
    await writeFile(path.join(dir, "c.json"), JSON.stringify({ nodes }));
    await writeFile(path.join(dir, "d.json"), "[{");
    expect(await readFlowsFile(path.join(dir, "a.json"))).toEqual(nodes);
    expect(await readFlowsFile(path.join(dir, "b.json"))).toEqual(nodes);
    await expect(readFlowsFile(path.join(dir, "c.json"))).rejects.toThrow(UsageError);
    await expect(readFlowsFile(path.join(dir, "d.json"))).rejects.toThrow(UsageError);
    await expect(readFlowsFile(path.join(dir, "missing.json"))).rejects.toThrow(UsageError);
  });
});

describe("redforge's exit codes", () => {
  it("0 for completed, 1 for failed, rolled back, aborted or rejected; nothing while still running", () => {
    expect(EXIT).toEqual({ completed: 0, failed: 1, usage: 2, timeout: 3, api: 4 });
    expect(["completed", "failed", "rolled_back", "in_progress", "paused"].map((s) => exitFor("deployment", s))).toEqual([0, 1, 1, null, null]);
    expect(["completed", "failed", "aborted", "running", "paused", "awaiting_approval", "rolling_back"].map((s) => exitFor("rollout", s))).toEqual([0, 1, 1, null, null, null, null]);
    expect(["completed", "failed", "rejected", "awaiting_approval", "rolling_out"].map((s) => exitFor("promotion", s))).toEqual([0, 1, 1, null, null]);
    expect(isFinal("rollout", "rolling_back")).toBe(false);
  });

  it("main: 2 for a usage error, 4 without an API key, 4 when the control plane cannot be reached, 4 for an API refusal", async () => {
    const lines: string[] = [];
    const io = { out: (l: string) => lines.push(l), note: (l: string) => lines.push(l), readStdin: async () => "" };
    expect(await main(["deploy"], {}, io)).toBe(2);
    expect(await main(["instances", "ls"], {}, io)).toBe(4);
    const refused = async () => new Response(JSON.stringify({ error: { code: "invalid_api_key", message: "API key is unknown" } }), { status: 401, headers: { "content-type": "application/json" } });
    expect(await main(["instances", "ls", "--json"], { REDFORGE_API_KEY: "rf_bad" }, { ...io, fetch: refused as typeof fetch })).toBe(4);
    expect(lines.some((l) => l.includes("invalid_api_key"))).toBe(true);
    const down = async () => { throw new TypeError("fetch failed"); };
    expect(await main(["instances", "ls"], { REDFORGE_API_KEY: "rf_x" }, { ...io, fetch: down as typeof fetch })).toBe(4);
    expect(await main(["help"], {}, io)).toBe(0);
  });
});

describe("--wait", () => {
  const rollout = (status: string, waves: string[]) => ({
    id: "r1", status, failure: null, summary: { total: 2, completed: 0, failed: 0, pending: 2 },
    waves: waves.map((s, index) => ({ index, target: index + 1, status: s, startedAt: null, completedAt: null, instances: [{ instanceId: `i${index}`, deploymentId: null, status: "pending" as const }] })),
  });

  it("prints each wave and status change once, and stops at the final state", async () => {
    const states = [
      rollout("running", ["running", "pending"]), rollout("running", ["running", "pending"]), rollout("running", ["completed", "running"]),
      rollout("running", ["completed", "running"]), rollout("completed", ["completed", "completed"]),
    ];
    let i = 0;
    const printed: string[] = [];
    const result = await waitUntilFinal(async () => states[Math.min(i++, states.length - 1)]!, (s) => rolloutLines(s as never), (s) => isFinal("rollout", s.status),
      { timeoutMs: 60_000, intervalMs: 1, progress: (l) => printed.push(l), sleep: async () => {} });
    expect(result.timedOut).toBe(false);
    expect(result.state.status).toBe("completed");
    expect(printed).toEqual([
      "rollout r1: running", "rollout r1: wave 1/2 (1 instance) running", "rollout r1: wave 2/2 (1 instance) pending",
      "rollout r1: wave 1/2 (1 instance) completed", "rollout r1: wave 2/2 (1 instance) running",
      "rollout r1: completed", "rollout r1: wave 2/2 (1 instance) completed",
    ]);
  });

  it("gives up at the timeout with the last state it saw", async () => {
    let clock = 0;
    const result = await waitUntilFinal(async () => rollout("paused", ["completed", "pending"]), (s) => rolloutLines(s as never), (s) => isFinal("rollout", s.status),
      { timeoutMs: 5000, intervalMs: 1000, progress: () => {}, now: () => clock, sleep: async (ms) => { clock += ms; } });
    expect(result).toMatchObject({ timedOut: true, state: { status: "paused" } });
    expect(clock).toBe(5000);
  });
});
