/**
 * What a DeploymentRun keeps in storage (key "state"): the deployment as the
 * API started it, where the phase machine stands, and what it has measured.
 * Everything the object knows is here, so an evicted or restarted object
 * resumes from it.
 */
import {
  emptyAccounting, type Attention, type DeploymentError, type DeploymentInit, type DeploymentMetrics, type DeploymentStatus, type DeploymentStep, type PhaseRecord,
} from "../../protocol/deployments.ts";

/** The steps of a deployment; `done` is where every ending (completed, rolled back, failed) rests. */
export type Step = DeploymentStep | "done";

export interface RunState extends DeploymentInit {
  status: DeploymentStatus;
  step: Step;
  attempt: number;
  /** The command this step sent and when the step's deadline is (epoch ms). */
  awaiting: { commandId: string; deadline: number } | null;
  /** The current step starts at this time (the analysis window, the rollback window). */
  waitUntil: number | null;
  blue?: string;
  green?: string;
  /** The exact Node-RED release green runs (prepare's answer). */
  greenNodeRed?: string;
  /** Green's flows revision after DEPLOY; VERIFY checks it. */
  expectRev?: string;
  switched: boolean;
  /** A hold the drain opened and no hand-over has replayed yet: its counts at the drain (accounting.ts). */
  openHold?: { mqtt: number; http: number } | null;
  /** When this object saw blue drained (a fallback for holdMs when the bridge gives no times). */
  holdStartedAt?: number;
  phaseStartedAt: number;
  history: PhaseRecord[];
  metrics: DeploymentMetrics;
  error: DeploymentError | null;
  /** A retry in progress or a pause for a person (the view's `attention`); absent in states stored before it existed. */
  attention?: Attention | null;
  completedAt: string | null;
}

export function initialState(init: DeploymentInit, first: Step, now: number): RunState {
  return {
    // Written out, so a state always says its order (a stored state without one is from before orders: `deploy`).
    ...init, holdDuring: init.holdDuring ?? "switch", status: "in_progress", step: first, attempt: 0, awaiting: null, waitUntil: null, switched: false,
    phaseStartedAt: now, history: [],
    metrics: {
      messagesHeld: 0, messagesReplayed: 0, messagesLost: 0, messagesDuplicated: 0, inFlightAtDrain: 0, stragglers: 0, phaseMs: {},
      accounting: emptyAccounting(),
    },
    error: null, attention: null, completedAt: null,
  };
}

/** A state as stored; one written before failure reasons had codes carries its reason as text. */
export function fromStorage(stored: RunState | (Omit<RunState, "error"> & { error: string | null })): RunState {
  const { error, ...rest } = stored;
  return { ...rest, error: typeof error === "string" ? { code: "step_failed", message: error } : error };
}
