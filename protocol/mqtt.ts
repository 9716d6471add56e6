/**
 * The MQTT half of the contract between the bridge and the RedForge node
 * package inside Node-RED: every topic either side publishes or subscribes,
 * the end-of-hold marker, and the deploy gate's modes.
 *
 * Topics are keyed by whose they are: an *instance* (the managed Node-RED as
 * the control plane knows it) or a *runtime* (one Node-RED process of it: blue
 * or green during a deployment). Producers only ever see the instance's ingest
 * topic; the bridge's MQTT front moves work between runtimes.
 *
 * The node package is CommonJS loaded by Node-RED and cannot import this
 * file; flows/node-package/lib/contract.generated.js is generated from the
 * constants below (`npx tsx flows/node-package/scripts/generate-contract.mts`),
 * and test/integration/node-package-contract.test.ts fails when it is stale.
 * So everything the node package needs is plain data here, and the builders
 * are derived from it.
 */

/** Topic templates; `{instance}` / `{runtime}` are the only placeholders. */
export const TOPIC_TEMPLATES = {
  /** Producers publish an instance's work here; the bridge's MQTT front is its one subscriber. */
  ingest: "redforge/ingest/{instance}",
  /** The front forwards work to the serving runtime's gate here. */
  active: "redforge/active/{runtime}",
  /** A draining gate republishes what it holds here, then the end-of-hold marker; the front replays it. */
  hold: "redforge/hold/{instance}",
  /** Retained gate mode for a runtime (`{mode, at}`): a gate that (re)starts picks it up. */
  control: "redforge/control/{runtime}",
  /** Retained gate status of a runtime, published by its gate. */
  status: "redforge/status/{runtime}",
  /** AI decision records of an instance (redforge-ai-audit node → bridge). */
  audit: "redforge/audit/{instance}",
} as const;

export type TopicName = keyof typeof TOPIC_TEMPLATES;

/** What the bridge's AI audit forwarder subscribes: every instance's audit topic. */
export const AUDIT_TOPIC_FILTER = "redforge/audit/+";

/**
 * The end-of-hold marker: `{"$redforge":"end-of-hold","token":"<uuid>"}` sent
 * down the old runtime's active topic; its gate passes it onto the hold topic
 * behind everything it held. Payloads longer than MARKER_MAX_BYTES are work, never a marker.
 */
export const MARKER_KEY = "$redforge";
export const END_OF_HOLD = "end-of-hold";
export const MARKER_MAX_BYTES = 200;

/** `active` passes work on; `drain` holds new work; `retire` passes work but closes keep-alive HTTP connections. */
export const GATE_MODES = ["active", "drain", "retire"] as const;
export type GateMode = (typeof GATE_MODES)[number];

// Ids end up inside a topic: a '/', '+' or '#' would address other topics or subscribe to many.
const TOPIC_ID = /^[^/+#\u0000]{1,128}$/;

function fill(template: string, placeholder: "{instance}" | "{runtime}", id: string): string {
  if (!TOPIC_ID.test(id)) throw new Error(`not a valid MQTT topic level: ${JSON.stringify(id)}`);
  return template.replace(placeholder, id);
}

const byInstance = (name: "ingest" | "hold" | "audit") => (instanceId: string) => fill(TOPIC_TEMPLATES[name], "{instance}", instanceId);
const byRuntime = (name: "active" | "control" | "status") => (runtimeId: string) => fill(TOPIC_TEMPLATES[name], "{runtime}", runtimeId);

export const mqttTopics = {
  ingest: byInstance("ingest"),
  hold: byInstance("hold"),
  audit: byInstance("audit"),
  active: byRuntime("active"),
  control: byRuntime("control"),
  status: byRuntime("status"),
} as const;

/** The instance id of an audit topic, undefined for any other topic. */
export function instanceOfAuditTopic(topic: string): string | undefined {
  const prefix = TOPIC_TEMPLATES.audit.replace("{instance}", "");
  const rest = topic.startsWith(prefix) ? topic.slice(prefix.length) : "";
  return rest && TOPIC_ID.test(rest) ? rest : undefined;
}

export function endOfHoldMarker(token: string): string {
  return JSON.stringify({ [MARKER_KEY]: END_OF_HOLD, token });
}

/** The token of an end-of-hold marker, undefined when the payload is work. */
export function parseEndOfHold(payload: Uint8Array | string): string | undefined {
  const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  if (bytes.byteLength > MARKER_MAX_BYTES) return undefined;
  const text = typeof payload === "string" ? payload : new TextDecoder().decode(payload);
  try {
    const v = JSON.parse(text) as Record<string, unknown> | null;
    return v && typeof v === "object" && v[MARKER_KEY] === END_OF_HOLD && typeof v.token === "string" ? v.token : undefined;
  } catch {
    return undefined;
  }
}

/** The retained control message that sets a runtime's gate mode. */
export function gateControlMessage(mode: GateMode, at: Date = new Date()): string {
  return JSON.stringify({ mode, at: at.toISOString() });
}
