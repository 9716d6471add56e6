/**
 * Nodes the agent primitives (flows/primitives/ in the RedForge repository)
 * are built from, where no well-kept node-red-contrib package does the job:
 *
 * - redforge-message: the message contract at a flow's edges. "input" reads a
 *   msg_input (msg.payload, e.g. an HTTP body) into msg.agent + msg.payload;
 *   output 2 gets an answer ready for http response when it does not follow
 *   the contract. "output" turns msg.payload (or msg.agent.error) into a msg_output.
 * - redforge-chunk: sentence-aware text chunking (lib/chunkText.js).
 * - redforge-dlq: dead-letters a message the flow gave up on to MQTT
 *   `redforge/dlq/{instance}` (QoS 1) and passes it on.
 * - redforge-model-policy: in front of every model call; refuses a model the
 *   team's approved_models policy does not list (lib/modelPolicy.js).
 *
 * Environment (set by the RedForge bridge): REDFORGE_INSTANCE_ID, REDFORGE_MQTT_URL.
 */
"use strict";

const { readInput, buildOutput, httpStatusOf } = require("../lib/agentMessage.js");
const { chunkText } = require("../lib/chunkText.js");
const { connectMqtt } = require("../lib/mqttClient.js");
const { DLQ_TOPIC_TEMPLATE } = require("../lib/agents.generated.js");
const { verdictFor, policyWatch } = require("../lib/modelPolicy.js");

const JSON_HEADERS = () => ({ "content-type": "application/json" });

// One connection per Node-RED process for every dlq node; it outlives redeploys so queued dead letters are not dropped.
let dlqShared;
function dlqClient(RED) {
  const instanceId = process.env.REDFORGE_INSTANCE_ID;
  const url = process.env.REDFORGE_MQTT_URL;
  if (!instanceId || !url) return null;
  if (!dlqShared) {
    const client = connectMqtt(url, `redforge-dlq-${instanceId}-${process.pid}`, { clean: true });
    client.on("error", (err) => RED.log.warn(`[redforge-dlq] mqtt: ${err.message}`));
    dlqShared = { client, instanceId, topic: DLQ_TOPIC_TEMPLATE.replace("{instance}", instanceId) };
  }
  return dlqShared;
}

