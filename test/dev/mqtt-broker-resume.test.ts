/**
 * A persistent session resumed while its topic is live (issue 12 (g): a host restart brings the
 * data plane's fronts and every gate back on `clean: false` sessions with a backlog, while producers
 * keep publishing). aedes 1.2 subscribes the resumed client before it replays the stored queue, and
 * the replay is a snapshot that also holds messages delivered live meanwhile: a snapshot entry the
 * client had already acknowledged failed `outgoingUpdate` with "no such packet" and aedes closed the
 * client; one not yet acknowledged was sent twice. Under load every reconnect closed again (a storm of
 * reconnects), and each close was a chance to lose work on the client's side. dev/mqtt-broker.ts
 * sends each stored message once per connection and never closes a client for one already acknowledged.
 */
import { connectAsync, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningService } from "../../dev/config.ts";
import { startMqttBroker } from "../../dev/mqtt-broker.ts";
import { freePort } from "../../dev/ports.ts";

let broker: RunningService;
const brokerLog: string[] = [];
beforeAll(async () => {
  broker = await startMqttBroker({ port: await freePort(), onLog: (l) => brokerLog.push(l) });
});
afterAll(async () => broker?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("aedes: a persistent session resumed under live traffic", () => {
  it("gets its stored backlog first, then live messages, every message once, and the broker keeps the connection", async () => {
    const topic = "resume/live";
    const clientId = `resume-${Date.now().toString(36)}`;
    const opts = { protocolVersion: 4 as const, clean: false, clientId, reconnectPeriod: 200 };
    const first = await connectAsync(broker.url, opts);
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();

    const producer = await connectAsync(broker.url, { protocolVersion: 4, clean: true });
    const BACKLOG = 3000;
    const LIVE = 3000;
    // The backlog: published while the subscriber is away.
    await Promise.all(Array.from({ length: BACKLOG }, (_, i) => producer.publishAsync(topic, String(i), { qos: 1 })));

    const got = new Map<number, number>();
    const order: number[] = [];
    let closes = 0;
    let sub: MqttClient | undefined;
    // Live traffic starts before the subscriber comes back and runs through its replay.
    let n = BACKLOG;
    const live = (async () => {
      while (n < BACKLOG + LIVE) {
        const batch = Array.from({ length: 50 }, () => producer.publishAsync(topic, String(n++), { qos: 1 }));
        await Promise.all(batch);
        await sleep(5);
      }
    })();
    await sleep(20);
    sub = await connectAsync(broker.url, opts, false);
    sub.on("close", () => { closes++; });
    sub.on("message", (_t, payload) => {
      const v = Number(payload.toString());
      got.set(v, (got.get(v) ?? 0) + 1);
      order.push(v);
    });
    await live;
    const deadline = Date.now() + 30_000;
    while (got.size < BACKLOG + LIVE && Date.now() < deadline) await sleep(100);
    await sleep(500);
    const closedBeforeEnd = closes;
    await sub.endAsync();
    await producer.endAsync();

    const missing = Array.from({ length: BACKLOG + LIVE }, (_, i) => i).filter((i) => !got.has(i));
    const twice = [...got].filter(([, c]) => c > 1).map(([v]) => v);
    const closedByBroker = brokerLog.filter((l) => l.includes(clientId) && /no such packet/.test(l));
    // One publisher on one connection: the session must see its stored backlog, then live messages, in publish order.
    const outOfOrder = order.filter((v, i) => i > 0 && v < order[i - 1]!).length;
    expect({ missing: missing.length, twice: twice.length, outOfOrder, closes: closedBeforeEnd, closedByBroker: closedByBroker.length }, `${JSON.stringify({ missing: missing.length, twice: twice.length, outOfOrder, closes: closedBeforeEnd })}; first missing ${missing.slice(0, 5)}, first twice ${twice.slice(0, 5)}, first out of order ${order.filter((v, i) => i > 0 && v < order[i - 1]!).slice(0, 5)}, broker: ${closedByBroker.slice(0, 2).join(" | ")}`)
      .toEqual({ missing: 0, twice: 0, outOfOrder: 0, closes: 0, closedByBroker: 0 });
  }, 60_000);
});
