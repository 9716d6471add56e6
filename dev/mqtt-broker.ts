/**
 * In-process MQTT broker for the local stack when no real broker (MQTT_URL)
 * is configured. aedes 1.2 speaks MQTT 3.1.1 only: clients must connect with
 * `protocolVersion: 4` (v5 CONNECTs are refused), and `$share/...` topics get
 * nothing — code that relies on shared subscriptions needs Mosquitto.
 * Sessions and retained messages live in memory and die with the process.
 *
 * A resumed persistent session (`clean: false`) gets each stored message once per connection, and
 * the broker does not close it for one it already acknowledged: see `resumeOnce` (issue 12 (g)).
 */
import net from "node:net";
import { Readable } from "node:stream";
import type { RunningService } from "./config.ts";
import { assertPortFree, listen } from "./ports.ts";

export interface MqttBrokerOptions {
  port: number;
  host?: string;
  onLog?: (line: string) => void;
}

export async function startMqttBroker(opts: MqttBrokerOptions): Promise<RunningService> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.onLog ?? (() => {});
  await assertPortFree(opts.port, "mqtt broker", "REDFORGE_MQTT_PORT", host);

  // aedes 1.x is ESM-only and sets itself up asynchronously (persistence, $SYS heartbeat).
  const { Aedes } = await import("aedes");
  const broker = await Aedes.createBroker();
  // Not in aedes' types, but a documented option (`persistence`) and a public field.
  resumeOnce((broker as unknown as { persistence: OutgoingPersistence }).persistence);
  broker.on("clientError", (client, err) => log(`client ${client?.id ?? "?"} error: ${err.message}`));
  broker.on("connectionError", (_client, err) => log(`connection error: ${err.message}`));

  const server = net.createServer(broker.handle);
  // Track sockets so close() cannot hang on a client that never disconnects.
  const sockets = new Set<net.Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });

  try {
    await listen(server, opts.port, host);
  } catch (err) {
    await new Promise<void>((r) => broker.close(() => r()));
    throw err;
  }
  const url = `mqtt://${host}:${opts.port}`;
  log(`aedes MQTT 3.1.1 broker listening on ${url}`);

  let closing: Promise<void> | undefined;
  return {
    name: "mqtt broker",
    url,
    close() {
      closing ??= (async () => {
        await new Promise<void>((r) => broker.close(() => r()));
        const serverClosed = new Promise<void>((r) => server.close(() => r()));
        for (const s of sockets) s.destroy();
        await serverClosed;
        log("mqtt broker stopped");
      })();
      return closing;
    },
  };
}

/** The part of aedes-persistence's API the session replay goes through (aedes-persistence 11). */
interface OutgoingPersistence {
  outgoingUpdate(client: object, packet: QueuedPacket): Promise<void>;
  outgoingStream(client: object): Readable;
}
interface QueuedPacket { cmd: string; brokerId?: string; brokerCounter?: number; messageId?: number; payload?: Buffer | string }
interface Replay {
  done: boolean;
  closed: boolean;
  /** Live deliveries held back while the queue is replayed: the replay must send each. */
  deferred: Set<string>;
  /** Every message the replay has handed to aedes on this connection. */
  sent: Set<string>;
  /** Handed to aedes, not yet through `outgoingUpdate`: key → the payload copy that marks the replay's own call. */
  inFlight: Map<string, Buffer>;
  drained?: () => void;
}

