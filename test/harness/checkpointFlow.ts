/**
 * A five-step checkpointed workflow for real Node-RED, and the HTTP sink its
 * steps call: every call is counted with its workflow, step, runtime and
 * idempotency key, so a test can prove each step ran exactly once and on which
 * runtime. Started by POST /wf/start {id} through a gated entry (answered at once).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface StepCall { id: string; step: number; runtime: string; key: string; at: number }

export class StepSink {
  readonly calls: StepCall[] = [];
  readonly done: { id: string; runtime: string; steps: number[] }[] = [];
  private server?: http.Server;
  port = 0;
  /** Calls of this step are counted but not answered until `release()` (a step that hangs, to kill Node-RED mid-step). */
  holdStep: number | undefined;
  private held: http.ServerResponse[] = [];

  release(): void {
    this.holdStep = undefined;
    for (const res of this.held.splice(0)) res.destroy();
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const state = (body ? JSON.parse(body) : {}) as { id?: string; steps?: number[] };
        const runtime = String(req.headers["x-runtime"] ?? "");
        const m = /^\/step\/(\d+)$/.exec(req.url ?? "");
        if (m) {
          const step = Number(m[1]);
          this.calls.push({ id: String(state.id), step, runtime, key: String(req.headers["x-idempotency-key"] ?? ""), at: Date.now() });
          if (this.holdStep === step) {
            this.held.push(res);
            return;
          }
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify({ id: state.id, steps: [...(state.steps ?? []), step] }));
          return;
        }
        if (req.url === "/done") this.done.push({ id: String(state.id), runtime, steps: state.steps ?? [] });
        res.end("{}");
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.port = (this.server!.address() as AddressInfo).port;
  }

  /** Calls of workflow `id`, by step: how many times each of steps 1..5 ran. */
  countsOf(id: string): number[] {
    return [1, 2, 3, 4, 5].map((s) => this.calls.filter((c) => c.id === id && c.step === s).length);
  }

  async close(): Promise<void> {
    this.release();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** The workflow: five steps, each `begin → set headers → POST sink/step/n → end`, `pauseMs` between steps. */
export function checkpointWorkflow(o: { sinkPort: number; pauseMs: number; kind?: string }): unknown[] {
  const tab = "ck-tab";
  const kind = o.kind ?? "five-steps";
  const sink = `http://127.0.0.1:${o.sinkPort}`;
  const nodes: unknown[] = [
    { id: tab, type: "tab", label: "checkpointed workflow" },
    { id: "ck-in", type: "http in", z: tab, url: "/wf/start", method: "post", upload: false, wires: [["ck-gate"]] },
    { id: "ck-gate", type: "redforge-gate", z: tab, name: "gate", source: "input", ttl: 600, holdLimit: 5000, wires: [["ck-exit", "ck-id"]] },
    { id: "ck-exit", type: "redforge-exit", z: tab, wires: [["ck-answer"]] },
    { id: "ck-answer", type: "http response", z: tab, statusCode: "202", headers: {}, wires: [] },
    { id: "ck-id", type: "change", z: tab, rules: [
      { t: "set", p: "workflow", pt: "msg", to: "{\"id\": payload.id}", tot: "jsonata" },
      { t: "set", p: "payload", pt: "msg", to: "{\"id\": payload.id, \"steps\": []}", tot: "jsonata" },
    ], wires: [["ck-b1"]] },
  ];
  for (let n = 1; n <= 5; n++) {
    const next = n < 5 ? [`ck-pause${n}`] : ["ck-finish-h"];
    nodes.push(
      { id: `ck-b${n}`, type: "redforge-checkpoint", z: tab, workflow: kind, step: `s${n}`, mode: "begin", repeatable: false, wires: [[`ck-h${n}`]] },
      { id: `ck-h${n}`, type: "change", z: tab, rules: [
        { t: "set", p: "headers", pt: "msg", to: "{}", tot: "json" },
        { t: "set", p: "headers[\"x-runtime\"]", pt: "msg", to: "REDFORGE_RUNTIME_ID", tot: "env" },
        { t: "set", p: "headers[\"x-idempotency-key\"]", pt: "msg", to: "workflow.idempotencyKey", tot: "msg" },
      ], wires: [[`ck-call${n}`]] },
      { id: `ck-call${n}`, type: "http request", z: tab, method: "POST", ret: "obj", paytoqs: "ignore", url: `${sink}/step/${n}`, tls: "", persist: false, proxy: "", authType: "", senderr: false, headers: [], wires: [[`ck-e${n}`]] },
      { id: `ck-e${n}`, type: "redforge-checkpoint", z: tab, workflow: kind, step: `s${n}`, mode: "end", final: n === 5, wires: [next] },
    );
    if (n < 5) nodes.push({ id: `ck-pause${n}`, type: "delay", z: tab, pauseType: "delay", timeout: String(o.pauseMs), timeoutUnits: "milliseconds", rate: "1", nbRateUnits: "1", rateUnits: "second", randomFirst: "1", randomLast: "5", randomUnits: "seconds", drop: false, allowrate: false, outputs: 1, wires: [[`ck-b${n + 1}`]] });
  }
  nodes.push(
    { id: "ck-finish-h", type: "change", z: tab, rules: [
      { t: "set", p: "headers", pt: "msg", to: "{}", tot: "json" },
      { t: "set", p: "headers[\"x-runtime\"]", pt: "msg", to: "REDFORGE_RUNTIME_ID", tot: "env" },
    ], wires: [["ck-finish"]] },
    { id: "ck-finish", type: "http request", z: tab, method: "POST", ret: "txt", paytoqs: "ignore", url: `${sink}/done`, tls: "", persist: false, proxy: "", authType: "", senderr: false, headers: [], wires: [[]] },
  );
  return nodes;
}
