/**
 * Unfinished checkpointed workflows follow the traffic: when a switch moves an
 * instance from one runtime to another (blue → green, or back in a rollback),
 * `from` stops advancing its workflows (a step under way may finish and write
 * its end checkpoint, up to a deadline) and answers each one's last checkpoint;
 * `to` continues each from it (redforge-checkpoint's admin routes). Stragglers
 * of the drain are therefore replayed on the serving runtime from their
 * checkpoint instead of finishing on a runtime that is about to stop.
 *
 * Best effort around the switch: a runtime without the checkpoint node (404)
 * has nothing to hand over; any other failure is logged and reported, never
 * thrown, so the switch itself (already done) is not undone by it.
 */
import { z } from "zod";
import type { RuntimeAdmin } from "../drivers/nodeRedAdmin.ts";

const handedSchema = z.object({ records: z.array(z.looseObject({ workflowId: z.string(), kind: z.string(), step: z.string(), phase: z.string() })) });
const resumedSchema = z.object({ results: z.array(z.looseObject({ workflowId: z.string(), outcome: z.string() })) });

export interface WorkflowHandoverResult {
  /** Workflows `from` handed over. */
  handedOver: number;
  /** Of those, continued (or a repeatable step rerun) on `to`. */
  resumed: number;
  /** Failed on `to` (step interrupted and not repeatable, or the step not in `to`'s flows). */
  failed: number;
  /** Why nothing or not everything moved, when something went wrong. */
  problem?: string;
}

/** How long `from` may take to finish a step under way before it hands the workflow over as interrupted. */
export const DEFAULT_STEP_GRACE_MS = 10_000;

export async function handOverWorkflows(admin: RuntimeAdmin, fromBase: string, toBase: string, stepGraceMs = DEFAULT_STEP_GRACE_MS): Promise<WorkflowHandoverResult> {
  const none = { handedOver: 0, resumed: 0, failed: 0 };
  if (!admin.checkpoints) return none;
  try {
    const res = await admin.checkpoints(fromBase, "handover", { timeoutMs: stepGraceMs }, stepGraceMs + 20_000);
    if (res.status === 404) {
      await res.arrayBuffer();
      return none; // no redforge-checkpoint in this runtime's node package: nothing checkpointed
    }
    if (!res.ok) return { ...none, problem: `handover from ${fromBase}: ${res.status} ${(await res.text()).slice(0, 200)}` };
    const { records } = handedSchema.parse(await res.json());
    if (records.length === 0) return none;
    const resumed = await admin.checkpoints(toBase, "resume", { records, source: "handover" });
    if (!resumed.ok) return { ...none, handedOver: records.length, problem: `resume on ${toBase}: ${resumed.status} ${(await resumed.text()).slice(0, 200)}` };
    const { results } = resumedSchema.parse(await resumed.json());
    const failed = results.filter((r) => r.outcome === "failed").length;
    return { handedOver: records.length, resumed: results.length - failed, failed };
  } catch (err) {
    return { ...none, problem: err instanceof Error ? err.message : String(err) };
  }
}
