/**
 * Coordination sessions across agent instances (seed ARCHITECTURE.md §3.4):
 * voting (one question to N participants, answers collected until all have
 * answered or the deadline, then picked by the session's rule) and
 * refinement (generator ↔ critic rounds until the critic approves, the
 * draft stops changing, or the rounds run out).
 *
 * Transport-free: `send(instanceId, message)` delivers a query (the node
 * publishes it to `redforge/ingest/{instance}`), replies come back through
 * `onReply`, `report(records)` writes AI decision records. Every change is
 * written to the store before anything is sent, so a coordinator that
 * restarts resumes its open sessions (`resume`), with replies that arrived
 * meanwhile kept by its persistent MQTT session.
 */
"use strict";

const crypto = require("node:crypto");
const rules = require("./coordinationRules.js");
const { stateKey } = require("./coordinationStore.js");

const FINAL = new Set(["decided", "no_quorum", "failed", "approved", "converged", "max_rounds"]);
const OPERATION_OF_ROLE = { voter: "coordination.vote", judge: "coordination.judge", generator: "coordination.draft", critic: "coordination.critique" };
const MAX_LATENCY_MS = 86_400_000;

class Coordinator {
  constructor({ instanceId, store, send, report, replyTo, log, now }) {
    this.instanceId = instanceId;
    this.store = store;
    this.send = send;
    this.report = report || (() => {});
    this.replyTo = replyTo;
    this.log = log || (() => {});
    this.now = now || Date.now;
    this.sessions = new Map(); // id -> state (cache of the store)
    this.timers = new Map();
    this.waiters = new Map(); // id -> [resolve]
    this.queues = new Map(); // id -> promise chain: one change of a session at a time
  }

  // ---- starting ----

  /** Starts a voting session; resolves with its final state. */
  async vote({ question, context = [], participants, rule = "majority", quorum, deadlineMs = 30_000, judge, judgeDeadlineMs = 30_000, flowId }) {
    if (!rules.RULES.includes(rule)) throw new CoordinationInputError(`rule must be one of ${rules.RULES.join(", ")}`);
    if (rule === "judge" && !judge) throw new CoordinationInputError("rule judge needs a judge instance");
    const s = this.fresh("voting", { question, context, flowId });
    Object.assign(s, { rule, participants, quorum: rules.quorumOf(quorum, participants.length), deadlineMs, deadlineAt: s.startedAt + deadlineMs, judge, judgeDeadlineMs, status: "collecting" });
    for (const p of participants) this.ask(s, p, "voter", 1, { question, context });
    return this.begin(s);
  }

  /** Starts a refinement session; resolves with its final state. */
  async refine({ question, context = [], generator, critic, maxRounds = 3, stopPhrase = "APPROVED", stepTimeoutMs = 30_000, flowId }) {
    const s = this.fresh("refinement", { question, context, flowId });
    Object.assign(s, { rule: "refinement", participants: [generator, critic], generator, critic, maxRounds, stopPhrase, stepTimeoutMs, round: 1, drafts: [], critiques: [], status: "generating" });
    this.ask(s, generator, "generator", 1, { question, context });
    s.deadlineAt = this.now() + stepTimeoutMs;
    return this.begin(s);
  }

  fresh(pattern, { question, context, flowId }) {
    const id = crypto.randomUUID();
    return { id, pattern, coordinator: this.instanceId, flowId: flowId || id, question, context, startedAt: this.now(), requests: {}, answers: [], outbox: [] };
  }

  /** Notes a query in the session (sent after the state is stored: see flush). */
  ask(s, instanceId, role, round, payload) {
    const requestId = crypto.randomUUID();
    s.requests[requestId] = { instanceId, role, round, sentAt: this.now() };
    s.outbox.push({ instanceId, message: {
      payload,
      metadata: {
        flowId: s.flowId, timestamp: new Date(this.now()).toISOString(), source: "redforge-coordinator", contentType: "json",
        replyTo: this.replyTo, coordination: { sessionId: s.id, requestId, role, round },
      },
    } });
  }

