/**
 * The RAG pipeline's MQTT stage flows (docs/agents.md "RAG pipeline over
 * MQTT"): one per role (rag-stage-<role>.json), entered over MQTT at the
 * instance's ingest topic (redforge/ingest/{instance}, its one `source: mqtt`
 * gate) and built from the same work blocks as the HTTP primitives.
 *
 * The message carries its own route (a routing slip) in
 * `metadata.pipeline = {stage, next: [{stage, instance}], replyTo, trail}`:
 * the stage flow runs `stage` (one its role runs), then, after the exit,
 * publishes the answer as the next hop's msg_input to that instance's ingest
 * topic (so it goes through the bridge's MQTT front and that instance's gate:
 * held during its deployments like any MQTT work), or, on the last stage or
 * on an error, the msg_output to `replyTo` (only under redforge/pipeline/, so
 * a message cannot make an instance publish onto control topics).
 * `trail` collects {stage, instance, at} per hop (per-stage timings).
 * test/unit/rag-stages.test.ts fails when a file is stale.
 *
 *   npx tsx flows/primitives/ragStages.mts
 */
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { TOPIC_TEMPLATES } from "../../protocol/mqtt.ts";
import { PRIMITIVES } from "./build.mts";
import { functionNode, type FlowNode } from "./work/shared.mts";

const DIR = fileURLToPath(new URL(".", import.meta.url));

/** A stage of the pipeline and the primitive that does its work. */
export const RAG_STAGES = {
  convert: "file-converter",
  chunk: "text-chunking",
  embed: "embeddings",
  store: "storage",
  retrieve: "query-processing",
  respond: "response-generation",
} as const;
export type RagStage = keyof typeof RAG_STAGES;

/** Which stages each role's instance runs (rag-pipeline.json's roles). */
export const RAG_ROLES: Record<string, RagStage[]> = {
  ingest: ["convert", "chunk"],
  embed: ["embed"],
  store: ["store", "retrieve"],
  answer: ["respond"],
};

/** Replies go to `redforge/pipeline/{caller}/replies`; the caller names itself (one topic level). */
export const PIPELINE_REPLY_TEMPLATE = "redforge/pipeline/{caller}/replies";
/** At most this many hops in a route (the slip is data from the bus: bounded). */
export const MAX_HOPS = 12;

const prefixOf = (role: string) => `rfrag${role}`;

/** Function code: validates the route, sends the message to its stage's msg_input reader. */
function routeCode(role: string, stages: RagStage[]): string {
  return `// metadata.pipeline is the message's route (docs/agents.md "RAG pipeline over MQTT").
const STAGES = ${JSON.stringify(stages)};
const KNOWN = ${JSON.stringify(Object.keys(RAG_STAGES))};
const REPLY = /^redforge\\/pipeline\\/[^/+#\\u0000]{1,128}\\/replies$/;
const ID = /^[^/+#\\u0000]{1,128}$/;
const out = new Array(STAGES.length + 2).fill(null);
const m = msg.payload && typeof msg.payload === "object" ? msg.payload.metadata : undefined;
const p = m && m.pipeline;
if (!p || typeof p.replyTo !== "string" || !REPLY.test(p.replyTo)) {
  node.warn("not a RAG pipeline message (no metadata.pipeline.replyTo under redforge/pipeline/): dropped");
  out[STAGES.length + 1] = msg;
  return out;
}
const next = Array.isArray(p.next) ? p.next : [];
const trail = Array.isArray(p.trail) ? p.trail.slice(-${MAX_HOPS}) : [];
const badHop = next.length > ${MAX_HOPS} - 1 || !next.every((h) => h && KNOWN.includes(h.stage) && typeof h.instance === "string" && ID.test(h.instance));
msg.pipeline = { stage: String(p.stage), next: badHop ? [] : next, replyTo: p.replyTo, trail, received: Date.now() };
const i = STAGES.indexOf(p.stage);
if (i >= 0 && !badHop) {
  out[i] = msg;
  return out;
}
msg.payload = {
  payload: null,
  metadata: { flowId: typeof m.flowId === "string" && m.flowId ? m.flowId : "unknown", timestamp: new Date().toISOString(), source: "rag-stage-${role}", contentType: "json", status: "error" },
  error: { code: "invalid_input", message: badHop
    ? "metadata.pipeline.next must be at most ${MAX_HOPS - 1} hops of {stage: " + KNOWN.join("|") + ", instance}"
    : "this instance (role ${role}) runs stages " + STAGES.join(", ") + ", not " + JSON.stringify(p.stage) },
};
out[STAGES.length] = msg;
return out;`;
}

