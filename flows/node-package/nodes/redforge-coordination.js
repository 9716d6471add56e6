/**
 * Coordination across agent instances (docs/agents.md, "Coordination"):
 *
 * - redforge-coordinator: runs a voting or refinement session for the
 *   question in msg.payload (a string or {question, context}) and answers
 *   with its outcome. Queries go to each participant over MQTT
 *   (`redforge/ingest/{instance}`, the bridge's front: held during a
 *   participant's deployment like any MQTT work); replies come back on
 *   `redforge/coordination/{this instance}/replies` through a persistent
 *   session. Sessions are kept in Redis (COORDINATION_REDIS_URL, an Upstash
 *   REST URL, with COORDINATION_REDIS_TOKEN), so a restarted coordinator
 *   finishes what it had open. Every answer and the decision are reported
 *   as AI decision records on `redforge/audit/{instance}`.
 * - redforge-coordination-reply: the participant's side. "capture" (right
 *   after the gate) keeps where a query wants its reply; "reply" (after the
 *   exit) publishes the msg_output there with the model call's figures.
 *
 * Environment (set by the RedForge bridge): REDFORGE_INSTANCE_ID, REDFORGE_RUNTIME_ID, REDFORGE_MQTT_URL.
 */
"use strict";

const { connectMqtt } = require("../lib/mqttClient.js");
const { TOPIC_TEMPLATES, topicsOf } = require("../lib/contract.generated.js");
const { buildRecord } = require("../lib/aiAuditRecord.js");
const { Coordinator, CoordinationInputError } = require("../lib/coordinator.js");
const { openStore } = require("../lib/coordinationStore.js");
const { RULES } = require("../lib/coordinationRules.js");

const REPLY_PREFIX = "redforge/coordination/";
const replyTopicOf = (instanceId) => `${REPLY_PREFIX}${instanceId}/replies`;
// An instance id as a topic level: no wildcard, no separator.
const INSTANCE = /^[A-Za-z0-9_.:-]{1,100}$/;

let runtime;

/** The one coordinator of this Node-RED process: its store, its MQTT session, its open sessions. */
function coordinationRuntime(RED) {
  if (runtime) return runtime;
  const instanceId = process.env.REDFORGE_INSTANCE_ID || "standalone";
  const runtimeId = process.env.REDFORGE_RUNTIME_ID || instanceId;
  const mqttUrl = process.env.REDFORGE_MQTT_URL;
  const store = openStore(process.env.COORDINATION_REDIS_URL, process.env.COORDINATION_REDIS_TOKEN);
  const replyTo = replyTopicOf(instanceId);
  const topics = topicsOf(instanceId, runtimeId);
  const state = { instanceId, store, replyTo, connected: false, resumed: undefined, client: undefined, coordinator: undefined };
  if (!mqttUrl) {
    runtime = state;
    return runtime;
  }
  // A persistent session: replies published while this process restarts wait in the broker for it.
  const client = connectMqtt(mqttUrl, `rf-coord-${runtimeId}`.slice(0, 64), { clean: false, reconnectPeriod: 500 });
  const coordinator = new Coordinator({
    instanceId, store, replyTo,
    log: (line) => RED.log.warn(`[redforge-coordinator] ${line}`),
    send: (to, message) => client.publish(TOPIC_TEMPLATES.ingest.replace("{instance}", to), JSON.stringify(message), { qos: 1 }),
    report: (records) => {
      for (const r of records) {
        const built = buildRecord(r, { instanceId, flowName: r.flowName, flowId: r.flowId });
        if (built.error) { RED.log.warn(`[redforge-coordinator] record not reported: ${built.error}`); continue; }
        client.publish(topics.audit, JSON.stringify(built.record), { qos: 1 });
      }
    },
  });
  Object.assign(state, { client, coordinator });
  client.on("connect", () => {
    state.connected = true;
    client.subscribe(replyTo, { qos: 1 });
    if (!state.resumed) {
      state.resumed = coordinator.resume().then((n) => {
        if (n) RED.log.info(`[redforge-coordinator] resumed ${n} open coordination session(s)`);
      }, (err) => { state.resumed = undefined; RED.log.warn(`[redforge-coordinator] could not resume open sessions: ${err.message}`); });
    }
  });
  client.on("close", () => { state.connected = false; });
  client.on("error", (err) => RED.log.warn(`[redforge-coordinator] mqtt: ${err.message}`));
  client.on("message", (topic, payload) => {
    if (topic !== replyTo) return;
    let reply;
    try { reply = JSON.parse(payload.toString()); } catch { return RED.log.warn("[redforge-coordinator] ignoring a reply that is not JSON"); }
    void coordinator.onReply(reply);
  });
  runtime = state;
  return runtime;
}