  async begin(s) {
    const done = new Promise((resolve) => this.waiters.set(s.id, [resolve]));
    this.sessions.set(s.id, s);
    await this.store.addOpen(this.instanceId, s.id);
    await this.flush(s);
    return done;
  }

  /** Stores the session, then sends what it queued and reports what it recorded; arms its timer. */
  async flush(s) {
    const outbox = s.outbox.splice(0);
    const records = (s.records || []).splice(0);
    await this.store.set(stateKey(s.pattern, s.id), s);
    for (const o of outbox) this.send(o.instanceId, o.message);
    if (records.length) this.report(records);
    this.arm(s);
    if (FINAL.has(s.status)) {
      await this.store.removeOpen(this.instanceId, s.id);
      this.sessions.delete(s.id);
      for (const resolve of this.waiters.get(s.id) || []) resolve(s);
      this.waiters.delete(s.id);
    }
  }

  arm(s) {
    clearTimeout(this.timers.get(s.id));
    this.timers.delete(s.id);
    if (FINAL.has(s.status)) return;
    const t = setTimeout(() => this.change(s.id, (x) => this.onDeadline(x)), Math.max(0, s.deadlineAt - this.now()));
    if (t.unref) t.unref();
    this.timers.set(s.id, t);
  }

  /** Runs `fn` on session `id` (loaded from the store when not cached), one change at a time, then flushes. */
  change(id, fn) {
    const prev = this.queues.get(id) || Promise.resolve();
    const next = prev.then(async () => {
      const s = this.sessions.get(id) || await this.load(id);
      if (!s || FINAL.has(s.status)) return;
      fn(s);
      await this.flush(s);
    }).catch((err) => this.abandon(id, err));
    this.queues.set(id, next);
    next.then(() => { if (this.queues.get(id) === next) this.queues.delete(id); });
    return next;
  }

  /**
   * A change that could not be stored (the store is down): the session cannot go on safely, so a caller waiting
   * for it gets a failed outcome now instead of an HTTP request that never ends. The store keeps its last state.
   */
  abandon(id, err) {
    this.log(`session ${id}: ${err.message}`);
    const s = this.sessions.get(id);
    if (!s) return;
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    this.sessions.delete(id);
    s.status = "failed";
    s.outcome = { answer: null, winner: null, reason: `the session store failed: ${err.message}`, missing: [] };
    for (const resolve of this.waiters.get(id) || []) resolve(s);
    this.waiters.delete(id);
  }

  /** An open session from the store (a reply or deadline after a restart), cached again. */
  async load(id) {
    for (const pattern of ["voting", "refinement"]) {
      const s = await this.store.get(stateKey(pattern, id));
      if (!s) continue;
      if (FINAL.has(s.status)) return s;
      s.outbox = [];
      this.sessions.set(id, s);
      return s;
    }
    return undefined;
  }

  // ---- replies ----

  /** A participant's reply ({ sessionId, requestId, instanceId, output: msg_output, call }). */
  onReply(reply) {
    if (!reply || typeof reply.sessionId !== "string" || typeof reply.requestId !== "string") return Promise.resolve();
    return this.change(reply.sessionId, (s) => this.apply(s, reply));
  }

  apply(s, reply) {
    const req = s.requests[reply.requestId];
    if (!req || req.answered) return; // unknown or a duplicate (QoS 1 delivers at least once)
    req.answered = true;
    const a = answerOf(req, reply, this.now());
    s.answers.push(a);
    this.record(s, voteRecord(this.instanceId, s, a));
    if (s.pattern === "voting") return this.onVote(s, a);
    return this.onStep(s, a);
  }

  onVote(s, a) {
    if (s.status === "judging" && a.role === "judge") return this.judged(s, a);
    if (s.status !== "collecting") return;
    const voted = s.answers.filter((x) => x.role === "voter").length;
    if (voted >= s.participants.length) this.decideVoting(s);
  }

  onDeadline(s) {
    if (s.pattern === "voting" && s.status === "collecting") return this.decideVoting(s);
    if (s.pattern === "voting" && s.status === "judging") return this.finish(s, "failed", undefined, { reason: `the judge ${s.judge} did not answer within ${s.judgeDeadlineMs} ms` });
    const waiting = s.status === "generating" ? s.generator : s.critic;
    return this.finish(s, "failed", undefined, { reason: `${waiting} did not answer round ${s.round} within ${s.stepTimeoutMs} ms` });
  }

