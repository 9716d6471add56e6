/**
 * The MQTT front (bridge/routing/mqttFront.ts) acknowledges an ingest message (PUBACK) once its forward
 * to redforge/active/{runtime} is issued. Right after a reconnect mqtt.js resends its outgoing store one
 * message per round trip and keeps new publishes in memory meanwhile, while the PUBACK goes out at once:
 * a kill of the data plane in that moment lost the forwards (acknowledged to the broker, never written).
 * Now such a forward is journaled (bridge/routing/forwardJournal.ts) until the broker acknowledges it,
 * and the next front on the same spool dir forwards it, ahead of the session's backlog; a forward
 * mqtt.js writes at once is not journaled (it precedes the PUBACK on the connection).
 *
 * Real mqtt.js against a real broker (the dev stack's aedes, or MQTT_URL). "mqtt.js cannot write at
 * once" is made for real: the front's connection is cut, thousands of publishes are left in its
 * outgoing store while it is down, and work arrives while it resends them after the reconnect.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FORWARD_JOURNAL_FILE, ForwardJournal } from "../../bridge/routing/forwardJournal.ts";
import { MqttFront } from "../../bridge/routing/mqttFront.ts";
import { testBroker, type TestBroker } from "../harness/zeroLoss.ts";

let broker: TestBroker;
let tmp: string;
const clients: MqttClient[] = [];
beforeAll(async () => {
  broker = await testBroker();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rf-front-journal-"));
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
  await broker?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The front's mqtt.js client, with the mqtt.js 5 internals the test reaches for (the same ones the front reads). */
interface Internals {
  connected: boolean;
  _storeProcessing: boolean;
  _storeProcessingQueue: unknown[];
  stream: { destroy(): void };
  _sendPacket(packet: { cmd: string }): void;
  on(event: "packetreceive", f: (p: { cmd: string }) => void): void;
  off(event: "packetreceive", f: (p: { cmd: string }) => void): void;
  publish(topic: string, payload: string, opts: { qos: 1 }): void;
  end(force: boolean): void;
}
const clientOf = (front: MqttFront): Internals => (front as unknown as { client: Internals }).client;

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Two PINGREQ round trips: the broker has handled every packet the client wrote before the first one
 * (the PUBACKs): aedes reads a client's next batch only once every packet of the last one is handled,
 * and the second PINGREQ leaves after the first one's answer.
 */
async function brokerCaughtUp(c: Internals): Promise<void> {
  for (let i = 0; i < 2; i++) {
    await new Promise<void>((resolve) => {
      const on = (p: { cmd: string }) => { if (p.cmd === "pingresp") { c.off("packetreceive", on); resolve(); } };
      c.on("packetreceive", on);
      c._sendPacket({ cmd: "pingreq" });
    });
  }
}

async function watch(runtime: string): Promise<string[]> {
  const seen: string[] = [];
  const watcher = await connectAsync(broker.url, { protocolVersion: 4, clean: true });
  clients.push(watcher);
  watcher.on("message", (_t, p) => seen.push((JSON.parse(p.toString()) as { seq: string }).seq));
  await watcher.subscribeAsync(`redforge/active/${runtime}`, { qos: 1 });
  return seen;
}

async function producer(): Promise<MqttClient> {
  const p = await connectAsync(broker.url, { protocolVersion: 4, clean: true });
  clients.push(p);
  return p;
}

/** A fresh instance: its blue runtime's deliveries watched, a producer for its ingest topic, its spool dir. */
async function instance() {
  const id = randomUUID();
  const runtime = `${id}-blue`;
  return { id, runtime, dir: path.join(tmp, id), seen: await watch(runtime), prod: await producer(), ingest: `redforge/ingest/${id}` };
}

