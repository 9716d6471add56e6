import { describe, it, expect, beforeAll, afterAll } from "vitest";
import net from "node:net";
import mqtt, { type MqttClient } from "mqtt";
import { startMqttBroker } from "../../dev/mqtt-broker.ts";
import { freePort, PortInUseError } from "../../dev/ports.ts";
import type { RunningService } from "../../dev/config.ts";

// aedes speaks MQTT 3.1.1 only; every client here must say so.
function connect(url: string, clientId: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { protocolVersion: 4, clientId, reconnectPeriod: 0, connectTimeout: 5000 });
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
}

describe("mqtt broker (aedes)", () => {
  let broker: RunningService;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    broker = await startMqttBroker({ port: await freePort() });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await broker?.close();
  });

  it("delivers 500 QoS 1 messages in order", async () => {
    const sub = await connect(broker.url, "sub-order");
    const pub = await connect(broker.url, "pub-order");
    clients.push(sub, pub);
    const N = 500;
    const got: number[] = [];
    const seen = new Set<string>();
    // Assertions after the fact: a throw inside an mqtt.js listener would only hang the test.
    const all = new Promise<void>((resolve) =>
      sub.on("message", (topic, payload, packet) => {
        seen.add(`${topic} qos${packet.qos}`);
        got.push(Number(payload.toString()));
        if (got.length === N) resolve();
      }),
    );
    await sub.subscribeAsync("fleet/test/#", { qos: 1 });
    for (let i = 0; i < N; i++) await pub.publishAsync("fleet/test/order", String(i), { qos: 1 });
    await all;
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
    expect([...seen]).toEqual(["fleet/test/order qos1"]);
  });

  it("hands a retained message to a subscriber that arrives later", async () => {
    const pub = await connect(broker.url, "pub-retain");
    clients.push(pub);
    await pub.publishAsync("fleet/status/instance-1", "online", { qos: 1, retain: true });

    const late = await connect(broker.url, "late-sub");
    clients.push(late);
    const received = new Promise<{ payload: string; retain: boolean }>((resolve) =>
      late.once("message", (_t, payload, packet) => resolve({ payload: payload.toString(), retain: packet.retain })),
    );
    await late.subscribeAsync("fleet/status/+", { qos: 1 });
    await expect(received).resolves.toEqual({ payload: "online", retain: true });
  });

  it("refuses MQTT 5 clients (aedes is 3.1.1 only)", async () => {
    const c = mqtt.connect(broker.url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000 });
    const outcome = await new Promise<string>((resolve) => {
      c.once("connect", () => resolve("connected"));
      c.once("error", (e) => resolve(e.message));
    });
    await c.endAsync(true);
    expect(outcome).toMatch(/unacceptable protocol version/i);
  });

  it("refuses a port that is already taken", async () => {
    const port = await freePort();
    const holder = net.createServer().listen(port, "127.0.0.1");
    await new Promise((r) => holder.once("listening", r));
    try {
      const err = await startMqttBroker({ port }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PortInUseError);
      expect((err as Error).message).toContain("REDFORGE_MQTT_PORT");
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });

  it("closes cleanly even with a client still connected", async () => {
    const b = await startMqttBroker({ port: await freePort() });
    const c = await connect(b.url, "lingering");
    const closed = new Promise<void>((r) => c.once("close", () => r()));
    await b.close();
    await closed;
    await c.endAsync(true);
    // The port is free again once close() resolves.
    const again = await startMqttBroker({ port: Number(new URL(b.url).port) });
    await again.close();
  });
});
