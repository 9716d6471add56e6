/**
 * How a deployment's state looks from outside: the API view, the events its
 * watchers get, and the `deployments` row (a projection the list and the
 * one-per-instance check read; the object's storage is the truth).
 */
import { eq } from "drizzle-orm";
import type { Db } from "../../db/client.ts";
import { deployments } from "../../db/schema.ts";
import type { DeploymentEvent, DeploymentView, Phase, PhaseRecord } from "../../protocol/deployments.ts";
import type { RunState } from "./state.ts";
import { deadlinesOf, phaseOf, progressOf } from "./steps.ts";

type PhaseEvent = Extract<DeploymentEvent, { event: "deployment:phase" }>["data"];
type ProgressEvent = Extract<DeploymentEvent, { event: "deployment:progress" }>["data"];

export function view(s: RunState): DeploymentView {
  return {
    id: s.id, instanceId: s.instanceId, strategy: s.strategy, status: s.status, phase: phaseOf(s, s.step),
    progress: progressOf(s), ...(s.blue ? { blue: s.blue } : {}), ...(s.green ? { green: s.green } : {}),
    switched: s.switched, history: s.history, metrics: s.metrics, error: s.error, attention: s.attention ?? null,
    timeouts: { scale: s.timeouts?.scale ?? 1, roundTripMs: s.timeouts?.roundTripMs ?? null, stepSeconds: deadlinesOf(s) },
    fromVersionId: s.fromVersionId, toVersionId: s.toVersionId,
    fromStack: s.fromStack ?? null, toStack: s.toStack ?? null, toNodeRed: s.greenNodeRed ?? null,
    createdAt: s.createdAt, completedAt: s.completedAt,
  };
}

export function phaseEvent(s: RunState, phase: Phase, status: PhaseRecord["status"], now: number, detail?: string): PhaseEvent {
  return { deploymentId: s.id, phase, status, deploymentStatus: s.status, ...(detail ? { detail } : {}), timestamp: new Date(now).toISOString() };
}

export function progressEvent(s: RunState, inFlight: number, now: number): ProgressEvent {
  return {
    deploymentId: s.id, messagesHeld: s.metrics.messagesHeld, inFlightCount: inFlight, progress: progressOf(s),
    timestamp: new Date(now).toISOString(), attention: s.attention ?? null,
  };
}

/** The row, written in full each time, so a failed write is repaired by the next. */
export async function writeRow(db: Db, s: RunState): Promise<void> {
  await db.update(deployments).set({
    status: s.status, currentPhase: phaseOf(s, s.step) ?? (s.status === "completed" ? "CLEANUP" : "ROLLING_BACK"),
    // Beside the metrics, what rowView (functions/routes/deployments.ts) reads back when the object is gone.
    metrics: {
      ...s.metrics, history: s.history, blue: s.blue, green: s.green, switched: s.switched, progress: progressOf(s),
      fromStack: s.fromStack, toStack: s.toStack, toNodeRed: s.greenNodeRed, attention: s.attention ?? null,
      timeouts: view(s).timeouts,
    },
    error: s.error?.message ?? null, errorCode: s.error?.code ?? null,
    ...(s.completedAt ? { completedAt: new Date(s.completedAt) } : {}),
  }).where(eq(deployments.id, s.id));
}
