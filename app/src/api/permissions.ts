/**
 * What the signed-in person may do, read from GET /api/auth/me. Same rule as
 * the API's functions/rbac/permissions.ts `allows` ("*" matches anything), so a
 * button shown here is a button the API will not answer with 403.
 */
import type { components } from "../../../protocol/api/client.ts";

export type Permission = components["schemas"]["Permission"];
// approve: deployments:approve, the second person's approval of a pipeline promotion (four-eyes).
export type Action = "create" | "read" | "update" | "delete" | "approve";

export function allows(permissions: readonly Permission[], resource: string, action: Action): boolean {
  return permissions.some(
    (p) => (p.resource === "*" || p.resource === resource) && (p.action === "*" || p.action === action),
  );
}
