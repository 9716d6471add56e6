/**
 * A restarted MQTT front (bridge/routing/mqttFront.ts) resumes its persistent session: the broker
 * sends what waited for it right behind the CONNACK, and every one of those messages must reach the
 * serving runtime. Before the handler was installed ahead of the CONNACK, mqtt.js acknowledged and
 * dropped the first of them (issue 12 (g): 1,983 messages of one host restart at 200 msg/s).
 * Real (in-process) broker.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { connectAsync } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MqttFront } from "../../bridge/routing/mqttFront.ts";
import { testBroker, type TestBroker } from "../harness/zeroLoss.ts";

let broker: TestBroker;
let tmp: string;
beforeAll(async () => {
  broker = await testBroker();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rf-front-resume-"));
});
afterAll(async () => {
  await broker?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("a restarted MQTT front", () => {
  it("forwards every message that waited in its session while it was down", async () => {
    const id = randomUUID();
    const runtime = `${id}-blue`;
    const first = new MqttFront(broker.url, id, { spoolDir: path.join(tmp, id) });
    await first.start(runtime);
    await first.close(); // the session stays in the broker (clean: false)

    const producer = await connectAsync(broker.url, { protocolVersion: 4, clean: true });
    const sent = Array.from({ length: 300 }, (_, i) => `s${i + 1}`);
    for (const seq of sent) await producer.publishAsync(`redforge/ingest/${id}`, JSON.stringify({ seq }), { qos: 1 });

    const seen: string[] = [];
    const watcher = await connectAsync(broker.url, { protocolVersion: 4, clean: true });
    watcher.on("message", (_t, p) => seen.push((JSON.parse(p.toString()) as { seq: string }).seq));
    await watcher.subscribeAsync(`redforge/active/${runtime}`, { qos: 1 });

    const second = new MqttFront(broker.url, id, { spoolDir: path.join(tmp, id) });
    await second.start(runtime);
    const t0 = Date.now();
    while (seen.length < sent.length && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual(sent);
    await Promise.all([second.close(), producer.endAsync(), watcher.endAsync()]);
  });
});
