/**
 * The emulator's state file: schedules, undelivered messages, the DLQ and live
 * deduplication ids, so a dev-server restart loses nothing. Written whole, to a
 * temp file renamed over the old one, so a crash mid-write leaves the previous
 * state intact. Bodies are base64 because messages may carry binary payloads.
 */
import fs from "node:fs";
import path from "node:path";
import type { DeliverySpec, DlqEntry, StoredMessage, StoredSchedule } from "./types.ts";

export interface EmulatorState {
  messages: StoredMessage[];
  schedules: StoredSchedule[];
  dlq: DlqEntry[];
  /** dedup key → [messageId, expiresAt] */
  dedup: [string, { messageId: string; expiresAt: number }][];
}

const VERSION = 1;

// JSON.stringify would turn a Buffer into {type, data: [bytes...]}; the holder
// (`this`) still has the original, so store base64 instead and revive it on load.
function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const original = this[key];
  return Buffer.isBuffer(original) ? { $b64: original.toString("base64") } : value;
}
function reviver(_key: string, value: unknown): unknown {
  if (value && typeof value === "object" && typeof (value as { $b64?: unknown }).$b64 === "string") {
    return Buffer.from((value as { $b64: string }).$b64, "base64");
  }
  return value;
}

export function saveState(file: string, state: EmulatorState): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ version: VERSION, savedAt: Date.now(), ...state }, replacer));
  fs.renameSync(tmp, file);
}

/**
 * Missing file → empty state. An unreadable one is moved aside (and reported)
 * rather than blocking `npm start` or being silently overwritten.
 */
export function loadState(file: string, log: (line: string) => void): EmulatorState {
  const empty: EmulatorState = { messages: [], schedules: [], dlq: [], dedup: [] };
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return empty;
    throw err;
  }
  try {
    const data = JSON.parse(text, reviver) as Partial<EmulatorState> & { version?: number };
    if (data.version !== VERSION) throw new Error(`unknown state version ${String(data.version)}`);
    const okSpec = (s: DeliverySpec | undefined) => !!s && typeof s.url === "string" && Buffer.isBuffer(s.body);
    return {
      messages: (data.messages ?? []).filter(okSpec),
      schedules: (data.schedules ?? []).filter((s) => okSpec(s.spec)),
      dlq: (data.dlq ?? []).filter((d) => okSpec(d.message)),
      dedup: data.dedup ?? [],
    };
  } catch (err) {
    const aside = `${file}.corrupt-${Date.now()}`;
    fs.renameSync(file, aside);
    log(`state file ${file} unreadable (${(err as Error).message}); moved to ${aside}, starting empty`);
    return empty;
  }
}
