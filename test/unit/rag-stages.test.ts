/**
 * The RAG pipeline's MQTT stage flows (flows/primitives/ragStages.mts): the
 * files are current, each role's flow is entered by one MQTT gate and runs
 * its role's stages, and the route / forward function code (run here as
 * Node-RED runs it: msg, node, env) keeps a message from publishing outside
 * redforge/ingest/{instance} and redforge/pipeline/{caller}/replies.
 * End to end in real Node-RED: test/integration/rag-pipeline.test.ts.
 */
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { RAG_ROLES, ragStageFile, ragStageFlow, renderRagStage } from "../../flows/primitives/ragStages.mts";
import { pipelineReplyTopic } from "../../flows/primitives/ragMqttClient.mts";

type Node = Record<string, any>;
const run = (node: Node, msg: Node, env: Record<string, string> = {}) => {
  const warnings: string[] = [];
  const out = new Function("msg", "node", "env", node.func)(msg, { warn: (w: string) => warnings.push(w) }, { get: (k: string) => env[k] });
  return { out, warnings };
};
const nodeOf = (role: string, local: string) => ragStageFlow(role).find((n) => n.id === `rfrag${role}-${local}`) as Node;
const input = (pipeline: unknown, payload: unknown = "text") => ({ payload: { payload, metadata: { flowId: "wf-1", timestamp: new Date().toISOString(), contentType: "text", pipeline } } });

describe("RAG stage flows", () => {
  it("are current: run npx tsx flows/primitives/ragStages.mts after changing ragStages.mts or a work block", () => {
    for (const role of Object.keys(RAG_ROLES)) expect(fs.readFileSync(ragStageFile(role), "utf8") === renderRagStage(role), `rag-stage-${role}.json is stale`).toBe(true);
  });

  it("each role: one MQTT gate, a reader per stage, one exit, a QoS 1 publish on the bus REDFORGE_MQTT_URL names; the pipeline description lists it", () => {
    const rag = JSON.parse(fs.readFileSync(new URL("../../flows/primitives/rag-pipeline.json", import.meta.url), "utf8"));
    for (const [role, stages] of Object.entries(RAG_ROLES)) {
      const flow = ragStageFlow(role);
      expect(flow.filter((n) => n.type === "redforge-gate").map((n) => n.source)).toEqual(["mqtt"]);
      expect(flow.filter((n) => n.type === "redforge-message" && n.mode === "input").map((n) => n.id)).toEqual(stages.map((s) => `rfrag${role}-${s}-in`));
      expect(flow.filter((n) => n.type === "redforge-exit")).toHaveLength(1);
      expect(flow.find((n) => n.type === "mqtt out")).toMatchObject({ qos: "1", topic: "" });
      expect(flow.find((n) => n.type === "mqtt-broker")).toMatchObject({ broker: "${REDFORGE_MQTT_URL}", protocolVersion: "4" });
      expect(rag.instances.find((i: { role: string }) => i.role === role).blueprints).toContain(`rag-stage-${role}`);
    }
  });

  it("route: a message without a reply topic under redforge/pipeline/ is dropped; a stage the role does not run, or a bad hop, is an invalid_input answer", () => {
    const route = nodeOf("store", "route");
    for (const replyTo of [undefined, "redforge/control/x", "redforge/pipeline/#/replies", "redforge/pipeline/a/b/replies"]) {
      const { out, warnings } = run(route, input({ stage: "store", replyTo }));
      expect(out.slice(0, 3)).toEqual([null, null, null]);
      expect(out[3]).toBeTruthy();
      expect(warnings).toHaveLength(1);
    }
    const replyTo = pipelineReplyTopic("caller-1");
    expect(run(route, input({ stage: "retrieve", replyTo, next: [{ stage: "respond", instance: "ans" }] })).out[1].pipeline).toMatchObject({ stage: "retrieve", next: [{ stage: "respond", instance: "ans" }], replyTo });
    const wrong = run(route, input({ stage: "respond", replyTo })).out[2];
    expect(wrong.payload).toMatchObject({ payload: null, metadata: { flowId: "wf-1", status: "error", source: "rag-stage-store" }, error: { code: "invalid_input" } });
    for (const next of [[{ stage: "store", instance: "a/b" }], [{ stage: "nope", instance: "a" }], [{ stage: "store", instance: "+" }]]) {
      expect(run(route, input({ stage: "store", replyTo, next })).out[2].payload.error.message).toMatch(/metadata.pipeline.next/);
    }
  });

  it("forward: a success goes to the next hop's ingest topic as its msg_input (retrieve → respond reshaped); an error or the last stage to the reply topic", () => {
    const forward = nodeOf("store", "forward");
    const replyTo = pipelineReplyTopic("caller-1");
    const answer = (status: string, payload: unknown) => ({ payload: { payload, metadata: { flowId: "wf-1", timestamp: "t", source: "query-processing", contentType: "json", status }, error: null, config: { topK: 1 } } });
    const retrieved = { query: "q?", results: [{ text: "a" }] };
    const next = run(forward, { ...answer("success", retrieved), pipeline: { stage: "retrieve", next: [{ stage: "respond", instance: "ans-1" }], replyTo, trail: [], received: 1 } }, { REDFORGE_INSTANCE_ID: "store-1" }).out;
    expect(next.topic).toBe("redforge/ingest/ans-1");
    expect(next.payload).toMatchObject({
      payload: { question: "q?", context: [{ text: "a" }] }, config: { topK: 1 },
      metadata: { flowId: "wf-1", pipeline: { stage: "respond", next: [], replyTo, trail: [{ stage: "retrieve", instance: "store-1", received: 1 }] } },
    });
    const failed = run(forward, { ...answer("error", null), pipeline: { stage: "retrieve", next: [{ stage: "respond", instance: "ans-1" }], replyTo, trail: [], received: 1 } }, { REDFORGE_INSTANCE_ID: "store-1" }).out;
    expect(failed.topic).toBe(replyTo);
    expect(failed.payload.metadata.pipeline).toMatchObject({ stage: "retrieve", instance: "store-1" });
  });
});
