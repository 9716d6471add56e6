/**
 * The checkpoint runtime of one Node-RED process, shared by every
 * redforge-checkpoint node: the journal (lib/checkpointJournal.js), the copy
 * of each record sent to the control plane over MQTT
 * (`redforge/checkpoints/{instanceId}`, QoS 1; the bridge forwards them signed),
 * the nodes by (workflow, step), and the Admin API routes the bridge uses to
 * hand unfinished workflows from one runtime to another:
 *
 *   GET  /redforge/checkpoints            what this runtime knows
 *   POST /redforge/checkpoints/handover   stop advancing every unfinished workflow here, answer their last checkpoints
 *   POST /redforge/checkpoints/resume     {records}: continue those workflows here
 *   POST /redforge/checkpoints/cancel     {workflowId}: stop one
 */
"use strict";

const crypto = require("crypto");
const { CheckpointJournal, FINAL_PHASES, MAX_STATE_BYTES, hashOf, resumeAction } = require("./checkpointJournal.js");
const { connectMqtt } = require("./mqttClient.js");

const TOPIC_PREFIX = "redforge/checkpoints/";
const STEP_NAME = /^[A-Za-z0-9_.:-]{1,255}$/;

class CheckpointRuntime {
  constructor(RED, env) {
    this.RED = RED;
    this.instanceId = env.REDFORGE_INSTANCE_ID || "";
    this.runtimeId = env.REDFORGE_RUNTIME_ID || this.instanceId;
    this.journal = new CheckpointJournal(RED.settings.userDir || process.cwd());
    /** "kind\0step" → {begin, end} node. */
    this.nodes = new Map();
    /** workflowId → step, for steps begun in this process and not yet ended. */
    this.running = new Map();
    /** Workflows handed to another runtime (or being handed): no further step runs here. */
    this.yielded = new Set();
    /** Workflows this process already resumed from the journal (one resume per boot). */
    this.resumed = new Set();
    this.stepWaiters = [];
    this.mqtt = null;
    if (this.instanceId && env.REDFORGE_MQTT_URL) {
      this.mqtt = connectMqtt(env.REDFORGE_MQTT_URL, `redforge-ckpt-${this.runtimeId}-${process.pid}`, { clean: true });
      this.mqtt.on("error", (err) => RED.log.warn(`[redforge-checkpoint] mqtt: ${err.message}`));
    }
    // What a previous process on this userDir wrote but the broker never acknowledged.
    for (const rec of this.journal.unacked.values()) this.forward(rec);
  }

  register(kind, step, role, node) {
    const key = `${kind}\0${step}`;
    const entry = this.nodes.get(key) || {};
    if (entry[role] && entry[role] !== node) node.warn(`another ${role} node for step "${step}" of workflow "${kind}" exists; this one is used`);
    entry[role] = node;
    this.nodes.set(key, entry);
  }

  unregister(kind, step, role, node) {
    const key = `${kind}\0${step}`;
    const entry = this.nodes.get(key);
    if (entry && entry[role] === node) delete entry[role];
  }

  nodeFor(kind, step, role) {
    const entry = this.nodes.get(`${kind}\0${step}`);
    return entry && entry[role];
  }

  latest(workflowId) {
    return this.journal.latest.get(workflowId);
  }

  /**
   * Appends one record (throws when the journal cannot be written or the state is too large:
   * the caller fails the step instead of going on without its checkpoint) and sends its copy.
   */
  write(fields) {
    const rec = {
      checkpointId: crypto.randomUUID(),
      instanceId: this.instanceId || null,
      runtimeId: this.runtimeId || null,
      at: new Date().toISOString(),
      ...fields,
    };
    const json = JSON.stringify(rec.state === undefined ? null : rec.state);
    if (Buffer.byteLength(json) > MAX_STATE_BYTES) {
      const err = new Error(`checkpoint state of step "${rec.step}" is ${Buffer.byteLength(json)} bytes, more than ${MAX_STATE_BYTES}; keep large data elsewhere and checkpoint a reference`);
      err.code = "checkpoint_too_large";
      throw err;
    }
    try {
      this.journal.append(rec);
    } catch (cause) {
      const err = new Error(`checkpoint of step "${rec.step}" not written: ${cause.message}`);
      err.code = "checkpoint_write_failed";
      throw err;
    }
    this.forward(rec);
    return rec;
  }

  /** mqtt.js queues while offline; the journal keeps the record until the broker's PUBACK. */
  forward(rec) {
    if (!this.mqtt) return;
    this.mqtt.publish(TOPIC_PREFIX + this.instanceId, JSON.stringify(rec), { qos: 1 }, (err) => {
      if (!err) this.journal.ack(rec.checkpointId);
    });
  }

