/**
 * Every permission in one table (after FlowFuse's forge/lib/permissions.js):
 * built-in roles and what each may do, extending the seed's section 5.1 with
 * the resources this design adds. A route declares
 * `requirePermission("instances", "create")` and nothing else.
 */
import type { Permission } from "../../db/schema.ts";

export const RESOURCES = [
  "instances", "clusters", "deployments", "users", "roles", "audit", "apikeys", "metrics", "config", "policies", "quotas",
] as const;
export const ACTIONS = ["create", "read", "update", "delete"] as const;

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
    all("deployments"),
    ...can("audit", "read"),
    ...can("clusters", "read"),
    ...can("metrics", "read"),
    // Own API keys only (routes scope them to the caller), never wider than the caller's role.
    ...can("apikeys", "create", "read", "delete"),
  ],
  viewer: [
    ...can("instances", "read"),
    ...can("deployments", "read"),
    ...can("audit", "read"),
    ...can("clusters", "read"),
    ...can("metrics", "read"),
    ...can("apikeys", "create", "read", "delete"),
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