  decideVoting(s) {
    const votes = rules.votesOf(s.answers.filter((x) => x.role === "voter"), s.participants);
    if (votes.length < s.quorum) {
      return this.finish(s, "no_quorum", undefined, { reason: `${votes.length} of ${s.participants.length} participants answered by the deadline; the quorum is ${s.quorum}` });
    }
    if (s.rule !== "judge") {
      const picked = rules.pick(s.rule, votes, s.question);
      return this.finish(s, "decided", picked.winner, picked);
    }
    s.status = "judging";
    s.votes = votes.map((v) => v.requestId);
    s.deadlineAt = this.now() + s.judgeDeadlineMs;
    this.ask(s, s.judge, "judge", 1, rules.judgePrompt(s.question, votes));
  }

  judged(s, a) {
    const votes = s.votes.map((id) => s.answers.find((x) => x.requestId === id));
    const verdict = a.status === "success" ? rules.readJudgeVerdict(a.answer, votes.length) : undefined;
    if (!verdict) return this.finish(s, "failed", undefined, { reason: a.status === "success" ? `the judge's reply names no answer 1..${votes.length}: ${String(a.answer).slice(0, 200)}` : `the judge failed: ${a.error && a.error.message}` });
    const picked = rules.pickByJudge(votes, verdict, a.answer);
    return this.finish(s, "decided", picked.winner, Object.assign(picked, { judgeModel: a.model }));
  }

  onStep(s, a) {
    if (a.status !== "success") return this.finish(s, "failed", undefined, { reason: `the ${a.role} ${a.instanceId} failed in round ${a.round}: ${a.error && a.error.message}` });
    if (a.role === "generator" && s.status === "generating") {
      const previous = s.drafts[s.drafts.length - 1];
      s.drafts.push(a.answer);
      const stop = previous === undefined ? undefined : rules.refinementStop({ round: s.round, maxRounds: Infinity, draft: a.answer, previousDraft: previous });
      if (stop) return this.finish(s, stop, a, { reason: `round ${s.round}'s draft is the previous one` });
      s.status = "critiquing";
      s.deadlineAt = this.now() + s.stepTimeoutMs;
      return this.ask(s, s.critic, "critic", s.round, {
        question: `Critique this draft answer to the question: ${s.question} Reply ${s.stopPhrase} when it needs no change.`,
        context: [`Draft: ${a.answer}`],
      });
    }
    if (a.role === "critic" && s.status === "critiquing") {
      s.critiques.push(a.answer);
      const stop = rules.refinementStop({ round: s.round, maxRounds: s.maxRounds, critique: a.answer, stopPhrase: s.stopPhrase });
      const draft = s.answers.filter((x) => x.role === "generator").pop();
      if (stop) return this.finish(s, stop, draft, { reason: stop === "approved" ? `the critic approved round ${s.round}'s draft` : `${s.maxRounds} round(s) done` });
      s.round++;
      s.status = "generating";
      s.deadlineAt = this.now() + s.stepTimeoutMs;
      return this.ask(s, s.generator, "generator", s.round, {
        question: s.question,
        context: [...s.context, `Previous draft: ${draft.answer}`, `Critique: ${a.answer}`],
      });
    }
  }

  finish(s, status, winner, outcome) {
    s.status = status;
    s.decidedAt = this.now();
    s.outcome = {
      answer: winner ? winner.answer : null,
      winner: winner ? winner.instanceId : null,
      reason: outcome.reason,
      ...(outcome.tally ? { tally: outcome.tally } : {}),
      ...(outcome.agreement !== undefined ? { agreement: outcome.agreement } : {}),
      ...(outcome.score !== undefined ? { score: outcome.score } : {}),
      ...(outcome.judgeModel ? { judgeModel: outcome.judgeModel } : {}),
      ...(s.pattern === "refinement" ? { rounds: s.round } : {}),
      missing: s.pattern === "voting" ? s.participants.filter((p) => !s.answers.some((a) => a.role === "voter" && a.instanceId === p)) : [],
    };
    this.record(s, decisionRecord(this.instanceId, s));
  }

