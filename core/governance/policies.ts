/**
 * The policy engine: admin-written rules, each of one `kind` with a zod-typed
 * `rule`, evaluated against an action (a deployment, a scale, a model call).
 * Evaluation is pure: callers load the enabled policies and the instance's
 * facts, so the same code serves enforcement and POST /api/policies/evaluate.
 * The first enabled policy that denies wins; its name and a sentence a person
 * can act on come back with the denial.
 */
import { and, eq, isNull } from "drizzle-orm";
import { z } from "zod";
import type { Db } from "../../db/client.ts";
import { clusters, instances, policies } from "../../db/schema.ts";
import { ApiError } from "../errors.ts";
import { labelMap } from "../../protocol/shapes.ts";
import { globMatches } from "./nameGlob.ts";

const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;
type Day = (typeof DAYS)[number];
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, "a time of day as HH:MM (00:00–24:00)");
const timeZone = z.string().min(1).max(64).refine((tz) => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, "an IANA time zone such as UTC or Europe/Berlin");

/**
 * Which instances a rule covers: every given field must match (an empty
 * selector covers all). An instance's labels are its cluster's labels.
 */
export const selectorShape = z.strictObject({
  team: z.string().min(1).max(100).optional(),
  /** Glob over the instance name: `*` any run of characters, e.g. "prod-*" (matched without a regex, nameGlob.ts). */
  namePattern: z.string().min(1).max(63).regex(/^[a-z0-9*-]+$/, "instance-name characters and * only").optional(),
  labels: labelMap.optional(),
});

export const ruleShapes = {
  approved_models: z.strictObject({
    models: z.array(z.string().min(1).max(100)).min(1).max(200),
    /** When given, the provider must be listed too. */
    providers: z.array(z.string().min(1).max(100)).min(1).max(50).optional(),
    /** When given, only calls made by matching instances are covered. */
    selector: selectorShape.optional(),
  }),
  deployment_window: z.strictObject({
    selector: selectorShape.default({}),
    /** Deployments to covered instances are allowed only inside this window. */
    days: z.array(z.enum(DAYS)).min(1).max(7),
    start: hhmm,
    /** Exclusive; earlier than `start` means the window runs past midnight. */
    end: hhmm,
    timezone: timeZone.default("UTC"),
  }).refine((r) => r.start !== r.end, { message: "start and end must differ", path: ["end"] }),
  max_replicas: z.strictObject({
    selector: selectorShape.default({}),
    max: z.number().int().min(0).max(100),
  }),
} as const;

export type PolicyKind = keyof typeof ruleShapes;
export const POLICY_KINDS = Object.keys(ruleShapes) as [PolicyKind, ...PolicyKind[]];
export type Rule<K extends PolicyKind> = z.output<(typeof ruleShapes)[K]>;
export type Selector = z.output<typeof selectorShape>;

export interface Policy {
  name: string;
  kind: string;
  rule: unknown;
  enabled: boolean;
}

/** The facts about an instance a rule can select on. */
export interface InstanceFacts {
  name: string;
  team: string;
  labels: Record<string, string>;
}

export type PolicyAction =
  | { action: "deploy"; instance: InstanceFacts; at: Date }
  | { action: "scale"; instance: InstanceFacts; replicas: number }
  | { action: "model_call"; model: string; provider?: string; instance?: InstanceFacts };

export type Decision =
  | { allowed: true }
  | { allowed: false; policy: string; kind: string; reason: string };

const ALLOW: Decision = { allowed: true };

export function selects(s: Selector, i: InstanceFacts): boolean {
  if (s.team !== undefined && s.team !== i.team) return false;
  if (s.namePattern !== undefined && !globMatches(s.namePattern, i.name)) return false;
  return Object.entries(s.labels ?? {}).every(([k, v]) => i.labels[k] === v);
}

/** Day and minute of the day at `at` in `tz`. */
function localClock(at: Date, tz: string): { day: Day; minute: number } {
  const parts = new Intl.DateTimeFormat("en-US", { timeZone: tz, weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
    .formatToParts(at);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? "";
  return { day: get("weekday").toLowerCase().slice(0, 3) as Day, minute: Number(get("hour")) * 60 + Number(get("minute")) };
}

const minutes = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3));