describe("the MQTT front's forwards across a kill", () => {
  it("a forward issued while mqtt.js resends its store after a reconnect, killed before the broker's PUBACK, is forwarded by the next front on the same dir, ahead of the backlog", async () => {
    const { id, runtime, dir, seen, prod, ingest } = await instance();

    const a = new MqttFront(broker.url, id, { spoolDir: dir });
    await a.start(runtime);
    const c = clientOf(a);
    // The connection drops; while it is down the client's outgoing store fills up (publishes mqtt.js
    // keeps for the reconnect), so after the reconnect it resends them one round trip at a time.
    c.stream.destroy();
    await until("the front's connection to drop", () => !c.connected);
    for (let i = 0; i < 10_000; i++) c.publish(`rf-test/filler/${id}`, "x", { qos: 1 });
    await until("the front to reconnect and resend its store", () => c.connected && c._storeProcessing);

    // Work arrives now: mqtt.js keeps each forward in memory and the PUBACK goes out at once.
    const lost = ["m1", "m2", "m3", "m4", "m5"];
    for (const seq of lost) await prod.publishAsync(ingest, JSON.stringify({ seq }), { qos: 1 });
    await until("the front to issue the forwards", () => a.forwarded >= lost.length);
    await brokerCaughtUp(c);
    // The window this test is about, as it was when the "kill" came: acknowledged, not written.
    expect(c._storeProcessing, "mqtt.js still resends its store").toBe(true);
    expect(c._storeProcessingQueue.length, "the forwards wait in mqtt.js's memory").toBeGreaterThanOrEqual(lost.length);
    expect(seen, "nothing reached the runtime yet").toEqual([]);
    c.end(true); // the kill: nothing more is written, the journal file is left as it is

    // Published while no front runs: the resumed session's backlog.
    const backlog = ["b1", "b2", "b3"];
    for (const seq of backlog) await prod.publishAsync(ingest, JSON.stringify({ seq }), { qos: 1 });

    const logs: string[] = [];
    const b = new MqttFront(broker.url, id, { spoolDir: dir, log: (l) => logs.push(l) });
    await b.start(runtime);
    const expected = [...lost, ...backlog];
    await until("the runtime to get the work", () => seen.length >= expected.length, 20_000).catch(() => {});
    await new Promise((r) => setTimeout(r, 300)); // a duplicate would show up by now
    expect(seen, "every message once, the journaled ones first").toEqual(expected);
    expect(logs.join("\n")).toContain(`${lost.length} forward(s) accepted before a restart and not written: forwarded again`);
    await until("the journal to empty once the broker has the forwards", () => fs.statSync(path.join(dir, FORWARD_JOURNAL_FILE)).size === 0);
    await b.close();
  });

  it("a forward mqtt.js writes at once leaves nothing in the journal: a kill redoes nothing", async () => {
    const { id, runtime, dir, seen, prod, ingest } = await instance();

    const a = new MqttFront(broker.url, id, { spoolDir: dir });
    await a.start(runtime);
    const sent = Array.from({ length: 200 }, (_, i) => `s${i + 1}`);
    for (const seq of sent) await prod.publishAsync(ingest, JSON.stringify({ seq }), { qos: 1 });
    await until("the front to issue the forwards", () => a.forwarded >= sent.length);
    const journal = path.join(dir, FORWARD_JOURNAL_FILE);
    expect(fs.existsSync(journal) ? fs.statSync(journal).size : 0, "not one journal write").toBe(0);
    await until("the runtime to get the work", () => seen.length >= sent.length);
    clientOf(a).end(true); // the kill

    const logs: string[] = [];
    const b = new MqttFront(broker.url, id, { spoolDir: dir, log: (l) => logs.push(l) });
    await b.start(runtime);
    await prod.publishAsync(ingest, JSON.stringify({ seq: "after" }), { qos: 1 });
    await until("the new front to forward", () => seen.includes("after"));
    await new Promise((r) => setTimeout(r, 300));
    expect(seen, "each once: nothing redone").toEqual([...sent, "after"]);
    expect(logs.join("\n")).not.toContain("accepted before a restart");
    await b.close();
  });

  it("the journal file: open forwards come back in order; a torn last record (a kill mid-write) is ignored", () => {
    const dir = path.join(tmp, randomUUID());
    const j = new ForwardJournal(dir);
    expect(j.recover()).toEqual([]);
    const ids = ["f1", "f2", "f3"].map((p) => j.record(Buffer.from(p))!);
    j.done(ids[1]!);
    j.close();
    // Killed in the middle of the next record: its PUBACK never went out, the broker redelivers it.
    fs.appendFileSync(j.file, Buffer.from([0x52, 0, 0, 0, 9, 0, 0, 0, 20, 0x41]));
    const again = new ForwardJournal(dir);
    const recovered = again.recover();
    expect(recovered.map((e) => e.payload.toString())).toEqual(["f1", "f3"]);
    // Still open until done: a second kill redoes them again.
    again.close();
    const third = new ForwardJournal(dir);
    const left = third.recover();
    expect(left.map((e) => e.payload.toString())).toEqual(["f1", "f3"]);
    for (const e of left) third.done(e.id);
    expect(fs.statSync(third.file).size, "emptied once nothing is open").toBe(0);
    third.close();
    expect(new ForwardJournal(dir).recover()).toEqual([]);
  });
});
