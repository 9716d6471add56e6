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
interface QueuedPacket { cmd: string; brokerId?: string; brokerCounter?: number; messageId?: number }
interface Replay { done: boolean; sentLive: Set<string>; sentFromQueue: Set<string>; pending: Set<string> }

/**
 * aedes 1.2 resumes a persistent session in two paths that race: it subscribes the client (live
 * delivery starts) and only then replays the stored queue from a snapshot, and a QoS 1 message
 * published meanwhile is both stored for the session and delivered live. So the snapshot holds
 * messages the live path sends too: one the client has already acknowledged fails
 * `outgoingUpdate` with "no such packet" and aedes closes the client (handlers/connect.js
 * `emptyQueueFilter`, client.js `writeQoS`); one not yet acknowledged is sent twice. Under load
 * every resume closed again (issue 12 (g): the restarted data plane's fronts and the restarted
 * gates reconnected again and again, and each close was a moment where client-side work queued in
 * memory could be lost), and duplicates reached the flows. `test/dev/mqtt-broker-resume.test.ts`
 * reproduces it (50 closes and a duplicate for 6,000 messages on an idle machine).
 *
 * Here each message (brokerId:brokerCounter) is sent at most once per connection while its queue is
 * replayed: the replay skips what the live path already sent, the live path skips what the replay
 * sent, and a stored message that is gone by the time it is sent (acknowledged already) is not an
 * error. aedes writes the packet it passed to `outgoingUpdate` whatever happens, so such a packet is
 * turned into a PINGRESP, which an MQTT client takes as a no-op. Once the replay has ended the live
 * path is aedes' own again (nothing is recorded: no per-message memory on a long-lived connection).
 * A real broker (Mosquitto, MQTT_URL) replays a session's queue before live messages and has no
 * such race.
 */
function resumeOnce(p: OutgoingPersistence): void {
  const replays = new WeakMap<object, Replay>();
  const replayOf = (client: object): Replay => {
    let r = replays.get(client);
    if (!r) replays.set(client, (r = { done: false, sentLive: new Set(), sentFromQueue: new Set(), pending: new Set() }));
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
    if (r.pending.delete(key)) {
      // The replay's own call: the message may have been acknowledged since the snapshot.
      try { await update(client, packet); } catch { neutralise(packet); }
      return;
    }
    if (!r.done) {
      if (r.sentFromQueue.has(key)) return neutralise(packet);
      r.sentLive.add(key);
    }
    try { await update(client, packet); } catch { neutralise(packet); }
  };

  p.outgoingStream = (client) => {
    const r = replayOf(client);
    const snapshot = stream(client);
    async function* once() {
      try {
        for await (const packet of snapshot as AsyncIterable<QueuedPacket>) {
          const key = keyOf(packet);
          if (r.sentLive.has(key) || r.sentFromQueue.has(key)) continue;
          r.sentFromQueue.add(key);
          r.pending.add(key);
          yield packet;
        }
      } finally {
        // Live deliveries of messages stored before the snapshot come within a few ticks of their
        // publish; a short grace keeps what the replay sent from being sent live again.
        r.done = true;
        r.sentLive.clear();
        setTimeout(() => r.sentFromQueue.clear(), 10_000).unref();
      }
    }
    return Readable.from(once());
  };
}
