/**
 * Does the cluster's broker keep what a restarting data plane must find? Held work and the
 * backlog of a gate that is restarting sit in the broker's queue for an offline persistent
 * session (docs/faults-host-restart.md). Mosquitto's default `max_queued_messages` (1,000) drops
 * the rest silently: a host restart at 400 msg/s lost 1,340 messages that no runtime ever saw,
 * so the product's own accounting could not count them. This check makes that limit visible
 * before it costs anything: it parks a persistent session, publishes more QoS 1 messages than
 * that limit to it, and counts what the session gets when it comes back.
 */
import { randomUUID } from "node:crypto";
import { connect, connectAsync, type IClientOptions, type MqttClient } from "mqtt";

export interface BrokerQueueCheck {
  /** QoS 1 messages published while the session was offline. */
  sent: number;
  /** Of those, what the session received when it came back. */
  queued: number;
  ok: boolean;
  /** What to tell the operator when not ok. */
  advice?: string;
}

export interface BrokerCheckOptions {
  /**
   * More than the default limit of the brokers that have one (Mosquitto's max_queued_messages,
   * EMQX's max_mqueue_len, VerneMQ's max_offline_messages: 1,000 each). A higher limit passes and
   * can still be too low for a long restart at a high rate; the advice says how to size it.
   */
  messages?: number;
  /** How long the returning session may take to receive its queue. */
  timeoutMs?: number;
}

const TOPIC_ROOT = "redforge/broker-check";

export async function checkBrokerQueue(mqttUrl: string, opts: BrokerCheckOptions = {}): Promise<BrokerQueueCheck> {
  const sent = opts.messages ?? 1_200;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const id = randomUUID();
  const topic = `${TOPIC_ROOT}/${id}`;
  const session: IClientOptions = { clientId: `redforge-broker-check-${id}`, clean: false, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 };

  // 1. Park a persistent session subscribed at QoS 1, then leave it.
  const parked = await connectAsync(mqttUrl, session);
  try {
    await parked.subscribeAsync(topic, { qos: 1 });
  } finally {
    await parked.endAsync();
  }

  // 2. Publish to it while it is away.
  const publisher = await connectAsync(mqttUrl, { clean: true, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
  try {
    for (let i = 0; i < sent; i++) await publisher.publishAsync(topic, String(i), { qos: 1 });
  } finally {
    await publisher.endAsync();
  }

  // 3. Come back and count what was kept; then drop the session so nothing stays on the broker.
  const seen = new Set<string>();
  let back: MqttClient | undefined;
  try {
    // The handler must be in place before the session resumes: the broker sends the queue at once.
    back = connect(mqttUrl, { ...session, manualConnect: true });
    const client = back;
    const done = new Promise<void>((resolve, reject) => {
      client.once("error", reject);
      let quiet: NodeJS.Timeout | undefined;
      const deadline = setTimeout(resolve, timeoutMs);
      client.on("message", (_t, payload) => {
        seen.add(payload.toString());
        if (seen.size >= sent) { clearTimeout(deadline); clearTimeout(quiet); resolve(); return; }
        // A broker that dropped some delivers the rest at once: a quiet second after the last one ends the wait.
        clearTimeout(quiet);
        quiet = setTimeout(() => { clearTimeout(deadline); resolve(); }, 1_000);
      });
    });
    client.connect();
    await done;
  } finally {
    await back?.endAsync(true).catch(() => {});
    const cleaner = await connectAsync(mqttUrl, { ...session, clean: true }).catch(() => undefined);
    await cleaner?.endAsync().catch(() => {});
  }

  const queued = seen.size;
  if (queued >= sent) return { sent, queued, ok: true };
  return {
    sent, queued, ok: false,
    advice: `the broker at ${redact(mqttUrl)} kept only ${queued} of ${sent} QoS 1 messages for an offline persistent session: ` +
      `a data plane or gate that restarts under load would lose what arrives beyond that, and no count in RedForge can see it. ` +
      `Mosquitto: set "max_queued_messages 0" (or above the message rate × the longest restart) and "persistence true" (docs/faults-host-restart.md).`,
  };
}

/** Credentials in the URL never reach a log line. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) { u.username = "***"; u.password = ""; }
    return u.toString();
  } catch {
    return "the configured broker";
  }
}
