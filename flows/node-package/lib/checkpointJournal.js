/**
 * The checkpoint journal of one Node-RED process: every checkpoint record a
 * redforge-checkpoint node writes, appended as one JSON line to
 * `<userDir>/redforge-checkpoints.journal` before the step goes on, plus one
 * `{"ack": id}` line once the MQTT broker acknowledged the record's copy for
 * the control plane. A `kill -9` keeps what was appended (the page cache), so
 * the next Node-RED on this userDir knows each workflow's last checkpoint and
 * which records still have to reach the control plane.
 *
 * Pure file logic here (no Node-RED): tested in plain Node.
 */
"use strict";

const fs = require("fs");
const path = require("path");
const crypto = require("crypto");

const JOURNAL_FILE = "redforge-checkpoints.journal";
/** Phases after which the workflow makes no further progress on its own. */
const FINAL_PHASES = new Set(["finished", "failed", "cancelled", "handed_over"]);
/** A workflow's state must fit one MQTT message and one jsonb value comfortably. */
const MAX_STATE_BYTES = 256 * 1024;

/** sha-256 (hex) of a value's JSON: the step's input, so a replay can tell it got the same input. */
function hashOf(value) {
  return crypto.createHash("sha256").update(JSON.stringify(value === undefined ? null : value)).digest("hex");
}

/**
 * The per-workflow view a list of records gives: the latest record of each
 * workflow (records carry the cumulative `completed` list, so the latest one
 * is all that resuming needs) and the ids not yet acknowledged.
 */
function replay(lines) {
  const latest = new Map();
  const unacked = new Map();
  for (const line of lines) {
    if (!line) continue;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // a torn last line (killed mid-write): its step had not gone on yet
    }
    if (entry && typeof entry.ack === "string") {
      unacked.delete(entry.ack);
    } else if (entry && typeof entry.workflowId === "string" && typeof entry.checkpointId === "string") {
      latest.set(entry.workflowId, entry);
      unacked.set(entry.checkpointId, entry);
    }
  }
  return { latest, unacked };
}

/**
 * What the next Node-RED on this userDir does with a workflow whose last
 * record is `rec`: continue after its step, run its step again, give it up
 * as interrupted, or nothing (finished, failed, cancelled, handed to another
 * runtime). `repeatable` says whether the step's begin node declares it safe
 * to run twice (it passes the idempotency key on to what it calls).
 */
function resumeAction(rec, repeatable) {
  if (!rec || FINAL_PHASES.has(rec.phase)) return "none";
  if (rec.phase === "completed") return "continue";
  if (rec.phase === "started") return repeatable ? "rerun" : "interrupted";
  return "none";
}

class CheckpointJournal {
  constructor(dir) {
    this.file = path.join(dir, JOURNAL_FILE);
    const lines = fs.existsSync(this.file) ? fs.readFileSync(this.file, "utf8").split("\n") : [];
    const { latest, unacked } = replay(lines);
    this.latest = latest;
    this.unacked = unacked;
    this.compact();
  }

  /**
   * Keeps what is still needed: the latest record of every unfinished workflow
   * and every unacknowledged record. Written aside and renamed, so a kill
   * mid-compaction leaves the old journal whole.
   */
  compact() {
    const keep = new Map();
    for (const rec of this.latest.values()) if (!FINAL_PHASES.has(rec.phase)) keep.set(rec.checkpointId, rec);
    for (const rec of this.unacked.values()) keep.set(rec.checkpointId, rec);
    for (const [id, rec] of this.latest) if (FINAL_PHASES.has(rec.phase) && !this.unacked.has(rec.checkpointId)) this.latest.delete(id);
    const body = [...keep.values()].map((r) => JSON.stringify(r) + "\n").join("");
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, body);
    fs.renameSync(tmp, this.file);
    this.appended = 0;
  }

  /** Appends one record synchronously; throws when it cannot (the step must not go on). */
  append(rec) {
    fs.appendFileSync(this.file, JSON.stringify(rec) + "\n");
    this.latest.set(rec.workflowId, rec);
    this.unacked.set(rec.checkpointId, rec);
    // Bounded: a long-running process compacts now and then instead of growing the file forever.
    if (++this.appended >= 10_000) this.compact();
  }

  ack(checkpointId) {
    if (!this.unacked.delete(checkpointId)) return;
    try {
      fs.appendFileSync(this.file, JSON.stringify({ ack: checkpointId }) + "\n");
    } catch {
      // Only costs a second delivery after a restart (the control plane stores a record once).
    }
  }
}

module.exports = { CheckpointJournal, JOURNAL_FILE, FINAL_PHASES, MAX_STATE_BYTES, hashOf, replay, resumeAction };
