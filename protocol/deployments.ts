/**
 * Blue-green deployments: the request an operator sends, the phases and
 * statuses a DeploymentRun moves through, and the events its watchers get
 * (/ws/deployments/:id). Shared by the API, the Durable Object and the console.
 */
import { z } from "zod";
import { smokeChecksSchema } from "./commands.ts";

export const PHASES = ["DRAIN", "DEPLOY", "VERIFY", "RESUME", "AUDIT", "CLEANUP", "ROLLING_BACK"] as const;
export type Phase = (typeof PHASES)[number];

export const STATUSES = ["pending", "in_progress", "paused", "completed", "failed", "rolled_back"] as const;
export type DeploymentStatus = (typeof STATUSES)[number];
export const ACTIVE_STATUSES: DeploymentStatus[] = ["pending", "in_progress", "paused"];

export const STRATEGIES = ["blue-green"] as const;

export const createDeploymentSchema = z.object({
  instanceId: z.uuid(),
  strategy: z.string().default("blue-green"),
  /** The new flows (Node-RED flow JSON array); or `versionId` of a stored version (a redeploy of an older one). */
  flows: z.array(z.record(z.string(), z.unknown())).max(10_000).optional(),
  versionId: z.uuid().optional(),
  verify: smokeChecksSchema.optional(),
  /** How long blue's in-flight messages may take to finish before the stragglers are left to blue (stays warm). */
  drainTimeoutSeconds: z.number().int().min(1).max(600).default(30),
  /** Post-switch analysis: watch green this long; roll back above `maxErrorRate`. */
  analysisSeconds: z.number().int().min(0).max(3600).default(5),
  maxErrorRate: z.number().min(0).max(1).default(0.05),
  /** Blue stays warm this long after the switch; `POST /rollback` works until then. */
  rollbackWindowSeconds: z.number().int().min(0).max(86_400).default(60),
  /**
   * "deploy" (default): blue drains first and new work is held through DEPLOY and VERIFY (DRAIN → DEPLOY → VERIFY → RESUME).
   * "switch": green is deployed and verified while blue serves; blue drains just before RESUME, so work waits only for the switch
   * (DEPLOY → VERIFY → DRAIN → RESUME). See docs/deployments.md.
   */
  holdDuring: z.enum(["deploy", "switch"]).default("deploy"),
  description: z.string().max(500).optional(),
}).strict().refine((v) => (v.flows === undefined) !== (v.versionId === undefined), {
  message: "give exactly one of flows or versionId", path: ["flows"],
});
export type CreateDeployment = z.infer<typeof createDeploymentSchema>;

export const listDeploymentsQuery = z.object({
  instanceId: z.uuid().optional(),
  status: z.enum(STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

export interface PhaseRecord {
  phase: Phase;
  status: "started" | "completed" | "failed" | "paused";
  at: string;
  detail?: string;
}

export interface DeploymentMetrics {
  messagesHeld: number;
  messagesReplayed: number;
  messagesLost: number;
  inFlightAtDrain: number;
  stragglers: number;
  drainMs?: number;
  /** When the front began holding new work (bridge clock), and when work flowed again after the switch. */
  holdingSince?: string;
  switchedAt?: string;
  holdMs?: number;
  totalMs?: number;
  phaseMs: Partial<Record<Phase, number>>;
  smoke?: unknown;
  analysis?: unknown;
}

/** What GET /api/deployments/:id returns and late subscribers first receive. */
export interface DeploymentView {
  id: string;
  instanceId: string;
  strategy: string;
  status: DeploymentStatus;
  phase: Phase | null;
  progress: number;
  blue?: string;
  green?: string;
  switched: boolean;
  history: PhaseRecord[];
  metrics: DeploymentMetrics;
  error: string | null;
  fromVersionId: string | null;
  toVersionId: string;
  createdAt: string;
  completedAt: string | null;
}

export type DeploymentEvent =
  | { event: "deployment:state"; data: DeploymentView }
  | { event: "deployment:phase"; data: { deploymentId: string; phase: Phase; status: PhaseRecord["status"]; deploymentStatus: DeploymentStatus; detail?: string; timestamp: string } }
  | { event: "deployment:progress"; data: { deploymentId: string; messagesHeld: number; inFlightCount: number; progress: number; timestamp: string } };