export function insideWindow(r: Rule<"deployment_window">, at: Date): boolean {
  const { day, minute } = localClock(at, r.timezone);
  const start = minutes(r.start);
  const end = minutes(r.end);
  if (start < end) return r.days.includes(day) && minute >= start && minute < end;
  // Past midnight: the early part belongs to the window opened the day before.
  const yesterday = DAYS[(DAYS.indexOf(day) + 6) % 7]!;
  return (r.days.includes(day) && minute >= start) || (r.days.includes(yesterday) && minute < end);
}

function describeWindow(r: Rule<"deployment_window">): string {
  return `${r.days.join(",")} ${r.start}–${r.end} ${r.timezone}`;
}

function parsed<K extends PolicyKind>(p: Policy, kind: K): Rule<K> | undefined {
  if (!p.enabled || p.kind !== kind) return undefined;
  // Rules were validated on write; a row edited by hand that no longer parses is skipped, not trusted.
  const r = ruleShapes[kind].safeParse(p.rule);
  return r.success ? (r.data as Rule<K>) : undefined;
}

function deny(p: Policy, reason: string): Decision {
  return { allowed: false, policy: p.name, kind: p.kind, reason };
}

/**
 * Approved-models check for an AI call (the decision-log ingest calls this per
 * record): denied when an enabled `approved_models` policy does not list the
 * model, or lists providers and not this one.
 */
export function evaluateModelPolicy(list: readonly Policy[], call: { model: string; provider?: string; instance?: InstanceFacts }): Decision {
  for (const p of list) {
    const r = parsed(p, "approved_models");
    if (!r) continue;
    // A scoped policy covers only calls whose instance it selects.
    if (r.selector && !(call.instance && selects(r.selector, call.instance))) continue;
    if (!r.models.includes(call.model)) {
      return deny(p, `model ${call.model} is not on the approved list of policy ${p.name} (${r.models.join(", ")})`);
    }
    if (r.providers && !(call.provider && r.providers.includes(call.provider))) {
      return deny(p, `provider ${call.provider ?? "(none given)"} is not approved by policy ${p.name} (${r.providers.join(", ")})`);
    }
  }
  return ALLOW;
}

export function evaluatePolicies(list: readonly Policy[], a: PolicyAction): Decision {
  if (a.action === "model_call") return evaluateModelPolicy(list, a);
  for (const p of list) {
    if (a.action === "deploy") {
      const r = parsed(p, "deployment_window");
      if (r && selects(r.selector, a.instance) && !insideWindow(r, a.at)) {
        return deny(p, `deployments to ${a.instance.name} are allowed only ${describeWindow(r)} (policy ${p.name}); it is ${a.at.toISOString()}`);
      }
    } else {
      const r = parsed(p, "max_replicas");
      if (r && selects(r.selector, a.instance) && a.replicas > r.max) {
        return deny(p, `${a.instance.name} may run at most ${r.max} replicas (policy ${p.name}); ${a.replicas} requested`);
      }
    }
  }
  return ALLOW;
}

export async function enabledPolicies(db: Pick<Db, "select">): Promise<Policy[]> {
  return db.select({ name: policies.name, kind: policies.kind, rule: policies.rule, enabled: policies.enabled })
    .from(policies).where(eq(policies.enabled, true)).orderBy(policies.name);
}

/** An instance's facts for selectors: its labels are its cluster's labels. */
export async function instanceFacts(db: Pick<Db, "select">, instance: { name: string; team: string; clusterId: string }): Promise<InstanceFacts> {
  const [cluster] = await db.select({ labels: clusters.labels }).from(clusters).where(eq(clusters.id, instance.clusterId)).limit(1);
  return { name: instance.name, team: instance.team, labels: cluster?.labels ?? {} };
}

export function policyDenied(d: Extract<Decision, { allowed: false }>): ApiError {
  return new ApiError(403, "POLICY_DENIED", d.reason, { policy: d.policy, kind: d.kind, reason: d.reason });
}

/** 403 `POLICY_DENIED` when a `max_replicas` policy covers the instance and `replicas` exceeds it. */
export async function assertScaleAllowed(db: Pick<Db, "select">, instanceId: string, replicas: number): Promise<void> {
  const [row] = await db.select({ name: instances.name, team: instances.team, clusterId: instances.clusterId })
    .from(instances).where(and(eq(instances.id, instanceId), isNull(instances.deletedAt))).limit(1);
  if (!row) return;
  const decision = evaluatePolicies(await enabledPolicies(db), { action: "scale", instance: await instanceFacts(db, row), replicas });
  if (!decision.allowed) throw policyDenied(decision);
}
