/**
 * The gate's journal of MQTT work it accepted and has not finished, in the
 * runtime's userDir, so that a Node-RED killed with work inside its flows
 * (a host or container restart: the process group goes at once) does not
 * lose it. issue 12 (g): at 500 msg/s on a loaded machine 794 messages that
 * blue's gate had acknowledged to the broker were inside its flows when it
 * was killed, and nothing had them any more.
 *
 * A message is journaled (`r <id> <base64>`) synchronously while mqtt.js
 * handles it, before mqtt.js sends its PUBACK (the 'message' event runs
 * before the acknowledgement), and marked done (`d <id>`) when it reaches a
 * redforge-exit node, leaves for the hold queue, or expires. The next
 * Node-RED on this userDir replays what is not done, in order, ahead of
 * anything the broker still had for it. Written with fs.writeSync (the page
 * cache survives a kill of the process, not a power cut). A torn last line
 * is ignored: its PUBACK never went out, so the broker delivers it again.
 *
 * At least once across a kill: a message whose exit was recorded is never
 * replayed; one killed between its exit and its answer leaving Node-RED (the
 * mqtt-out node's publish) is lost, a window of one publish. A deliberate
 * stop by the bridge removes the journal (what was in flight then is counted
 * as stopped in flight, as before).
 */
"use strict";

const fs = require("fs");
const path = require("path");

const JOURNAL_FILE = "redforge-work.journal";
/** Past this size the journal is rewritten with only the open entries (under steady load some are always open). */
const COMPACT_BYTES = 4 * 1024 * 1024;

class WorkJournal {
  constructor(dir) {
    this.file = path.join(dir, JOURNAL_FILE);
    this.open = new Map(); // id -> payload (base64), in acceptance order
    this.nextId = 1;
    this.bytes = 0;
    this.fd = undefined;
    this.failed = false;
  }

  /** What an earlier process of this userDir accepted and did not finish, oldest first; the file is rewritten with only those. */
  recover() {
    let text = "";
    try { text = fs.readFileSync(this.file, "utf8"); } catch { /* none yet */ }
    const pending = new Map();
    for (const line of text.split("\n")) {
      const parts = line.split(" ");
      if (parts[0] === "r" && parts.length === 3 && parts[2]) pending.set(parts[1], Buffer.from(parts[2], "base64"));
      else if (parts[0] === "d" && parts.length === 2) pending.delete(parts[1]);
    }
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    this.fd = fs.openSync(this.file, "w", 0o600);
    const payloads = [...pending.values()];
    // Replayed work is accepted again under new ids, so it stays journaled until it is done this time.
    return payloads.map((payload) => ({ payload, id: this.received(payload) }));
  }

  /** Journals an accepted message; its id, or undefined when the journal cannot be written (work goes on unjournaled). */
  received(payload) {
    if (this.fd === undefined || this.failed) return undefined;
    const id = String(this.nextId++);
    const b64 = payload.toString("base64");
    if (!this.write(`r ${id} ${b64}\n`)) return undefined;
    this.open.set(id, b64);
    return id;
  }

  done(id) {
    if (id === undefined || !this.open.delete(id)) return;
    this.write(`d ${id}\n`);
    if (this.bytes > COMPACT_BYTES) this.compact();
  }

  /** Replaces the file whole (write a sibling, rename over it): a kill leaves the old journal or the new one. */
  compact() {
    const tmp = `${this.file}.tmp`;
    try {
      const lines = [...this.open].map(([id, b64]) => `r ${id} ${b64}\n`).join("");
      fs.writeFileSync(tmp, lines, { mode: 0o600 });
      fs.renameSync(tmp, this.file);
      fs.closeSync(this.fd);
      this.fd = fs.openSync(this.file, "r+");
      this.bytes = Buffer.byteLength(lines);
    } catch {
      /* the next done() tries again; the journal keeps growing meanwhile, never loses an entry */
    }
  }

  write(line) {
    const buf = Buffer.from(line);
    try {
      let at = 0;
      while (at < buf.length) at += fs.writeSync(this.fd, buf, at, buf.length - at, this.bytes + at);
      this.bytes += buf.length;
      return true;
    } catch (err) {
      // A full or read-only disk must not stop the flows: work goes on as before the journal existed.
      this.failed = true;
      this.error = err;
      return false;
    }
  }
}

module.exports = { WorkJournal, JOURNAL_FILE };
