/**
 * The permission table's resources and actions, for the pickers of custom roles
 * and API key scopes. The API has no route that lists them; they are the enum
 * of POST /api/roles' body in the generated OpenAPI types, and the checks below
 * fail the typecheck if a resource is added there and not here (or the reverse).
 */
import type { ApiBody } from "../../../protocol/api/client.ts";

type Grant = ApiBody<"/api/roles", "post">["permissions"][number];
export type Resource = Exclude<Grant["resource"], "*">;
export type GrantAction = Exclude<Grant["action"], "*">;

export const RESOURCES = [
  "instances", "clusters", "deployments", "users", "roles", "audit", "apikeys", "metrics", "config", "policies", "quotas",
  "ai_decisions", "ai_prompts", "ai_prices", "reports", "alerts", "dead_letters",
] as const satisfies readonly Resource[];
/** The four actions every resource has. */
export const ACTIONS = ["create", "read", "update", "delete"] as const satisfies readonly GrantAction[];
/**
 * Actions only some resources have: deployments:approve, a pipeline promotion's second person (four-eyes). A row is
 * collapsed to `resource:*` only when these are ticked too: `deployments:*` includes approve, so four ticked
 * deployment boxes must not become it, or a role meant to deploy could approve its own promotions' peers.
 */
export const EXTRA_ACTIONS: Partial<Record<Resource, readonly GrantAction[]>> = { deployments: ["approve"] };
export const actionsOf = (r: Resource): readonly GrantAction[] => [...ACTIONS, ...(EXTRA_ACTIONS[r] ?? [])];

type Missing<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : Exclude<All, Listed>;
const everyResourceListed: Missing<Resource, (typeof RESOURCES)[number]> = true;
const everyActionListed: Missing<GrantAction, (typeof ACTIONS)[number] | "approve"> = true;
void everyResourceListed; void everyActionListed;

/** What a resource means, for the picker's row header. */
export const RESOURCE_WORDS: Record<Resource, string> = {
  instances: "Node-RED instances", clusters: "clusters and bridges", deployments: "blue-green deployments", users: "users",
  roles: "roles", audit: "audit log", apikeys: "own API keys", metrics: "health and fleet metrics", config: "schedules, retention, re-seal",
  policies: "policies", quotas: "team quotas", ai_decisions: "AI decision records", ai_prompts: "prompt and response text",
  ai_prices: "model prices", reports: "compliance reports", alerts: "alerts",
  dead_letters: "dead letters from agent flows",
};

export interface PermissionGrant { resource: Resource | "*"; action: GrantAction | "*" }

/** A picker's ticked cells as grants: a whole row ticked becomes `resource:*`, everything ticked becomes `*:*`. */
export function grantsOf(ticked: ReadonlySet<string>): PermissionGrant[] {
  const full = RESOURCES.every((r) => actionsOf(r).every((a) => ticked.has(`${r}:${a}`)));
  if (full) return [{ resource: "*", action: "*" }];
  return RESOURCES.flatMap((r): PermissionGrant[] => {
    if (actionsOf(r).every((a) => ticked.has(`${r}:${a}`))) return [{ resource: r, action: "*" }];
    return actionsOf(r).filter((a) => ticked.has(`${r}:${a}`)).map((a) => ({ resource: r, action: a }));
  });
}

/** Grants (possibly with wildcards) as the picker's ticked cells. */
export function tickedOf(grants: readonly { resource: string; action: string }[]): Set<string> {
  const out = new Set<string>();
  for (const g of grants) {
    for (const r of RESOURCES) {
      if (g.resource !== "*" && g.resource !== r) continue;
      for (const a of actionsOf(r)) if (g.action === "*" || g.action === a) out.add(`${r}:${a}`);
    }
  }
  return out;
}

/** Grants as short text: "instances:read, deployments:*". */
export function grantsText(grants: readonly { resource: string; action: string }[] | null): string {
  if (!grants || grants.length === 0) return "—";
  return grants.map((g) => `${g.resource}:${g.action}`).join(", ");
}
