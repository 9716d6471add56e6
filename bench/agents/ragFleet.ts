// The RAG benches' fleet: one instance per role created from the `rag-pipeline/<role>` blueprint
// through the API, then each one's front door once it runs.
import { eventually } from "../../test/harness/eventually.ts";
import type { FleetStack } from "../../test/harness/fleetStack.ts";

/** [instance name suffix, blueprint role, blueprintParams] */
export type RagRole = [string, string, Record<string, string>];

/** The API as the fleet's admin (the benches read loosely typed answers). */
export function apiCaller(fleet: FleetStack) {
  return async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${fleet.stack.apiUrl}${p}`, { method, headers: { authorization: `Bearer ${fleet.token}`, "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
    return (await res.json()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
}

/** Creates every role's instance, then waits until each runs with a front door. */
export async function createRagFleet(fleet: FleetStack, prefix: string, roles: RagRole[], runningWithinMs: number) {
  const call = apiCaller(fleet);
  const ids: Record<string, string> = {};
  const front: Record<string, string> = {};
  for (const [name, role, blueprintParams] of roles) {
    const created = await call("POST", "/api/instances", { name: `${prefix}-${name}`, clusterId: fleet.clusterId, blueprint: `rag-pipeline/${role}`, blueprintParams });
    if (!created.id) throw new Error(`create ${name}: ${JSON.stringify(created)}`);
    ids[name] = created.id;
  }
  for (const name of Object.keys(ids)) {
    front[name] = await eventually(async () => {
      const inst = await call("GET", `/api/instances/${ids[name]}`);
      return inst?.status === "running" && inst.endpoints?.front ? inst.endpoints.front as string : undefined;
    }, runningWithinMs);
  }
  return { ids, front, call };
}