  unconfirmed() {
    return this.mqtt ? this.journal.unacked.size : 0;
  }

  stepEnded(workflowId) {
    this.running.delete(workflowId);
    for (const w of this.stepWaiters.splice(0)) w();
  }

  /** A message rebuilt from a checkpoint, ready to leave `node`'s output. */
  messageFrom(rec, extra) {
    return {
      _msgid: this.RED.util.generateId(),
      payload: rec.state,
      workflow: { id: rec.workflowId, kind: rec.kind, step: rec.step, completed: rec.completed || [], resumed: true, idempotencyKey: `${rec.workflowId}:${rec.step}`, ...extra },
    };
  }

  /**
   * Continues one workflow in this runtime from `rec` (its last checkpoint, from this
   * journal or handed over by another runtime): after a completed step, the step's end
   * node sends it on; before a step that had begun, the begin node runs it again only if
   * it is declared repeatable, otherwise the workflow is failed as interrupted (at most once).
   */
  resume(rec, source) {
    const position = rec.phase === "handed_over" ? rec.resume : rec.phase === "completed" ? "after" : rec.phase === "started" ? "before" : undefined;
    const base = { workflowId: rec.workflowId, kind: rec.kind, step: rec.step, state: rec.state, inputHash: rec.inputHash, completed: rec.completed || [] };
    if (position === "after") {
      const end = this.nodeFor(rec.kind, rec.step, "end");
      if (!end) return this.giveUp(base, "step_not_found", `no end node for step "${rec.step}" of workflow "${rec.kind}" in this runtime's flows`);
      this.write({ ...base, phase: "completed", resumedFrom: source });
      end.send(this.messageFrom(rec));
      return { workflowId: rec.workflowId, outcome: "continued", after: rec.step };
    }
    if (position === "before") {
      const begin = this.nodeFor(rec.kind, rec.step, "begin");
      if (!begin) return this.giveUp(base, "step_not_found", `no begin node for step "${rec.step}" of workflow "${rec.kind}" in this runtime's flows`);
      // An operator's replay (source "replay") decided the step may run again; a crash or hand-over did not.
      if (source !== "replay" && resumeAction({ phase: "started" }, begin.repeatable) !== "rerun") {
        return this.giveUp(base, "step_interrupted", `step "${rec.step}" began and was interrupted before its checkpoint; it is not marked repeatable, so it is not run again (replay it once its effect is checked)`);
      }
      this.write({ ...base, phase: "started", resumedFrom: source });
      this.running.set(rec.workflowId, rec.step);
      begin.send(this.messageFrom(rec));
      return { workflowId: rec.workflowId, outcome: "rerun", step: rec.step };
    }
    return { workflowId: rec.workflowId, outcome: "ignored", phase: rec.phase };
  }

  giveUp(base, code, message) {
    this.RED.log.warn(`[redforge-checkpoint] workflow ${base.workflowId}: ${message}`);
    this.write({ ...base, phase: "failed", error: { code, message } });
    return { workflowId: base.workflowId, outcome: "failed", error: { code, message } };
  }

  /** After this runtime's flows (re)started: continue what the journal left unfinished. */
  resumeFromJournal() {
    const out = [];
    for (const rec of [...this.journal.latest.values()]) {
      if (FINAL_PHASES.has(rec.phase) || this.resumed.has(rec.workflowId) || this.yielded.has(rec.workflowId)) continue;
      if (this.running.has(rec.workflowId)) continue; // running here (a redeploy kept it going)
      const role = rec.phase === "completed" ? "end" : "begin";
      if (!this.nodeFor(rec.kind, rec.step, role)) continue; // its flow is not (yet) deployed here
      this.resumed.add(rec.workflowId);
      try {
        out.push(this.resume(rec, "journal"));
      } catch (err) {
        this.RED.log.error(`[redforge-checkpoint] cannot resume workflow ${rec.workflowId}: ${err.message}`);
      }
    }
    if (out.length) this.RED.log.info(`[redforge-checkpoint] resumed ${out.length} workflow(s) from the journal: ${JSON.stringify(out)}`);
    return out;
  }

