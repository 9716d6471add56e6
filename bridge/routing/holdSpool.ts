/**
 * Where an MQTT front keeps work between receiving it and replaying it at a
 * hand-over: the messages collected from the hold queue (and the ingest work
 * that arrives while a hand-over runs).
 *
 * `SpoolFile` is an append-only file of length-prefixed records (4-byte
 * big-endian length, then the payload). Each record is written with
 * fs.writeSync before the caller lets mqtt.js send the PUBACK, so once the
 * broker forgets a message it is in the kernel's page cache, which survives a
 * kill of this process (not a power cut: for that, `fsync` per record, at the
 * cost of one disk flush per held message). A torn last record (a crash in
 * the middle of a write) is dropped on load: its PUBACK was never sent, so
 * the broker redelivers it.
 *
 * `MemoryHold` is the same contract without a file (a front without a state
 * dir: the kubernetes driver's in-process fronts).
 */
import fs from "node:fs";
import path from "node:path";

export interface HoldStore {
  /** Appends one message; durable (as configured) when it returns. */
  append(payload: Buffer): void;
  /** Every stored message, oldest first. */
  readAll(): Buffer[];
  /**
   * Forgets the oldest `n` messages (replayed and acknowledged); what was
   * appended after they were read stays, in order.
   */
  consume(n: number): void;
  readonly count: number;
  close(): void;
}

const HEADER = 4;

export class MemoryHold implements HoldStore {
  private items: Buffer[] = [];
  append(payload: Buffer): void { this.items.push(payload); }
  readAll(): Buffer[] { return [...this.items]; }
  consume(n: number): void { this.items.splice(0, n); }
  get count(): number { return this.items.length; }
  close(): void {}
}

export class SpoolFile implements HoldStore {
  private fd: number;
  private records: number;
  private bytes: number;

  /** Opens (creating) the spool at `file`; what an earlier process left there counts as stored work. */
  constructor(readonly file: string, private readonly fsync = false) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    const { records, validBytes, size } = scan(fs.readFileSync(file));
    // A torn tail (killed mid-write) was never acknowledged: cut it so the next record lines up.
    if (validBytes !== size) fs.ftruncateSync(this.fd, validBytes);
    this.records = records.length;
    this.bytes = validBytes;
  }

  append(payload: Buffer): void {
    const record = Buffer.allocUnsafe(HEADER + payload.length);
    record.writeUInt32BE(payload.length, 0);
    payload.copy(record, HEADER);
    let written = 0;
    // Positional writes at the known end: a short write continues where it stopped.
    while (written < record.length) written += fs.writeSync(this.fd, record, written, record.length - written, this.bytes + written);
    if (this.fsync) fs.fsyncSync(this.fd);
    this.bytes += record.length;
    this.records++;
  }

  readAll(): Buffer[] {
    return scan(fs.readFileSync(this.file)).records;
  }

  consume(n: number): void {
    if (n <= 0) return;
    if (n >= this.records) {
      fs.ftruncateSync(this.fd, 0);
      if (this.fsync) fs.fsyncSync(this.fd);
      this.bytes = 0;
      this.records = 0;
      return;
    }
    // Work arrived while the replay ran (rare: a gate that kept holding): the rest moves to a
    // new file that replaces this one whole, so a crash leaves either the old spool or the new.
    const rest = this.readAll().slice(n);
    const tmp = `${this.file}.tmp`;
    const out = Buffer.concat(rest.flatMap((p) => { const h = Buffer.allocUnsafe(HEADER); h.writeUInt32BE(p.length, 0); return [h, p]; }));
    fs.writeFileSync(tmp, out, { mode: 0o600 });
    if (this.fsync) { const fd = fs.openSync(tmp, "r"); fs.fsyncSync(fd); fs.closeSync(fd); }
    fs.renameSync(tmp, this.file);
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, fs.constants.O_RDWR);
    this.records = rest.length;
    this.bytes = out.length;
  }

  get count(): number {
    return this.records;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

function scan(data: Buffer): { records: Buffer[]; validBytes: number; size: number } {
  const records: Buffer[] = [];
  let at = 0;
  while (at + HEADER <= data.length) {
    const len = data.readUInt32BE(at);
    if (at + HEADER + len > data.length) break;
    records.push(Buffer.from(data.subarray(at + HEADER, at + HEADER + len)));
    at += HEADER + len;
  }
  return { records, validBytes: at, size: data.length };
}
