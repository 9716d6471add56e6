/**
 * redforge-checkpoint: checkpoints for long workflows (seed ARCHITECTURE.md §4.4).
 * Put a *begin* node before each step and an *end* node after it, both naming
 * the workflow (its kind, e.g. "doc-ingest") and the step:
 *
 *   begin(step) — a step this workflow already completed, or is running here,
 *                 is skipped (the message stops; the first copy goes on); else
 *                 writes {step, phase: started, state: msg.payload, inputHash}
 *                 and passes the message on with msg.workflow.idempotencyKey.
 *   end(step)   — writes {step, phase: completed (or finished on the last
 *                 step), state: msg.payload} and passes the message on.
 *
 * A checkpoint is in the process's journal (<userDir>) before the message goes
 * on; a journal that cannot be written fails the step (an error naming
 * checkpoint_write_failed, the message not passed on). Its copy for the control
 * plane goes over MQTT, kept in the journal until the broker acknowledges it.
 * The workflow id is msg.workflow.id, else msg.metadata.flowId, else _msgid.
 */
"use strict";

const { checkpointRuntime, STEP_NAME, hashOf } = require("../lib/checkpointRuntime.js");
const { FINAL_PHASES } = require("../lib/checkpointJournal.js");

function workflowIdOf(msg) {
  const wf = msg.workflow;
  if (wf && typeof wf.id === "string" && wf.id) return wf.id;
  const meta = msg.metadata;
  if (meta && typeof meta.flowId === "string" && meta.flowId) return meta.flowId;
  return msg._msgid;
}

module.exports = function (RED) {
  function RedforgeCheckpointNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const kind = String(config.workflow || "").trim();
    const step = String(config.step || "").trim();
    const role = config.mode === "end" ? "end" : "begin";
    node.repeatable = role === "begin" && config.repeatable === true;
    const final = role === "end" && config.final === true;
    const rt = checkpointRuntime(RED);
    const invalid = !STEP_NAME.test(kind) ? `workflow name "${kind}" is not valid (letters, digits, _ . : -)` : !STEP_NAME.test(step) ? `step name "${step}" is not valid (letters, digits, _ . : -)` : undefined;
    if (invalid) {
      node.status({ fill: "red", shape: "ring", text: "not configured" });
      node.on("input", (msg, send, done) => done(new Error(invalid)));
      return;
    }
    rt.register(kind, step, role, node);
    node.on("close", () => rt.unregister(kind, step, role, node));
    const show = (fill, text) => {
      const waiting = rt.unconfirmed();
      node.status({ fill, shape: "dot", text: waiting > 0 ? `${text} (${waiting} not yet confirmed)` : text });
    };

    node.on("input", (msg, send, done) => {
      const id = workflowIdOf(msg);
      const last = rt.latest(id);
      const wf = msg.workflow && typeof msg.workflow === "object" ? msg.workflow : {};
      if (rt.yielded.has(id) || (last && FINAL_PHASES.has(last.phase))) {
        // Handed to another runtime, cancelled, failed or finished: this copy stops here.
        show("grey", `${id}: ${last ? last.phase : "handed over"}, not continued`);
        return done();
      }
      const completed = Array.isArray(last && last.completed) ? last.completed : Array.isArray(wf.completed) ? wf.completed : [];
      try {
        if (role === "begin") {
          if (completed.includes(step) || rt.running.get(id) === step) {
            node.warn(`workflow ${id}: step "${step}" already ${completed.includes(step) ? "completed" : "running"}; this copy is skipped`);
            show("yellow", `${step} skipped for ${id}`);
            return done();
          }
          rt.write({ workflowId: id, kind, step, phase: "started", state: msg.payload, inputHash: hashOf(msg.payload), completed });
          rt.running.set(id, step);
          msg.workflow = { ...wf, id, kind, step, completed, idempotencyKey: `${id}:${step}` };
          show("blue", `${step} started`);
        } else {
          const done_ = completed.includes(step) ? completed : [...completed, step];
          rt.write({ workflowId: id, kind, step, phase: final ? "finished" : "completed", state: msg.payload, completed: done_ });
          rt.stepEnded(id);
          msg.workflow = { ...wf, id, kind, step, completed: done_, idempotencyKey: `${id}:${step}` };
          if (rt.yielded.has(id)) {
            show("grey", `${step} done; workflow handed over`);
            return done();
          }
          show("green", final ? `${id} finished` : `${step} completed`);
        }
      } catch (err) {
        if (role === "end") rt.stepEnded(id);
        show("red", err.code || "checkpoint failed");
        return done(err);
      }
      send(msg);
      done();
    });
  }
  RED.nodes.registerType("redforge-checkpoint", RedforgeCheckpointNode);
};
