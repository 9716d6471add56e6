/** What startRollout hands a new RolloutRun, and what its operator calls answer. */
import type { FailureBudget, Rollout, RolloutDeploymentOptions, RolloutPause, WaveTarget } from "../../protocol/api/rollouts.ts";

export interface RolloutPlan {
  waves: WaveTarget[];
  parallelism: number;
  pause: RolloutPause;
  failureBudget: FailureBudget;
  onFailure: "leave" | "rollback_wave";
  lateJoiners: "after_completion" | "ignore";
}

export interface RolloutInit {
  id: string;
  selector: string;
  description: string | null;
  flows: unknown[];
  flowsDigest: string;
  versionId: string | null;
  plan: RolloutPlan;
  deployment: RolloutDeploymentOptions;
  /** The selection at start, sorted, cut into waves (core/rollouts/plan.ts). */
  waves: string[][];
  /** Cumulative instance count after each wave. */
  targets: number[];
  createdBy: string | null;
  createdAt: string;
}

export type RolloutAction = "pause" | "resume" | "approve" | "abort";
export type RolloutAnswer = { ok: true; view: Rollout } | { ok: false; status: 404 | 409; code: string; message: string };