  record(s, r) {
    (s.records || (s.records = [])).push(r);
  }

  // ---- restart ----

  /** Picks up the sessions this instance had open (after a restart): timers re-armed, overdue ones decided now. */
  async resume() {
    const ids = await this.store.open(this.instanceId);
    let n = 0;
    for (const id of ids) {
      const s = this.sessions.get(id) || await this.load(id);
      if (!s || FINAL.has(s.status)) { await this.store.removeOpen(this.instanceId, id); continue; }
      this.arm(s);
      n++;
    }
    return n;
  }

  close() {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

class CoordinationInputError extends Error {}

function answerOf(req, reply, now) {
  const out = reply.output && typeof reply.output === "object" ? reply.output : {};
  const p = out.payload && typeof out.payload === "object" ? out.payload : {};
  const call = reply.call && typeof reply.call === "object" ? reply.call : {};
  const ok = out.metadata && out.metadata.status === "success" && typeof p.answer === "string";
  return {
    requestId: reply.requestId,
    instanceId: req.instanceId,
    role: req.role,
    round: req.round,
    status: ok ? "success" : "error",
    answer: ok ? p.answer : null,
    ...(p.score !== undefined ? { score: p.score } : {}),
    model: p.model || call.model || null,
    provider: call.provider || null,
    inputTokens: numberOr(p.inputTokens, call.inputTokens),
    outputTokens: numberOr(p.outputTokens, call.outputTokens),
    latencyMs: Math.max(0, now - req.sentAt),
    modelLatencyMs: numberOr(call.latencyMs),
    error: ok ? null : (out.error || { code: "bad_reply", message: "the reply is not a msg_output with an answer" }),
    at: new Date(now).toISOString(),
  };
}

const numberOr = (...values) => { for (const v of values) if (typeof v === "number" && Number.isFinite(v)) return v; return null; };

function sessionSummary(s) {
  return { sessionId: s.id, pattern: s.pattern, rule: s.rule, startedAt: new Date(s.startedAt).toISOString(), participants: s.participants, ...(s.quorum ? { quorum: s.quorum } : {}), ...(s.pattern === "refinement" ? { maxRounds: s.maxRounds } : {}) };
}

/** A participant's answer as an AI decision record: tokens in metadata only, since the participant's own model call already counted them. */
function voteRecord(instanceId, s, a) {
  return compact({
    instanceId, timestamp: a.at, provider: a.provider || "unknown", model: a.model || "unknown",
    operationName: OPERATION_OF_ROLE[a.role], flowName: "coordination", flowId: s.id,
    prompt: s.question, response: a.answer === null ? undefined : a.answer,
    latencyMs: Math.min(a.latencyMs, MAX_LATENCY_MS),
    metadata: { coordination: Object.assign(sessionSummary(s), { kind: "answer", participant: a.instanceId, role: a.role, round: a.round, requestId: a.requestId, status: a.status, inputTokens: a.inputTokens, outputTokens: a.outputTokens, modelLatencyMs: a.modelLatencyMs, error: a.error, ...(a.score !== undefined ? { score: a.score } : {}) }) },
  });
}

function decisionRecord(instanceId, s) {
  const o = s.outcome;
  const confidence = typeof o.agreement === "number" ? o.agreement : typeof o.score === "number" && o.score >= 0 && o.score <= 1 ? o.score : undefined;
  return compact({
    instanceId, timestamp: new Date(s.decidedAt).toISOString(), provider: "redforge",
    model: s.pattern === "voting" ? `coordination:${s.rule}` : "coordination:refinement",
    operationName: "coordination.decision", flowName: "coordination", flowId: s.id,
    prompt: s.question, response: o.answer === null ? undefined : o.answer, confidence,
    latencyMs: Math.min(s.decidedAt - s.startedAt, MAX_LATENCY_MS),
    metadata: { coordination: Object.assign(sessionSummary(s), { kind: "decision", status: s.status, outcome: o, decidedAt: new Date(s.decidedAt).toISOString() }) },
  });
}

const compact = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

module.exports = { Coordinator, CoordinationInputError, FINAL };
