/**
 * A draining gate republishes MQTT work to the hold queue (flows/node-package/lib/gateRuntime.js).
 * Right after a reconnect mqtt.js keeps new publishes in memory while it resends its own store, and
 * mqtt.js sends the incoming message's PUBACK at once; when the connection drops again it fails those
 * queued publishes with "Connection closed", never written. issue 12 (g): with the tap, 706 messages
 * of one host restart went ingest → active:{blue} and nowhere after, as aedes closed the restarted
 * blue's connection. Now such a publish is issued again, and the message is journaled until the
 * broker has its copy, so a kill in that moment leaves it to the next process on the userDir.
 * A small fake of Node-RED's runtime API and of the mqtt.js client (the failure is mqtt.js's own
 * behaviour, hard to time against a real broker).
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

type Cb = (err?: Error) => void;

function boot(userDir: string, client: { connected?: boolean; _storeProcessing?: boolean; _storeProcessingQueue?: unknown[] } = {}) {
  delete require.cache[MODULE];
  process.env.REDFORGE_INSTANCE_ID = "inst-1";
  process.env.REDFORGE_RUNTIME_ID = "inst-1";
  delete process.env.REDFORGE_MQTT_URL;
  const red = {
    settings: { userDir },
    log: { warn: () => undefined },
    auth: { needsPermission: () => () => undefined },
    httpAdmin: { get: () => undefined, post: () => undefined },
    hooks: { add: () => undefined },
    nodes: { eachNode: () => undefined, getNode: () => undefined },
  };
  const { gateRuntime } = require(MODULE) as { gateRuntime: (red: unknown) => any };
  const runtime = gateRuntime(red);
  // mqtt.js as it is right after a reconnect: publishes wait in memory until their callback says what became of them.
  const publishes: Array<{ topic: string; seq: string; cb: Cb }> = [];
  runtime.client = {
    ...client,
    disconnecting: false,
    publish: (topic: string, payload: Buffer, _opts: unknown, cb?: Cb) => publishes.push({ topic, seq: JSON.parse(payload.toString()).seq, cb: cb ?? (() => undefined) }),
  };
  runtime.setMode("drain");
  return {
    runtime, publishes,
    work: (seq: string) => runtime.onWork("redforge/active/inst-1", Buffer.from(JSON.stringify({ seq }))),
    stop: () => { clearInterval(runtime.timer); clearInterval(runtime.outputsWatch); },
  };
}

describe("a draining gate's republish to the hold queue", () => {
  it("is issued again when mqtt.js fails it with 'Connection closed', and survives a kill until the broker has it", () => {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-gate-hold-"));
    dirs.push(userDir);
    const a = boot(userDir);
    a.work("m1");
    a.work("m2");
    a.work("m3");
    expect(a.publishes.map((p) => `${p.topic} ${p.seq}`)).toEqual(["redforge/hold/inst-1 m1", "redforge/hold/inst-1 m2", "redforge/hold/inst-1 m3"]);
    // The connection drops: mqtt.js fails the queued publishes (m1, m2) without having written them.
    const [p1, p2] = a.publishes.splice(0, 2);
    p1!.cb(new Error("Connection closed"));
    p2!.cb(new Error("Connection closed"));
    expect(a.publishes.map((p) => p.seq), "issued again, in order, behind m3").toEqual(["m3", "m1", "m2"]);
    // The broker acknowledges m3 and m1; then the process is killed (m2 is still unacknowledged).
    a.publishes.shift()!.cb();
    a.publishes.shift()!.cb();
    a.stop();

    const b = boot(userDir);
    b.runtime.flushPending();
    expect(b.publishes.map((p) => p.seq), "the next process republishes what the broker never confirmed").toEqual(["m2"]);
    b.stop();
  });

  it("is not journaled when mqtt.js writes it at once (it precedes the PUBACK on the connection), so a kill redoes nothing the broker has", () => {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-gate-hold-"));
    dirs.push(userDir);
    const a = boot(userDir, { connected: true, _storeProcessing: false, _storeProcessingQueue: [] });
    a.work("m1");
    a.work("m2");
    expect(a.publishes.map((p) => p.seq)).toEqual(["m1", "m2"]);
    a.stop(); // killed before the broker's PUBACKs: it has both copies, or still both incoming messages

    const b = boot(userDir);
    b.runtime.flushPending();
    expect(b.publishes, "nothing to redo: no duplicate").toEqual([]);
    b.stop();
  });
});