let replyShared;
function replyClient() {
  const url = process.env.REDFORGE_MQTT_URL;
  if (!url) return null;
  if (!replyShared) replyShared = connectMqtt(url, `redforge-reply-${process.env.REDFORGE_INSTANCE_ID || "standalone"}-${process.pid}`.slice(0, 64), { clean: true });
  return replyShared;
}

/**
 * A setting from the message's config, else the node's. A node setting "${VAR}" is the variable's value; Node-RED
 * leaves the text "${VAR}" as it is when VAR is not set, which means "not set" here too.
 */
function setting(overrides, key, configured) {
  const v = overrides && overrides[key] !== undefined ? overrides[key] : configured;
  if (v === undefined || v === null) return undefined;
  const text = String(v).trim();
  return text === "" || /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(text) ? undefined : v;
}
const list = (v) => (Array.isArray(v) ? v : String(v || "").split(",")).map((s) => String(s).trim()).filter(Boolean);
const int = (v, fallback) => { const n = Number(v); return v !== undefined && Number.isInteger(n) && n >= 0 ? n : fallback; };

/** The session's parameters from the node's configuration and the message's config, or throws CoordinationInputError. */
function sessionArgs(config, overrides, payload, flowId) {
  const p = typeof payload === "string" ? { question: payload } : payload;
  if (!p || typeof p.question !== "string" || p.question.trim() === "") throw new CoordinationInputError("payload must be a question, or {question, context} with context texts");
  const context = p.context === undefined ? [] : p.context;
  if (!Array.isArray(context) || context.some((c) => typeof c !== "string")) throw new CoordinationInputError("context must be an array of texts");
  const base = { question: p.question.trim(), context, flowId };
  const pattern = setting(overrides, "pattern", config.pattern) || "voting";
  const check = (id, what) => { if (!INSTANCE.test(id)) throw new CoordinationInputError(`${what} ${JSON.stringify(id)} is not an instance id`); return id; };
  if (pattern === "refinement") {
    const generator = setting(overrides, "generator", config.generator);
    const critic = setting(overrides, "critic", config.critic);
    if (!generator || !critic) throw new CoordinationInputError("refinement needs a generator and a critic instance");
    return { pattern, args: { ...base, generator: check(String(generator), "generator"), critic: check(String(critic), "critic"),
      maxRounds: Math.max(1, Math.min(20, int(setting(overrides, "maxRounds", config.maxRounds), 3))),
      stopPhrase: String(setting(overrides, "stopPhrase", config.stopPhrase) || "APPROVED"),
      stepTimeoutMs: Math.max(100, int(setting(overrides, "stepTimeoutMs", config.stepTimeout), 30_000)) } };
  }
  if (pattern !== "voting") throw new CoordinationInputError("pattern must be voting or refinement");
  const participants = list(setting(overrides, "participants", config.participants)).map((id) => check(id, "participant"));
  if (participants.length === 0 || participants.length > 50) throw new CoordinationInputError("voting needs 1..50 participant instances");
  if (new Set(participants).size !== participants.length) throw new CoordinationInputError("a participant is listed twice");
  const rule = String(setting(overrides, "rule", config.rule) || "majority");
  if (!RULES.includes(rule)) throw new CoordinationInputError(`rule must be one of ${RULES.join(", ")}`);
  const judge = setting(overrides, "judge", config.judge);
  return { pattern, args: { ...base, participants, rule, judge: judge ? check(String(judge), "judge") : undefined,
    quorum: int(setting(overrides, "quorum", config.quorum), 0),
    deadlineMs: Math.max(100, int(setting(overrides, "deadlineMs", config.deadline), 30_000)),
    judgeDeadlineMs: Math.max(100, int(setting(overrides, "judgeDeadlineMs", config.judgeDeadline), 30_000)) } };
}

