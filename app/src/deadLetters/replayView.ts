/**
 * What the dead-letter page shows about a letter's replay and which button
 * applies, apart from the component so it is tested in plain Node
 * (test/unit/console/deadLetters.test.ts). The API answers 409
 * already_replayed to a second replay without ?force=true and
 * replay_pending while one waits for the bridge; the page offers exactly
 * what it would accept.
 */
export type ReplayState = "pending" | "succeeded" | "failed" | null;

export interface ReplayFacts {
  replayState: ReplayState;
  replayResult: { ok: boolean; status?: number | undefined; code?: string | undefined; message?: string | undefined } | null;
  input: unknown;
  redacted: boolean;
}

/** null: no button (pending, or nothing kept to send). */
export type ReplayAction = { label: string; force: boolean; confirm: boolean } | null;

export function replayAction(l: ReplayFacts): ReplayAction {
  if (l.replayState === "pending") return null;
  // A truncated input (over 64 KB) cannot be sent again; a redacted one is still on the server.
  if (!l.redacted && (l.input === null || isTruncated(l.input))) return null;
  if (l.replayState === null) return { label: "Replay", force: false, confirm: false };
  return { label: "Replay again", force: true, confirm: true };
}

export function isTruncated(input: unknown): boolean {
  return typeof input === "object" && input !== null && (input as { truncated?: unknown }).truncated === true;
}

export const REPLAY_TONE: Record<Exclude<ReplayState, null>, string> = { pending: "busy", succeeded: "ok", failed: "bad" };

/** One line for the replay's outcome: "HTTP 503 store_unavailable: still down". */
export function replayOutcome(l: Pick<ReplayFacts, "replayState" | "replayResult">): string {
  if (l.replayState === null) return "";
  if (l.replayState === "pending") return "waiting for the cluster's bridge";
  const r = l.replayResult;
  if (!r) return "";
  const head = [r.status !== undefined ? `HTTP ${r.status}` : "", r.code ?? ""].filter(Boolean).join(" ");
  return [head || (r.ok ? "delivered" : "failed"), r.message].filter(Boolean).join(": ");
}
