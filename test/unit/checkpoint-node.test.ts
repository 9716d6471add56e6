/**
 * redforge-checkpoint on a small fake of Node-RED's node API with its journal
 * on a real directory: begin/end records, a completed step skipped, the
 * handover and resume admin routes, cancel, an interrupted step that is not
 * repeatable, and a journal that cannot be written failing the step. The same
 * node runs in real Node-RED in test/integration/checkpoint-resume.test.ts.
 */
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
const register = require("../../flows/node-package/nodes/redforge-checkpoint.js") as (red: unknown) => void;

type Handler = (msg: any, send: (out: unknown) => void, done: (err?: Error) => void) => void;
interface FakeNode { handlers: Record<string, Handler>; sent: any[]; warnings: string[]; send(m: unknown): void }
type Route = (req: { body: unknown }, res: { status(n: number): any; json(b: unknown): void }) => void;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ckpt-node-"));
const types = new Map<string, (this: any, config: Record<string, unknown>) => void>();
const routes = new Map<string, Route>();
let ids = 0;
const red = {
  settings: { userDir: dir },
  nodes: {
    registerType: (name: string, ctor: (this: any, config: Record<string, unknown>) => void) => types.set(name, ctor),
    createNode: (node: any) => {
      Object.assign(node, { handlers: {}, sent: [], warnings: [] });
      node.on = (event: string, h: Handler) => { node.handlers[event] = h; };
      node.status = () => undefined;
      node.warn = (w: string) => node.warnings.push(w);
      node.send = (m: unknown) => node.sent.push(m);
    },
  },
  log: { warn: () => undefined, info: () => undefined, error: () => undefined },
  util: { generateId: () => `id-${++ids}` },
  auth: { needsPermission: () => () => undefined },
  httpAdmin: {
    get: (p: string, _auth: unknown, h: Route) => routes.set(`GET ${p}`, h),
    post: (p: string, _auth: unknown, h: Route) => routes.set(`POST ${p}`, h),
  },
  events: { on: () => undefined },
};

const node = (config: Record<string, unknown>): FakeNode => {
  const n = {} as FakeNode;
  types.get("redforge-checkpoint")!.call(n, { workflow: "wf-kind", ...config });
  return n;
};
function input(n: FakeNode, msg: any): { sent?: any; err?: Error & { code?: string } } {
  let sent: unknown;
  let err: Error | undefined;
  n.handlers.input!(msg, (out) => { sent = out; }, (e) => { err = e; });
  return { ...(sent ? { sent } : {}), ...(err ? { err } : {}) };
}
async function call(route: string, body: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve) => {
    let status = 200;
    const res = { status: (s: number) => { status = s; return res; }, json: (b: unknown) => resolve({ status, body: b }) };
    routes.get(route)!({ body }, res);
  });
}

