/**
 * What a person can do to a rollout, and when: a table of the statuses each
 * action applies to; anything else is a 409 with a code that says why.
 *   pause    running | awaiting_approval → paused   (what runs finishes; nothing new starts)
 *   resume   paused → what it was before
 *   approve  awaiting_approval → running            (the next wave starts)
 *   abort    running | paused | awaiting_approval → aborted (nothing new starts; what runs finishes and is recorded)
 * A rollback in progress cannot be paused or aborted: it is what makes a stopped wave safe.
 */
import type { RolloutAction } from "../../core/rollouts/types.ts";
import type { RolloutStatus } from "../../protocol/api/rollouts.ts";
import type { Tick } from "./drive.ts";

export interface Refusal { status: 409; code: string; message: string }

const ALLOWED: Record<RolloutAction, readonly RolloutStatus[]> = {
  pause: ["running", "awaiting_approval"],
  resume: ["paused"],
  approve: ["awaiting_approval"],
  abort: ["running", "paused", "awaiting_approval"],
};

const REFUSAL_CODE: Record<RolloutAction, string> = {
  pause: "not_pausable",
  resume: "not_paused",
  approve: "not_awaiting_approval",
  abort: "not_abortable",
};

/** Applies `what` to the tick's state, or says why not (state unchanged). */
export function operate(t: Tick, what: RolloutAction, userId: string | null): Refusal | null {
  const m = t.s.meta;
  if (!ALLOWED[what].includes(m.status)) {
    return { status: 409, code: REFUSAL_CODE[what], message: `rollout is ${m.status}; ${what} applies to a rollout that is ${ALLOWED[what].join(" or ")}` };
  }
  switch (what) {
    case "pause":
      m.pausedFrom = m.status;
      t.setStatus("paused");
      return null;
    case "resume":
      t.setStatus(m.pausedFrom ?? "running");
      m.pausedFrom = null;
      return null;
    case "approve":
      // The wave after the one that completed starts on this tick.
      m.nextWaveAt = Date.now();
      t.setStatus("running");
      return null;
    case "abort": {
      const message = `aborted by an operator${userId ? ` (user ${userId})` : ""}`;
      t.skipRemaining(message);
      const current = m.currentWave === null ? undefined : t.s.waves[m.currentWave];
      if (current && current.status === "running") t.abortWave(current);
      t.setStatus("aborted", { code: "operator_abort", message });
      return null;
    }
  }
}
