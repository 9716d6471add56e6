/**
 * Every permission in one table (after FlowFuse's forge/lib/permissions.js):
 * built-in roles and what each may do, extending the seed's section 5.1 with
 * the resources this design adds. A route declares
 * `requirePermission("instances", "create")` and nothing else.
 */
import type { Permission } from "../../db/schema.ts";

export const RESOURCES = [
  "instances", "clusters", "deployments", "users", "roles", "audit", "apikeys", "metrics", "config", "policies", "quotas",
  // AI decision records (tokens, cost, model) / the prompt and response text inside them / the price table.
  "ai_decisions", "ai_prompts", "ai_prices",
  // Compliance reports (create, list, download); admins only unless a custom role grants them.
  "reports",
  // Alert rules, alerts (ack is an update), notification channels and their dead letters.
  "alerts",
  // Messages an agent flow gave up on (redforge/dlq/+, forwarded by the bridge); inputs need ai_prompts:read too.
  "dead_letters",
] as const;
// approve: deployments:approve, the second person's approval of a pipeline promotion (four-eyes).
export const ACTIONS = ["create", "read", "update", "delete", "approve"] as const;

export type Resource = (typeof RESOURCES)[number];
export type Action = (typeof ACTIONS)[number];
export type BuiltinRole = "admin" | "operator" | "viewer";

const all = (resource: Resource | "*"): Permission => ({ resource, action: "*" });
const can = (resource: Resource, ...actions: Action[]): Permission[] => actions.map((action) => ({ resource, action }));

export const BUILTIN_ROLES: Record<BuiltinRole, Permission[]> = {
  // Full access, including users, roles, clusters and config.
  admin: [all("*")],
  // Deploys, scales and monitors instances; cannot create or destroy them (seed 5.1).
  operator: [
    ...can("instances", "read", "update"),
    // Not "approve": operators deploy and request promotions; approving one is for admins and for custom
    // roles that grant deployments:approve (a second person, docs/ci.md), so "*" here would defeat four-eyes.
    ...can("deployments", "create", "read", "update", "delete"),
    ...can("audit", "read"),
    ...can("clusters", "read"),
    ...can("metrics", "read"),
    // Own API keys only (routes scope them to the caller), never wider than the caller's role.
    ...can("apikeys", "create", "read", "delete"),
    // Limits and rules are set by admins; everyone who deploys may see them.
    ...can("quotas", "read"),
    ...can("policies", "read"),
    // Operators debug flows, so they see what a model was asked and answered.
    ...can("ai_decisions", "read"),
    ...can("ai_prompts", "read"),
    ...can("ai_prices", "read"),
    // Operators are paged: they see and acknowledge alerts and tune existing rules; admins create
    // and delete rules and channels (a channel's URL decides where alert text goes).
    ...can("alerts", "read", "update"),
    // update: replaying a dead letter (sending its input to the instance again), the one change a letter has.
    ...can("dead_letters", "read", "update"),
  ],
  viewer: [
    ...can("instances", "read"),
    ...can("deployments", "read"),
    ...can("audit", "read"),
    ...can("clusters", "read"),
    ...can("metrics", "read"),
    ...can("apikeys", "create", "read", "delete"),
    ...can("quotas", "read"),
    ...can("policies", "read"),
    // Calls, tokens and cost, but not prompt/response text (it may hold personal data): no ai_prompts.
    ...can("ai_decisions", "read"),
    ...can("ai_prices", "read"),
    ...can("alerts", "read"),
    ...can("dead_letters", "read"),
  ],
};

/** Rank for "no wider than" checks between built-in roles (API keys). */
export const ROLE_RANK: Record<BuiltinRole, number> = { viewer: 1, operator: 2, admin: 3 };

export function isBuiltinRole(name: string): name is BuiltinRole {
  return Object.hasOwn(BUILTIN_ROLES, name);
}

export function allows(permissions: readonly Permission[], resource: string, action: string): boolean {
  return permissions.some(
    (p) => (p.resource === "*" || p.resource === resource) && (p.action === "*" || p.action === action),
  );
}

/** Where two grants overlap: "*" yields to the other side, equal names match, anything else is empty. */
function meet(a: string, b: string): string | null {
  if (a === "*") return b;
  if (b === "*" || a === b) return a;
  return null;
}

/**
 * Exactly what both lists allow. Each permission is a resource × action set, so
 * the intersection of two unions is the union of the pairwise intersections.
 */
export function intersect(a: readonly Permission[], b: readonly Permission[]): Permission[] {
  const out = new Map<string, Permission>();
  for (const p of a) {
    for (const q of b) {
      const resource = meet(p.resource, q.resource);
      const action = meet(p.action, q.action);
      if (resource !== null && action !== null) out.set(`${resource}:${action}`, { resource, action });
    }
  }
  return [...out.values()];
}

/** Whether `grant` (which may hold wildcards) asks for nothing outside `permissions`. */
export function covers(permissions: readonly Permission[], grant: Permission): boolean {
  const got = intersect(permissions, [grant]);
  // The grant is a product set; it is covered when some held permission contains it whole.
  return got.some((g) => g.resource === grant.resource && g.action === grant.action);
}