/**
 * aedes 1.2 resumes a persistent session in two paths that race: it subscribes the client (live
 * delivery starts), sends the CONNACK, and only then replays the stored queue from a snapshot, and
 * a QoS 1 message published meanwhile is both stored for the session and delivered live.
 * - Order: live messages overtake the stored backlog. After a host restart (issue 12 (g)) the
 *   restarted blue gate's backlog (work the front forwarded while blue was down) was still being
 *   replayed when the hand-over's end-of-hold marker came live: the marker overtook it, the hold was
 *   collected without it, blue was stopped at cleanup with the rest still queued in the broker, and
 *   it was never answered (847 and 1,349 MQTT messages in two bench runs, tap: ingest → active:blue
 *   and nowhere after). The same hazard broke the hold session's order before (docs/pitfalls.md).
 * - Closes and duplicates: the snapshot holds messages the live path sent too; one the client has
 *   already acknowledged fails `outgoingUpdate` with "no such packet" and aedes closes the client
 *   (handlers/connect.js `emptyQueueFilter`, client.js `writeQoS`); one not yet acknowledged is
 *   sent twice. Under load every resume closed again, and each close was a moment where
 *   client-side work queued in memory could be lost.
 * `test/dev/mqtt-broker-resume.test.ts` reproduces both (on an idle machine: 2 closes, 50 "no such
 * packet", a duplicate and live messages ahead of the backlog, for 6,000 messages).
 *
 * Here a resumed session gets its stored queue first, in order, then live messages, as Mosquitto
 * does: while the queue is replayed the live path sends nothing (the message is in the queue too:
 * aedes stores a QoS 1 message for every persistent subscriber before delivering it live), and the
 * replay takes fresh snapshots until it has sent every message the live path held back; only then
 * (checked and switched in one synchronous step, so nothing falls between) does the live path take
 * over. Each message (brokerId:brokerCounter) is sent once per connection, and a stored message
 * that is gone by the time it is sent (acknowledged already) is not an error. aedes writes the
 * packet it passed to `outgoingUpdate` whatever happens, so a packet not to send becomes a PINGRESP,
 * which an MQTT client takes as a no-op. Nothing is recorded per message once the replay is over.
 *
 * aedes reads the replay ahead (its pipeline takes up to 16 packets, then writes one per event-loop
 * turn), so a packet the replay has yielded is not sent yet: aedes writes it right after its
 * `outgoingUpdate` call for it. The switch to live waits until that call has come for every yielded
 * packet: switching when the generator ended let live deliveries overtake the replay's last few
 * (0 missing, 0 twice, but e.g. 5,494–5,499 ahead of 5,443–5,493: clean-clone CI under load, and the
 * resume test in 8 of 8 runs under load). A live call for a yielded message can also come before the
 * replay's own call for it, so the replay's call is told apart by identity, not by key: the replay
 * hands aedes a copy of the payload, and aedes' packet keeps that very Buffer.
 */
function resumeOnce(p: OutgoingPersistence): void {
  const replays = new WeakMap<object, Replay>();
  const replayOf = (client: object): Replay => {
    let r = replays.get(client);
    if (!r) {
      r = { done: false, closed: false, deferred: new Set(), sent: new Set(), inFlight: new Map() };
      replays.set(client, r);
    }
    return r;
  };
  const keyOf = (packet: QueuedPacket) => `${packet.brokerId}:${packet.brokerCounter}`;
  const neutralise = (packet: QueuedPacket) => {
    packet.cmd = "pingresp";
  };
  const update = p.outgoingUpdate.bind(p);
  const stream = p.outgoingStream.bind(p);

  p.outgoingUpdate = async (client, packet) => {
    const r = replayOf(client);
    const key = keyOf(packet);
    if (packet.payload !== undefined && r.inFlight.get(key) === packet.payload) {
      // The replay's own call: the message may have been acknowledged since its snapshot.
      r.inFlight.delete(key);
      try { await update(client, packet); } catch { neutralise(packet); }
      // aedes writes this packet as soon as this call returns, before any live delivery can start.
      if (!r.inFlight.size) r.drained?.();
      return;
    }
    if (!r.done) {
      // Live while the queue is replayed: the replay sends it, in its place.
      r.deferred.add(key);
      return neutralise(packet);
    }
    // Stored before the replay ended, delivered live only after it: the replay has sent it.
    if (r.sent.has(key)) return neutralise(packet);
    try { await update(client, packet); } catch { neutralise(packet); }
  };

  p.outgoingStream = (client) => {
    const r = replayOf(client);
    // Every yielded packet has been through the replay's `outgoingUpdate` (so aedes has written it).
    const allWritten = async () => {
      while (r.inFlight.size && !r.closed) await new Promise<void>((res) => (r.drained = res));
    };
    async function* queueFirst() {
      try {
        for (let idle = 0; idle < 3;) {
          let fresh = 0;
          for await (const stored of stream(client) as AsyncIterable<QueuedPacket>) {
            const key = keyOf(stored);
            if (r.sent.has(key)) continue;
            r.sent.add(key);
            const packet = { ...stored, payload: Buffer.from(stored.payload ?? "") };
            r.inFlight.set(key, packet.payload);
            fresh++;
            yield packet;
          }
          await allWritten();
          if (r.closed) return;
          // Synchronous with the switch below: no live delivery can slip between the check and `done`.
          if ([...r.deferred].every((k) => r.sent.has(k))) return;
          // A held-back message that never shows up in the queue (aedes dropped it): do not wait for it forever.
          idle = fresh ? 0 : idle + 1;
        }
      } finally {
        r.done = true;
        r.deferred.clear();
        r.inFlight.clear();
        // A live delivery of a message the replay sent can still be on its way (aedes defers it a tick).
        setTimeout(() => r.sent.clear(), 10_000).unref();
      }
    }
    const replay = Readable.from(queueFirst());
    // The connection closed mid-replay: aedes stops calling `outgoingUpdate`, so stop waiting for it.
    replay.once("close", () => {
      r.closed = true;
      r.drained?.();
    });
    return replay;
  };
}