let b1: FakeNode, e1: FakeNode, b2: FakeNode, e2: FakeNode;
beforeAll(() => {
  delete process.env.REDFORGE_INSTANCE_ID;
  register(red);
  b1 = node({ step: "s1", mode: "begin" });
  e1 = node({ step: "s1", mode: "end" });
  b2 = node({ step: "s2", mode: "begin" });
  e2 = node({ step: "s2", mode: "end", final: true });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const status = async () => new Promise<any>((resolve) => routes.get("GET /redforge/checkpoints")!({ body: {} }, { status: () => undefined, json: resolve } as never));

describe("redforge-checkpoint", () => {
  it("begin and end write records and pass the message with its idempotency key; a completed step is skipped", async () => {
    const started = input(b1, { payload: { n: 1 }, workflow: { id: "run-a" } });
    expect(started.sent.workflow).toMatchObject({ id: "run-a", kind: "wf-kind", step: "s1", idempotencyKey: "run-a:s1", completed: [] });
    const ended = input(e1, { ...started.sent, payload: { n: 2 } });
    expect(ended.sent.workflow.completed).toEqual(["s1"]);
    // The same run's start message again (a replayed gate message): step 1 is not run twice.
    const again = input(b1, { payload: { n: 1 }, workflow: { id: "run-a" } });
    expect(again.sent).toBeUndefined();
    expect(b1.warnings.at(-1)).toMatch(/already completed/);
    const run = (await status()).workflows.find((w: any) => w.workflowId === "run-a");
    expect(run).toMatchObject({ step: "s1", phase: "completed", completed: ["s1"] });
    const lines = fs.readFileSync(path.join(dir, "redforge-checkpoints.journal"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.workflowId === "run-a").map((l) => l.phase)).toEqual(["started", "completed"]);
    // metadata.flowId (the message contract's) names the run when msg.workflow does not.
    expect(input(b1, { payload: 1, metadata: { flowId: "run-meta" } }).sent.workflow.id).toBe("run-meta");
  });

  it("handover stops a run here and answers its last checkpoint; resume elsewhere continues after it", async () => {
    const s = input(b1, { payload: { n: 1 }, workflow: { id: "run-h" } });
    const done1 = input(e1, s.sent);
    const handed = await call("POST /redforge/checkpoints/handover", { timeoutMs: 0 });
    const rec = handed.body.records.find((r: any) => r.workflowId === "run-h");
    expect(rec).toMatchObject({ phase: "handed_over", resume: "after", step: "s1", completed: ["s1"] });
    // This runtime's copy goes no further.
    expect(input(b2, done1.sent).sent).toBeUndefined();
    // The runtime that serves next (here the same process, as after a rollback) continues from the end of s1.
    const resumed = await call("POST /redforge/checkpoints/resume", { records: [rec] });
    expect(resumed.body.results).toEqual([{ workflowId: "run-h", outcome: "continued", after: "s1" }]);
    expect(e1.sent.at(-1)).toMatchObject({ payload: { n: 1 }, workflow: { id: "run-h", resumed: true, completed: ["s1"] } });
    expect(input(b2, e1.sent.at(-1)).sent.workflow.step).toBe("s2");
  });

  it("an interrupted step that is not repeatable fails the run; an operator's replay runs it", async () => {
    input(b1, { payload: { n: 1 }, workflow: { id: "run-i" } });
    const rec = { workflowId: "run-i", kind: "wf-kind", step: "s1", phase: "started", state: { n: 1 }, completed: [] };
    const crash = await call("POST /redforge/checkpoints/resume", { records: [rec] });
    expect(crash.body.results[0]).toMatchObject({ outcome: "failed", error: { code: "step_interrupted" } });
    const replay = await call("POST /redforge/checkpoints/resume", { records: [{ ...rec, phase: "handed_over", resume: "before" }], source: "replay" });
    expect(replay.body.results[0]).toMatchObject({ outcome: "rerun", step: "s1" });
    expect(b1.sent.at(-1).workflow).toMatchObject({ id: "run-i", step: "s1", resumed: true });
  });

  it("cancel stops a run at its next checkpoint; bad admin input is 400", async () => {
    const s = input(b1, { payload: 1, workflow: { id: "run-c" } });
    expect((await call("POST /redforge/checkpoints/cancel", { workflowId: "run-c" })).body.record.phase).toBe("cancelled");
    expect(input(e1, s.sent).sent).toBeUndefined();
    expect((await call("POST /redforge/checkpoints/cancel", { workflowId: "nobody" })).status).toBe(404);
    expect((await call("POST /redforge/checkpoints/cancel", {})).status).toBe(400);
    expect((await call("POST /redforge/checkpoints/resume", { records: [{ workflowId: 1 }] })).status).toBe(400);
    expect((await call("POST /redforge/checkpoints/handover", { timeoutMs: -1 })).status).toBe(400);
  });

  it("a state over 256 KiB, or a journal that cannot be written, fails the step: the message stops with a clear error", () => {
    const big = input(b1, { payload: "x".repeat(300 * 1024), workflow: { id: "run-big" } });
    expect(big.sent).toBeUndefined();
    expect(big.err?.code).toBe("checkpoint_too_large");
    fs.rmSync(dir, { recursive: true, force: true });
    const lost = input(b1, { payload: 1, workflow: { id: "run-disk" } });
    expect(lost.sent).toBeUndefined();
    expect(lost.err?.code).toBe("checkpoint_write_failed");
    expect(lost.err?.message).toMatch(/not written/);
    expect(e2).toBeDefined();
  });
});
