/**
 * The deploy gate's hold on MQTT work it accepted (flows/node-package/lib/gateRuntime.js + workJournal.js),
 * on a small fake of Node-RED's runtime API: work inside the flows when the process is killed is
 * processed again by the next process on the same userDir, in order; work whose answer left is not;
 * nothing enters the flows while their mqtt-broker nodes are still connecting (Node-RED's mqtt-out
 * drops what it gets then); an HTTP request held too long is refused, not left hanging.
 * The same code runs in real Node-RED in test/integration/faults.test.ts (g).
 */
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
const MODULE = require.resolve("../../flows/node-package/lib/gateRuntime.js");

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });
const savedEnv = { ...process.env };
afterEach(() => { process.env = { ...savedEnv }; });

/** A fresh Node-RED process: a new load of the module (its runtime is a per-process singleton). */
function boot(userDir: string, brokers: Array<{ id: string; connected: boolean }> = []) {
  delete require.cache[MODULE];
  process.env.REDFORGE_INSTANCE_ID = "inst-1";
  process.env.REDFORGE_RUNTIME_ID = "inst-1";
  delete process.env.REDFORGE_MQTT_URL;
  const hooks: Array<(event: unknown) => void> = [];
  const warnings: string[] = [];
  const red = {
    settings: { userDir },
    log: { warn: (w: string) => warnings.push(w) },
    auth: { needsPermission: () => () => undefined },
    httpAdmin: { get: () => undefined, post: () => undefined },
    hooks: { add: (_name: string, fn: (event: unknown) => void) => hooks.push(fn) },
    nodes: {
      eachNode: (cb: (n: { id: string; type: string }) => void) => brokers.forEach((b) => cb({ id: b.id, type: "mqtt-broker" })),
      getNode: (id: string) => brokers.find((b) => b.id === id),
    },
  };
  const { gateRuntime } = require(MODULE) as { gateRuntime: (red: unknown) => any };
  const runtime = gateRuntime(red);
  const sent: any[] = [];
  const source = { z: "tab", send: (msg: any) => sent.push(msg) };
  const terminal = { type: "mqtt out", wires: [] as string[][] };
  const exitNode = { z: "tab", type: "redforge-exit", wires: [["out"]] };
  return {
    runtime, sent, warnings, source,
    /** The flow's MQTT source gate registers (Node-RED started the flows). */
    start: () => runtime.register(source, { source: "mqtt", ttlMs: 0, holdLimit: 0 }),
    work: (seq: string) => runtime.onWork("redforge/active/inst-1", Buffer.from(JSON.stringify({ seq }))),
    /** The message reached redforge-exit; `answered`: its mqtt-out published it (done after the PUBACK). */
    finish: (msg: any, answered: boolean) => {
      runtime.exit(msg, exitNode);
      if (answered) for (const h of hooks) h({ msg, node: { id: "out", node: terminal } });
    },
    stop: () => { clearInterval(runtime.timer); clearInterval(runtime.outputsWatch); },
  };
}

const seqs = (sent: any[]) => sent.map((m) => m.payload.seq);

describe("the gate's work journal", () => {
  it("a killed runtime's unfinished work is processed again by the next one on its userDir, in order; answered work is not", () => {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-gate-journal-"));
    dirs.push(userDir);
    const first = boot(userDir);
    first.start();
    for (const seq of ["m1", "m2", "m3", "m4"]) first.work(seq);
    expect(seqs(first.sent)).toEqual(["m1", "m2", "m3", "m4"]);
    first.finish(first.sent[0], true); // m1: answered
    first.finish(first.sent[1], false); // m2: exited, its answer still inside Node-RED's mqtt client
    // m3, m4: still inside the flows. Now the process is killed (nothing else runs).
    first.stop();

    const second = boot(userDir);
    expect(second.warnings.join("\n")).toMatch(/3 MQTT message\(s\) accepted before a restart/);
    second.start();
    expect(seqs(second.sent)).toEqual(["m2", "m3", "m4"]);
    // New work queues behind what was recovered.
    second.work("m5");
    expect(seqs(second.sent)).toEqual(["m2", "m3", "m4", "m5"]);
    for (const msg of second.sent) second.finish(msg, true);
    second.stop();

    // Everything answered: a third process has nothing to redo.
    const third = boot(userDir);
    third.start();
    expect(third.sent).toEqual([]);
    third.stop();
  });

  it("passes no work into the flows until their mqtt-broker nodes are connected", async () => {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-gate-outputs-"));
    dirs.push(userDir);
    const broker = { id: "bus", connected: false };
    const gate = boot(userDir, [broker]);
    gate.start();
    gate.work("m1");
    gate.work("m2");
    expect(gate.sent).toEqual([]);
    expect(gate.runtime.status().pendingMqtt).toBe(2);
    broker.connected = true;
    const t0 = Date.now();
    while (gate.sent.length < 2 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    expect(seqs(gate.sent)).toEqual(["m1", "m2"]);
    gate.stop();
  });

  it("refuses an HTTP request it held past its bound with 503 + Retry-After instead of holding it forever", async () => {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-gate-http-"));
    dirs.push(userDir);
    const gate = boot(userDir);
    gate.runtime.setMode("drain");
    const answers: Array<{ status: number; headers: Record<string, string>; body: any }> = [];
    const res = () => {
      const a = { status: 0, headers: {} as Record<string, string>, body: undefined as any };
      const r: any = { status: (s: number) => { a.status = s; return r; }, set: (k: string, v: string) => { a.headers[k] = v; return r; }, json: (b: unknown) => { a.body = b; answers.push(a); } };
      return { _res: r };
    };
    const httpGate = { z: "tab", send: () => undefined };
    gate.runtime.input(httpGate, { req: { headers: {} }, res: res() }, () => undefined);
    gate.runtime.tick();
    expect(answers).toHaveLength(0); // within its bound: still held
    gate.runtime.httpHoldMs = 1;
    await new Promise((r) => setTimeout(r, 10));
    gate.runtime.tick();
    expect(answers).toHaveLength(1);
    expect(answers[0]!.status).toBe(503);
    expect(answers[0]!.headers["retry-after"]).toBeDefined();
    expect(answers[0]!.body.error.code).toBe("gate_hold_timeout");
    expect(gate.runtime.status().heldHttp).toBe(0);
    gate.stop();
  });
});