  /**
   * Stops advancing every unfinished workflow here: a step under way may finish (up to
   * `timeoutMs`) and its end checkpoint is written, but nothing goes on after it. Answers
   * each workflow's last checkpoint as a `handed_over` record for the runtime that serves next.
   */
  async handover(timeoutMs) {
    const ids = [...this.journal.latest.values()].filter((r) => !FINAL_PHASES.has(r.phase)).map((r) => r.workflowId);
    for (const id of ids) this.yielded.add(id);
    const deadline = Date.now() + timeoutMs;
    while (ids.some((id) => this.running.has(id)) && Date.now() < deadline) {
      await new Promise((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.stepWaiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    const records = [];
    for (const id of ids) {
      const last = this.latest(id);
      if (!last || FINAL_PHASES.has(last.phase)) continue;
      records.push(this.write({
        workflowId: id, kind: last.kind, step: last.step, state: last.state, inputHash: last.inputHash, completed: last.completed || [],
        phase: "handed_over", resume: last.phase === "completed" ? "after" : "before",
        ...(this.running.has(id) ? { error: { code: "step_still_running", message: `step "${last.step}" had not finished after ${timeoutMs} ms` } } : {}),
      }));
    }
    return records;
  }

  cancel(workflowId) {
    const last = this.latest(workflowId);
    if (!last) return undefined;
    this.yielded.add(workflowId);
    if (FINAL_PHASES.has(last.phase)) return last;
    return this.write({ workflowId, kind: last.kind, step: last.step, state: last.state, completed: last.completed || [], phase: "cancelled" });
  }

  status() {
    const workflows = [...this.journal.latest.values()].map((r) => ({
      workflowId: r.workflowId, kind: r.kind, step: r.step, phase: r.phase, completed: r.completed || [], at: r.at,
      running: this.running.get(r.workflowId) || null, yielded: this.yielded.has(r.workflowId),
    }));
    return { runtimeId: this.runtimeId || null, unconfirmed: this.unconfirmed(), workflows };
  }
}

let runtime;

function badRequest(res, code, message) {
  res.status(400).json({ error: { code, message } });
}

/** The one checkpoint runtime of this Node-RED process, with its admin routes. */
function checkpointRuntime(RED) {
  if (runtime) return runtime;
  runtime = new CheckpointRuntime(RED, process.env);
  const read = RED.auth.needsPermission("flows.read");
  const write = RED.auth.needsPermission("flows.write");
  RED.httpAdmin.get("/redforge/checkpoints", read, (_req, res) => res.json(runtime.status()));
  RED.httpAdmin.post("/redforge/checkpoints/handover", write, (req, res) => {
    const timeoutMs = req.body && req.body.timeoutMs !== undefined ? Number(req.body.timeoutMs) : 10_000;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 600_000) return badRequest(res, "invalid_timeout", "timeoutMs must be an integer from 0 to 600000");
    runtime.handover(timeoutMs).then((records) => res.json({ records }), (err) => res.status(500).json({ error: { code: err.code || "handover_failed", message: err.message } }));
  });
  RED.httpAdmin.post("/redforge/checkpoints/resume", write, (req, res) => {
    const records = req.body && req.body.records;
    if (!Array.isArray(records) || records.length > 10_000) return badRequest(res, "invalid_records", "records must be an array of at most 10000 checkpoint records");
    for (const r of records) {
      if (!r || typeof r.workflowId !== "string" || typeof r.kind !== "string" || typeof r.step !== "string" || typeof r.phase !== "string") {
        return badRequest(res, "invalid_record", "each record needs workflowId, kind, step and phase");
      }
    }
    const source = (req.body && typeof req.body.source === "string" && req.body.source) || "handover";
    const results = [];
    for (const r of records) {
      runtime.yielded.delete(r.workflowId);
      runtime.resumed.add(r.workflowId);
      try {
        results.push(runtime.resume(r, source));
      } catch (err) {
        results.push({ workflowId: r.workflowId, outcome: "failed", error: { code: err.code || "resume_failed", message: err.message } });
      }
    }
    res.json({ results });
  });
  RED.httpAdmin.post("/redforge/checkpoints/cancel", write, (req, res) => {
    const id = req.body && req.body.workflowId;
    if (typeof id !== "string" || !id) return badRequest(res, "invalid_workflow", "workflowId must be a non-empty string");
    const rec = runtime.cancel(id);
    if (!rec) return res.status(404).json({ error: { code: "workflow_not_found", message: `this runtime has no checkpoint of workflow ${id}` } });
    res.json({ record: rec });
  });
  // After the flows start (a boot after a crash, or a redeploy): continue what the journal left.
  RED.events.on("flows:started", () => setImmediate(() => runtime.resumeFromJournal()));
  return runtime;
}

module.exports = { checkpointRuntime, CheckpointRuntime, STEP_NAME, TOPIC_PREFIX, hashOf };