/** Function code: the answer to the next hop's ingest topic as its msg_input, or to the caller. */
function forwardCode(): string {
  return `const out = msg.payload;
const p = msg.pipeline;
const me = env.get("REDFORGE_INSTANCE_ID") || "";
const trail = p.trail.concat([{ stage: p.stage, instance: me, received: p.received, answered: Date.now() }]);
const hop = p.next[0];
if (out && out.metadata && out.metadata.status === "success" && hop) {
  let payload = out.payload;
  let contentType = out.metadata.contentType;
  // The one reshaping of the chain: retrieval's answer is response generation's {question, context}.
  if (p.stage === "retrieve" && hop.stage === "respond") {
    payload = { question: out.payload.query, context: out.payload.results };
    contentType = "json";
  }
  msg.topic = ${JSON.stringify(TOPIC_TEMPLATES.ingest)}.replace("{instance}", hop.instance);
  msg.payload = {
    payload,
    metadata: { flowId: out.metadata.flowId, timestamp: new Date().toISOString(), source: out.metadata.source, contentType, status: "success",
      pipeline: { stage: hop.stage, next: p.next.slice(1), replyTo: p.replyTo, trail } },
  };
  if (out.config) msg.payload.config = out.config;
} else {
  msg.topic = p.replyTo;
  out.metadata.pipeline = { stage: p.stage, instance: me, trail };
  msg.payload = out;
}
return msg;`;
}

/** One role's stage flow as an importable tab (plus its broker config node). */
export function ragStageFlow(role: string): FlowNode[] {
  const stages = RAG_ROLES[role];
  if (!stages) throw new Error(`no RAG role ${role}`);
  const p = prefixOf(role);
  const id = (l: string) => `${p}-${l}`;
  const tab = id("tab");
  const nodes: FlowNode[] = [
    { id: id("gate"), type: "redforge-gate", name: "entry (MQTT)", source: "mqtt", ttl: 300, holdLimit: 1000, wires: [[id("route")]] },
    functionNode(id("route"), "route (metadata.pipeline)", routeCode(role, stages), [...stages.map((s) => [`${p}-${s}-in`]), [id("exit")], [id("drop")]]),
    functionNode(id("drop"), "not a pipeline message", "return null;", []),
  ];
  for (const stage of stages) {
    const primitive = RAG_STAGES[stage];
    const sid = (l: string) => `${p}-${stage}-${l}`;
    const work = PRIMITIVES[primitive]!.work(sid, primitive);
    nodes.push(
      { id: sid("in"), type: "redforge-message", name: `${stage}: read msg_input`, mode: "input", source: primitive, contentType: "json", outputs: 2, wires: [[work.first], [id("exit")]] },
      ...work.nodes,
      { id: sid("out"), type: "redforge-message", name: `${stage}: build msg_output`, mode: "output", source: primitive, contentType: "json", outputs: 1, wires: [[id("exit")]] },
      // A node that throws would leave the route without an answer: reply internal_error instead.
      { id: sid("catch"), type: "catch", name: `${stage}: unexpected failure`, scope: work.catchable, uncaught: false, wires: [[sid("failed")]] },
      functionNode(sid("failed"), "internal_error", `msg.agent = msg.agent || {};\nmsg.agent.error = { code: "internal_error", message: String((msg.error && msg.error.message) || "failed") };\nreturn msg;`, [[sid("out")]]),
    );
  }
  nodes.push(
    { id: id("exit"), type: "redforge-exit", name: "exit", wires: [[id("forward")]] },
    functionNode(id("forward"), "next stage or reply", forwardCode(), [[id("publish")]]),
    // done() after the broker's PUBACK: the gate's journal forgets the work once it has left.
    { id: id("publish"), type: "mqtt out", name: "next stage / reply", topic: "", qos: "1", retain: "false", respTopic: "", contentType: "", userProps: "", correl: "", expiry: "", broker: id("bus"), wires: [] },
  );
  const broker: FlowNode = {
    id: id("bus"), type: "mqtt-broker", name: "cluster bus (REDFORGE_MQTT_URL)", broker: "${REDFORGE_MQTT_URL}", port: "", clientid: "", autoConnect: true, usetls: false,
    protocolVersion: "4", keepalive: "60", cleansession: true, autoUnsubscribe: true,
    birthTopic: "", birthQos: "0", birthRetain: "false", birthPayload: "", birthMsg: {}, closeTopic: "", closeQos: "0", closeRetain: "false", closePayload: "", closeMsg: {},
    willTopic: "", willQos: "0", willRetain: "false", willPayload: "", willMsg: {}, userProps: "", sessionExpiry: "",
  };
  return [
    { id: tab, type: "tab", label: `RedForge · RAG stage (${role})`, disabled: false, info: `RedForge RAG pipeline, role ${role} over MQTT (redforge/ingest/{instance}): runs ${stages.join(", ")} and publishes each answer to the next stage named in metadata.pipeline, or to its replyTo (docs/agents.md)` },
    ...nodes.map((n, i) => ({ ...n, z: tab, x: 140 + (i % 6) * 200, y: 80 + Math.floor(i / 6) * 100 })),
    broker,
  ];
}

export const ragStageFile = (role: string) => path.join(DIR, `rag-stage-${role}.json`);
export const renderRagStage = (role: string) => `${JSON.stringify(ragStageFlow(role), null, 2)}\n`;

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  for (const role of Object.keys(RAG_ROLES)) {
    await fs.writeFile(ragStageFile(role), renderRagStage(role));
    process.stdout.write(`wrote ${path.relative(process.cwd(), ragStageFile(role))}\n`);
  }
}