/** A number from the node's config (possibly "${ENV}"-substituted, so maybe ""), else undefined. */
function configNumber(value) {
  if (value === undefined || value === null || String(value).trim() === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

module.exports = function (RED) {
  function RedforgeMessageNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const mode = config.mode === "output" ? "output" : "input";
    const source = config.source || "redforge-agent";
    node.on("input", (msg, send, done) => {
      if (mode === "input") {
        const { input, error } = readInput(msg.payload);
        if (error) {
          msg.payload = buildOutput({ flowId: msg.payload && msg.payload.metadata && msg.payload.metadata.flowId, source, contentType: "json", error: { code: "invalid_input", message: error } });
          msg.statusCode = 400;
          msg.headers = JSON_HEADERS();
          send([null, msg]);
          return done();
        }
        msg.agent = { input, flowId: input.metadata.flowId, config: input.config || {}, error: null };
        msg.payload = input.payload;
        send([msg, null]);
        return done();
      }
      const agent = msg.agent || {};
      msg.payload = buildOutput({ flowId: agent.flowId, source, contentType: agent.contentType || config.contentType, payload: msg.payload, error: agent.error, config: agent.config });
      msg.statusCode = httpStatusOf(agent.error);
      // http response sends msg.headers: drop whatever a model's HTTP answer left there (content-length!).
      msg.headers = JSON_HEADERS();
      send(msg);
      done();
    });
  }
  RED.nodes.registerType("redforge-message", RedforgeMessageNode);

  function RedforgeChunkNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    node.on("input", (msg, send, done) => {
      const overrides = (msg.agent && msg.agent.config) || {};
      const size = configNumber(overrides.chunkSize) ?? configNumber(config.size);
      const overlap = configNumber(overrides.chunkOverlap) ?? configNumber(config.overlap);
      try {
        const chunks = chunkText(msg.payload, { ...(size !== undefined ? { size } : {}), ...(overlap !== undefined ? { overlap } : {}) });
        msg.payload = chunks;
        node.status({ text: `${chunks.length} chunk(s)` });
        send(msg);
        done();
      } catch (err) {
        if (!msg.agent) return done(err);
        // Inside a primitive the failure is the answer: the output node turns it into a msg_output.
        msg.agent.error = { code: "invalid_input", message: err.message };
        send(msg);
        done();
      }
    });
  }
  RED.nodes.registerType("redforge-chunk", RedforgeChunkNode);

  function RedforgeDlqNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const dlq = dlqClient(RED);
    node.status(dlq ? { fill: "green", shape: "dot", text: dlq.topic } : { fill: "grey", shape: "ring", text: "not managed by RedForge" });
    node.on("input", (msg, send, done) => {
      const agent = msg.agent || {};
      const letter = {
        instanceId: dlq ? dlq.instanceId : undefined,
        flowId: agent.flowId,
        primitive: config.source || undefined,
        nodeRedFlow: node.z,
        failedAt: new Date().toISOString(),
        error: agent.error || { code: "internal_error", message: "dead-lettered without an error" },
        input: agent.input,
      };
      if (!dlq) {
        node.warn(`dead letter not sent (no REDFORGE_MQTT_URL): ${JSON.stringify(letter.error)}`);
      } else {
        dlq.client.publish(dlq.topic, JSON.stringify(letter), { qos: 1 }, (err) => {
          if (err) node.error(`dead letter not sent: ${err.message}`, msg);
        });
      }
      send(msg);
      done();
    });
  }
  RED.nodes.registerType("redforge-dlq", RedforgeDlqNode);

  /**
   * Output 1: the model may be called. Output 2: refused; msg.agent.error is
   * model_not_approved and msg.aiDecision a record marked blocked (finishReason
   * "blocked"), for a redforge-ai-audit node. Until the bridge's first policy
   * arrives a call waits up to MODEL_POLICY_WAIT_MS (default 3000); with none by
   * then it passes with a warning, unless MODEL_POLICY_REQUIRED is set. A list
   * past its expiresAt (the bridge could not refresh it) refuses every call
   * with model_policy_stale instead (fail closed).
   */
  function RedforgeModelPolicyNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const watch = policyWatch((line) => RED.log.warn(line));
    node.status(watch ? { fill: "green", shape: "dot", text: "approved models enforced" } : { fill: "grey", shape: "ring", text: "not managed by RedForge" });
    node.on("input", (msg, send, done) => {
      const request = (msg.agent && msg.agent.request) || {};
      const call = { model: String(request.model || ""), provider: request.api === "openai" ? "openai" : "ollama" };
      if (!watch) {
        send([msg, null]);
        return done();
      }
      const waitMs = watch.waitedOnce ? 0 : configNumber(env("MODEL_POLICY_WAIT_MS")) ?? 3000;
      watch.get(waitMs).then((current) => {
        watch.waitedOnce = true;
        const verdict = verdictFor(current, call, { now: Date.now(), maxAgeS: env("MODEL_POLICY_MAX_AGE_S"), required: truthy(env("MODEL_POLICY_REQUIRED")) });
        if (verdict.unchecked) node.warn("no approved-model policy received from the RedForge bridge: model calls are not checked");
        if (verdict.allowed) {
          send([msg, null]);
          return done();
        }
        msg.agent.error = { code: verdict.code, message: verdict.reason };
        msg.aiDecision = {
          provider: call.provider, model: call.model || "(none)",
          operationName: /embed/.test(String(request.url || "")) ? "embeddings" : "chat",
          prompt: request.prompt, inputTokens: 0, outputTokens: 0, latencyMs: 0, finishReason: "blocked",
          metadata: { blocked: true, code: verdict.code, policy: verdict.policy, reason: verdict.reason, flowId: msg.agent.flowId },
        };
        node.status({ fill: "red", shape: "dot", text: (verdict.code === "model_policy_stale" ? "policy list stale" : `blocked ${call.model}`).slice(0, 40) });
        send([null, msg]);
        done();
      }, (err) => done(err));
    });
  }
  RED.nodes.registerType("redforge-model-policy", RedforgeModelPolicyNode);
};

function env(name) {
  return process.env[name];
}

function truthy(value) {
  return value !== undefined && !["", "0", "false", "no"].includes(String(value).toLowerCase());
}
