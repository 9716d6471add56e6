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
  /** The whole check's bound (default timeoutMs + 45 s): past it the check fails, saying what it was doing. */
  deadlineMs?: number;
}

const TOPIC_ROOT = "redforge/broker-check";

/**
 * Rejects (never hangs) when the broker closes a connection of the check or the check outlives its
 * deadline. mqtt.js with `reconnectPeriod: 0` settles neither a CONNACK wait nor a QoS 1 publish whose
 * connection the broker closed (it fails only what it calls volatile), and `end()` never calls back
 * once the socket is gone (mqttjs/MQTT.js#710): a broker that dropped a connection mid-check left the
 * check pending for good, and the bridge's BrokerWatch never checked again (broker-check.test.ts).
 */
export async function checkBrokerQueue(mqttUrl: string, opts: BrokerCheckOptions = {}): Promise<BrokerQueueCheck> {
  const sent = opts.messages ?? 1_200;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const deadlineMs = opts.deadlineMs ?? timeoutMs + 45_000;
  const id = randomUUID();
  const topic = `${TOPIC_ROOT}/${id}`;
  const session: IClientOptions = { clientId: `redforge-broker-check-${id}`, clean: false, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 };

  let doing = "connecting";
  let fail!: (err: Error) => void;
  const failed = new Promise<never>((_, reject) => { fail = reject; });
  failed.catch(() => { /* raced below */ });
  const clients: MqttClient[] = [];
  /** A connection of the check: the broker closing it, or an error on it, ends the check at once. */
  const watch = (client: MqttClient, name: string): MqttClient => {
    clients.push(client);
    client.on("error", (err) => fail(new Error(`the ${name} connection failed while ${doing}: ${err.message}`)));
    client.on("close", () => { if (!client.disconnecting) fail(new Error(`the broker closed the ${name} connection while ${doing}`)); });
    return client;
  };
  const step = <T>(what: string, work: Promise<T>): Promise<T> => { doing = what; return Promise.race([work, failed]); };
  const deadline = setTimeout(() => fail(new Error(`no result within ${deadlineMs / 1000} s (${doing})`)), deadlineMs);

  const seen = new Set<string>();
  try {
    // 1. Park a persistent session subscribed at QoS 1, then leave it.
    const parked = watch(await step("connecting", connectAsync(mqttUrl, session, false)), "parked session's");
    await step("subscribing", parked.subscribeAsync(topic, { qos: 1 }));
    await step("leaving the parked session", parked.endAsync());

    // 2. Publish to it while it is away.
    const publisher = watch(await step("connecting the publisher", connectAsync(mqttUrl, { clean: true, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 }, false)), "publisher's");
    for (let i = 0; i < sent; i++) await step(`publishing (${i} of ${sent} acknowledged)`, publisher.publishAsync(topic, String(i), { qos: 1 }));
    await step("ending the publisher", publisher.endAsync());

    // 3. Come back and count what was kept. The handler must be in place before the session
    // resumes: the broker sends the queue at once.
    const back = watch(connect(mqttUrl, { ...session, manualConnect: true }), "returning session's");
    const done = new Promise<void>((resolve) => {
      let quiet: NodeJS.Timeout | undefined;
      const wait = setTimeout(resolve, timeoutMs);
      back.on("message", (_t, payload) => {
        seen.add(payload.toString());
        if (seen.size >= sent) { clearTimeout(wait); clearTimeout(quiet); resolve(); return; }
        // A broker that dropped some delivers the rest at once: a quiet second after the last one ends the wait.
        clearTimeout(quiet);
        quiet = setTimeout(() => { clearTimeout(wait); resolve(); }, 1_000);
      });
    });
    back.connect();
    await step("receiving the queue", done);
  } finally {
    clearTimeout(deadline);
    // Forced, and the socket destroyed even under a graceful end still waiting on the broker (not awaited: see above).
    for (const client of clients) if (!client.disconnected) { client.end(true); client.stream?.destroy(); }
    // Drop the session so nothing stays on the broker.
    await dropSession(mqttUrl, session);
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

/** A clean connection with the check's client id ends its persistent session; bounded, best effort. */
async function dropSession(mqttUrl: string, session: IClientOptions): Promise<void> {
  const cleaner = await connectAsync(mqttUrl, { ...session, clean: true }, false).catch(() => undefined);
  if (!cleaner) return;
  cleaner.on("error", () => { /* best effort */ });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([cleaner.endAsync().catch(() => {}), new Promise((r) => { timer = setTimeout(r, 5_000); })]);
  clearTimeout(timer);
  if (!cleaner.disconnected) cleaner.end(true);
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
