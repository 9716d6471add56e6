import { describe, expect, it } from "vitest";
import { applyStatus, mergeInstance, type InstanceSummary } from "../../../app/src/fleet/fleetEvents.ts";

const t = (s: number) => new Date(Date.UTC(2026, 11, 2, 8, 0, s)).toISOString();

describe("fleet status events onto the table", () => {
  const row = (id: string, over: Partial<InstanceSummary> = {}): InstanceSummary => ({
    id, name: id, clusterId: "c1", team: "default", status: "starting", statusReason: null, desiredState: "running",
    resources: {}, replicas: 1, endpoints: {}, labels: {}, stack: "5.0", nodeRedVersion: null, createdAt: t(0), updatedAt: t(1), ...over,
  });
  const ev = (instanceId: string, status: string, at: number, extra: object = {}) =>
    ({ event: "instance:status" as const, data: { instanceId, clusterId: "c1", status, timestamp: t(at), ...extra } });

  it("updates the row in place, drops a destroyed one, and asks for a re-read for an instance it has not seen", () => {
    const items = [row("a"), row("b")];
    const running = applyStatus(items, ev("a", "running", 5, { reason: null }));
    expect(running.items.map((i) => i.status)).toEqual(["running", "starting"]);
    expect(running.unknownInstance).toBe(false);
    expect(applyStatus(running.items, ev("b", "stopped", 6, { desiredState: "destroyed" })).items.map((i) => i.id)).toEqual(["a"]);
    expect(applyStatus(items, ev("new", "pending", 6)).unknownInstance).toBe(true);
  });

  it("an instance that comes up is re-read for its endpoints (events carry only the status), and merged in its row's shape", () => {
    const items = [row("a")];
    expect(applyStatus(items, ev("a", "running", 5)).refreshInstance).toBe("a");
    expect(applyStatus([row("a", { status: "running" })], ev("a", "running", 6)).refreshInstance).toBe("a");
    expect(applyStatus([row("a", { status: "running", endpoints: { admin: "x" } })], ev("a", "running", 6)).refreshInstance).toBeNull();
    const detail = { ...row("a", { status: "running", endpoints: { admin: "http://127.0.0.1:1880" } }), flows: [], env: {}, secretNames: [] };
    const merged = mergeInstance(items, detail)[0]!;
    expect(merged.endpoints).toEqual({ admin: "http://127.0.0.1:1880" });
    expect(Object.keys(merged).sort()).toEqual(Object.keys(row("a")).sort());
  });
});
