/**
 * The MQTT front's journal of forwards that mqtt.js could not write at once (issue 12, "held work is
 * durable"). The front acknowledges an ingest message (PUBACK) right after issuing its forward to
 * `redforge/active/{runtime}`: safe while mqtt.js writes the forward at once, on the same connection
 * ahead of the PUBACK (after a kill the broker has one or the other). Right after a reconnect it does
 * not: mqtt.js resends its outgoing store one message per round trip and keeps every new publish in a
 * memory queue meanwhile (`_storeProcessing`, `_storeProcessingQueue`), while the PUBACK goes out at
 * once; a kill of the data plane then loses the forward. So a forward issued in that moment (or while
 * disconnected: the outgoing store is in memory too) is recorded here before the PUBACK, and marked
 * done once the broker has acknowledged the forward; the next front on the same spool dir forwards
 * what is left, in order, ahead of anything new. A forward written at once costs nothing: not one
 * write (the same rule as the gate's hold republish, flows/node-package/lib/gateRuntime.js).
 *
 * `<spoolDir>/forward.journal` is a file of binary records, appended with positional writes
 * (fs.writeSync: the page cache survives a kill of the process, not a power cut):
 *   'R' id:u32be len:u32be payload   a forward issued and not written yet
 *   'D' id:u32be                     its broker PUBACK came back
 * The file is truncated to nothing whenever no forward is open (the usual state), and rewritten
 * whole (sibling file, rename) past COMPACT_BYTES. A torn last record (killed mid-write) is ignored:
 * an 'R' torn means its PUBACK never went out (the broker redelivers the ingest message), a 'D' torn
 * means the forward is done again (at least once).
 */
import fs from "node:fs";
import path from "node:path";
import type { MqttClient } from "mqtt";

export const FORWARD_JOURNAL_FILE = "forward.journal";
const R = 0x52;
const D = 0x44;
/** Past this size with forwards still open the file is rewritten with only those. */
const COMPACT_BYTES = 4 * 1024 * 1024;

export interface JournaledForward {
  id: number;
  payload: Buffer;
}

/**
 * Whether a publish issued now on `client` is written to the connection at once (so it precedes the
 * PUBACK mqtt.js sends for the message being handled). mqtt.js 5 keeps it in memory instead while
 * disconnected, or while it resends its outgoing store after a reconnect (`_storeProcessing`,
 * `_storeProcessingQueue`: not public API; a client without them counts as "not at once", which
 * costs a journal write, never a message).
 */
export function writesNow(client: MqttClient | undefined): boolean {
  const c = client as unknown as { connected?: unknown; _storeProcessing?: unknown; _storeProcessingQueue?: unknown } | undefined;
  if (!c || c.connected !== true || typeof c._storeProcessing !== "boolean" || !Array.isArray(c._storeProcessingQueue)) return false;
  return !c._storeProcessing && c._storeProcessingQueue.length === 0;
}

export class ForwardJournal {
  readonly file: string;
  private fd: number | undefined;
  private bytes = 0;
  private nextId = 1;
  /** Open forwards: id → payload, in the order they were issued. */
  private readonly open = new Map<number, Buffer>();
  /** Set once a write failed (a full or read-only disk): forwards go on unjournaled, as before the journal. */
  error?: Error;
  /** Forwards recorded by this process (the moments mqtt.js could not write at once), for logs and tests. */
  recorded = 0;

  constructor(dir: string) {
    this.file = path.join(dir, FORWARD_JOURNAL_FILE);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /**
   * What an earlier process on this dir issued and never saw acknowledged, oldest first. They stay
   * open here (under new ids) until `done`: the file is replaced whole with only them, so a kill now
   * leaves the old file or the new one.
   */
  recover(): JournaledForward[] {
    let data: Buffer = Buffer.alloc(0);
    try { data = fs.readFileSync(this.file); } catch { /* none yet */ }
    const pending = scan(data);
    const entries = pending.map((payload) => ({ id: this.nextId++, payload }));
    const out = Buffer.concat(entries.map((e) => recordR(e.id, e.payload)));
    if (data.length > 0) {
      const tmp = `${this.file}.tmp`;
      fs.writeFileSync(tmp, out, { mode: 0o600 });
      fs.renameSync(tmp, this.file);
    }
    this.fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    this.bytes = out.length;
    for (const e of entries) this.open.set(e.id, e.payload);
    return entries;
  }

  /** Records a forward about to be issued; its id, or undefined when the journal cannot be written. */
  record(payload: Buffer): number | undefined {
    if (this.fd === undefined || this.error) return undefined;
    const id = this.nextId;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    if (!this.write(recordR(id, payload))) return undefined;
    this.open.set(id, payload);
    this.recorded++;
    return id;
  }

  /** The broker acknowledged the forward: it is not redone. */
  done(id: number): void {
    if (!this.open.delete(id)) return;
    if (this.open.size === 0) return this.truncate();
    const rec = Buffer.allocUnsafe(5);
    rec[0] = D;
    rec.writeUInt32BE(id, 1);
    this.write(rec);
    if (this.bytes > COMPACT_BYTES) this.compact();
  }

  /** Forwards recorded and not acknowledged yet. */
  get pending(): number {
    return this.open.size;
  }

  close(): void {
    if (this.fd === undefined) return;
    try { fs.closeSync(this.fd); } catch { /* closed */ }
    this.fd = undefined;
  }

  private truncate(): void {
    if (this.fd === undefined || this.bytes === 0) return;
    try {
      fs.ftruncateSync(this.fd, 0);
      this.bytes = 0;
    } catch {
      /* the 'D' records were not written either: the next front redoes them (at least once) */
    }
  }

  private compact(): void {
    const tmp = `${this.file}.tmp`;
    try {
      const out = Buffer.concat([...this.open].map(([id, payload]) => recordR(id, payload)));
      fs.writeFileSync(tmp, out, { mode: 0o600 });
      fs.renameSync(tmp, this.file);
      if (this.fd !== undefined) fs.closeSync(this.fd);
      this.fd = fs.openSync(this.file, fs.constants.O_RDWR);
      this.bytes = out.length;
    } catch {
      /* tried again at the next done(); the file only grows meanwhile, no entry is lost */
    }
  }

  private write(rec: Buffer): boolean {
    try {
      let at = 0;
      // Positional writes at the known end: a short write continues where it stopped.
      while (at < rec.length) at += fs.writeSync(this.fd!, rec, at, rec.length - at, this.bytes + at);
      this.bytes += rec.length;
      return true;
    } catch (err) {
      this.error = err as Error;
      return false;
    }
  }
}

function recordR(id: number, payload: Buffer): Buffer {
  const rec = Buffer.allocUnsafe(9 + payload.length);
  rec[0] = R;
  rec.writeUInt32BE(id, 1);
  rec.writeUInt32BE(payload.length, 5);
  payload.copy(rec, 9);
  return rec;
}

/** The payloads recorded and not marked done, in record order; stops at a torn or unknown record. */
function scan(data: Buffer): Buffer[] {
  const open = new Map<number, Buffer>();
  let at = 0;
  while (at < data.length) {
    const type = data[at];
    if (type === R) {
      if (at + 9 > data.length) break;
      const id = data.readUInt32BE(at + 1);
      const len = data.readUInt32BE(at + 5);
      if (at + 9 + len > data.length) break;
      open.set(id, Buffer.from(data.subarray(at + 9, at + 9 + len)));
      at += 9 + len;
    } else if (type === D) {
      if (at + 5 > data.length) break;
      open.delete(data.readUInt32BE(at + 1));
      at += 5;
    } else {
      break;
    }
  }
  return [...open.values()];
}