/** What the coordinator answers: the outcome and every participant's answer, latency and tokens. */
function outcomeView(s) {
  return {
    sessionId: s.id, pattern: s.pattern, rule: s.rule, status: s.status,
    answer: s.outcome.answer, winner: s.outcome.winner, reason: s.outcome.reason,
    ...(s.pattern === "refinement" ? { rounds: s.outcome.rounds } : { quorum: s.quorum, missing: s.outcome.missing }),
    ...(s.outcome.tally ? { tally: s.outcome.tally } : {}),
    answers: s.answers.map((a) => ({ instanceId: a.instanceId, role: a.role, round: a.round, status: a.status, answer: a.answer, model: a.model, inputTokens: a.inputTokens, outputTokens: a.outputTokens, latencyMs: a.latencyMs, modelLatencyMs: a.modelLatencyMs })),
  };
}

module.exports = function (RED) {
  function RedforgeCoordinatorNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const rt = coordinationRuntime(RED);
    const show = () => node.status(!rt.coordinator ? { fill: "grey", shape: "ring", text: "no REDFORGE_MQTT_URL" }
      : rt.connected ? { fill: "green", shape: "dot", text: rt.store.durable ? "ready" : "ready · sessions in memory only" }
        : { fill: "yellow", shape: "ring", text: "connecting" });
    show();
    const timer = setInterval(show, 2000);
    node.on("close", () => clearInterval(timer));

    node.on("input", (msg, send, done) => {
      const agent = msg.agent || (msg.agent = { config: {}, error: null });
      let parsed;
      try {
        if (!rt.coordinator) throw new CoordinationInputError("this instance has no MQTT bus (REDFORGE_MQTT_URL): it cannot reach participants");
        parsed = sessionArgs(config, agent.config, msg.payload, agent.flowId);
      } catch (err) {
        agent.error = { code: "invalid_input", message: err.message };
        send(msg);
        return done();
      }
      const started = parsed.pattern === "voting" ? rt.coordinator.vote(parsed.args) : rt.coordinator.refine(parsed.args);
      started.then((s) => {
        node.status({ fill: s.outcome.answer !== null ? "green" : "red", shape: "dot", text: `${s.pattern}: ${s.status}` });
        if (s.outcome.answer === null) agent.error = { code: "model_unavailable", message: `coordination session ${s.id} ended ${s.status}: ${s.outcome.reason}` };
        msg.payload = outcomeView(s);
        send(msg);
        done();
      }, (err) => {
        agent.error = { code: err instanceof CoordinationInputError ? "invalid_input" : "internal_error", message: err.message };
        send(msg);
        done();
      });
    });
  }
  RED.nodes.registerType("redforge-coordinator", RedforgeCoordinatorNode);

  function RedforgeCoordinationReplyNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const mode = config.mode === "reply" ? "reply" : "capture";
    const client = mode === "reply" ? replyClient() : null;
    node.on("input", (msg, send, done) => {
      if (mode === "capture") {
        const m = msg.payload && msg.payload.metadata;
        const c = m && m.coordination;
        // Only under the coordination prefix: a query must not make this instance publish anywhere else (control topics).
        if (m && typeof m.replyTo === "string" && m.replyTo.startsWith(REPLY_PREFIX) && !/[+#]/.test(m.replyTo) && c && typeof c.sessionId === "string" && typeof c.requestId === "string") {
          msg.coordinationRoute = { replyTo: m.replyTo, sessionId: c.sessionId, requestId: c.requestId };
        }
        send(msg);
        return done();
      }
      const route = msg.coordinationRoute;
      if (!route || !client) {
        if (!client) node.warn("no REDFORGE_MQTT_URL: reply not sent");
        return done();
      }
      const d = msg.aiDecision || {};
      const reply = {
        sessionId: route.sessionId, requestId: route.requestId, instanceId: process.env.REDFORGE_INSTANCE_ID,
        output: msg.payload,
        call: { provider: d.provider, model: d.model, responseModel: d.responseModel, inputTokens: d.inputTokens, outputTokens: d.outputTokens, latencyMs: d.latencyMs },
      };
      // done() after the broker's PUBACK: the gate forgets the work only once its answer has left (gateRuntime completed()).
      client.publish(route.replyTo, JSON.stringify(reply), { qos: 1 }, (err) => done(err || undefined));
    });
  }
  RED.nodes.registerType("redforge-coordination-reply", RedforgeCoordinationReplyNode);
};

module.exports.sessionArgs = sessionArgs;
