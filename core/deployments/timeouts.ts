/**
 * The deadlines a new deployment runs with, resolved once when it starts (the
 * DeploymentRun only reads the result): the request's `timeouts`, the Worker's
 * REDFORGE_DEPLOY_TIMEOUT_SCALE, and the cluster's measured command round trip.
 * A deadline is how long silence from the bridge is tolerated before a step is
 * retried or rolled back, so on a loaded machine it must grow, not fire early.
 */
import { ApiError } from "../errors.ts";
import { TIMED_STEPS, type DeploymentInit, type DeploymentTimeoutsRequest, type TimedStep } from "../../protocol/deployments.ts";

export const SCALE_MIN = 0.5;
export const SCALE_MAX = 20;

/**
 * REDFORGE_DEPLOY_TIMEOUT_SCALE (core/env.ts): a value that does not parse is a misconfiguration (503), never
 * silently 1. Typed by its one field, so the Node unit tests type-check without the Worker's types.
 */
export function workerTimeoutScale(env: { REDFORGE_DEPLOY_TIMEOUT_SCALE?: string | undefined }): number {
  const raw = env.REDFORGE_DEPLOY_TIMEOUT_SCALE?.trim();
  if (!raw) return 1;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale < SCALE_MIN || scale > SCALE_MAX) {
    throw new ApiError(503, "misconfigured", "the control plane is not configured", {
      missing: [], problems: [`REDFORGE_DEPLOY_TIMEOUT_SCALE is not a number from ${SCALE_MIN} to ${SCALE_MAX}`],
    });
  }
  return scale;
}

/** Below this a receipt's delay is the network, not load. */
const QUIET_ROUND_TRIP_MS = 50;
/** Each 250 ms of receipt delay beyond the quiet level adds the table's deadlines once more. */
const ROUND_TRIP_PER_SCALE_MS = 250;
const ROUND_TRIP_SCALE_MAX = 4;

/**
 * How much a slow bridge lengthens deadlines: 1 on a quiet cluster, 1 + (round trip − 50 ms) / 250 ms
 * above it, at most ×4. A bridge that takes 300 ms to acknowledge a frame has an event loop that
 * stalls, and every step it runs (Admin API calls, polls) stalls with it.
 */
export function roundTripScale(roundTripMs: number | null | undefined): number {
  if (roundTripMs === null || roundTripMs === undefined || !Number.isFinite(roundTripMs)) return 1;
  return Math.min(ROUND_TRIP_SCALE_MAX, 1 + Math.max(0, roundTripMs - QUIET_ROUND_TRIP_MS) / ROUND_TRIP_PER_SCALE_MS);
}

export function resolveTimeouts(requested: DeploymentTimeoutsRequest | undefined, workerScale: number, roundTripMs: number | null | undefined): NonNullable<DeploymentInit["timeouts"]> {
  const stepMs: Partial<Record<TimedStep, number>> = {};
  for (const step of TIMED_STEPS) {
    const seconds = requested?.[step];
    if (seconds !== undefined) stepMs[step] = seconds * 1000;
  }
  const scale = (requested?.scale ?? workerScale) * roundTripScale(roundTripMs);
  return { scale: Math.round(scale * 100) / 100, roundTripMs: roundTripMs ?? null, stepMs };
}
