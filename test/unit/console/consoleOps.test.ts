/** The console's stores for clusters, alerts, stored versions and a rollback that keeps failing. */
import { describe, expect, it } from "vitest";
import { ALERT_KINDS, applyAlertEvent, isAlertEvent, paramsFromForm, ruleFields } from "../../../app/src/alerts/ruleKinds.ts";
import { attentionInWords, operatorActions, type Deployment } from "../../../app/src/deployments/timeline.ts";
import { applyClusterLink, applyClusterWarnings, bridgeCommand, isClusterLink, isClusterWarnings } from "../../../app/src/fleet/clusterEvents.ts";
import type { components } from "../../../protocol/api/client.ts";
import { VersionFlows } from "../../../app/src/instances/versionFlows.ts";
import { paramShapes } from "../../../core/alerts/kinds.ts";

type Cluster = components["schemas"]["ClusterState"];
const at = "2026-12-02T08:00:00.000Z";
const cluster = (over: Partial<Cluster> = {}): Cluster => ({
  id: "c1", name: "edge", driver: "process", labels: {}, status: "registered", lastSeenAt: null, warnings: [], createdAt: at, updatedAt: at,
  connected: false, bridgeVersion: null, connectedAt: null, ...over,
});

describe("cluster:link onto the clusters list", () => {
  it("a hello connects the row and sets its version; a close keeps the version it had", () => {
    const up = { event: "cluster:link" as const, data: { clusterId: "c1", state: "connected" as const, bridgeVersion: "0.1.0", driver: "process", timestamp: at } };
    expect(isClusterLink(up)).toBe(true);
    expect(isClusterLink({ event: "instance:status", data: {} })).toBe(false);
    const connected = applyClusterLink([cluster()], up);
    expect(connected.known).toBe(true);
    expect(connected.items[0]).toMatchObject({ connected: true, status: "connected", bridgeVersion: "0.1.0", connectedAt: at });
    const down = applyClusterLink(connected.items, { event: "cluster:link", data: { ...up.data, state: "disconnected", bridgeVersion: null } });
    expect(down.items[0]).toMatchObject({ connected: false, status: "disconnected", bridgeVersion: "0.1.0", connectedAt: null });
  });

  it("an unknown cluster asks for a re-read; the bridge line names the cluster, the origin and the secret file", () => {
    expect(applyClusterLink([cluster()], { event: "cluster:link", data: { clusterId: "c9", state: "connected", bridgeVersion: "1", driver: null, timestamp: at } }).known).toBe(false);
    expect(bridgeCommand("c1", "http://127.0.0.1:8787", "process", "edge.secret")).toBe("npm run bridge -- --cluster c1 --api http://127.0.0.1:8787 --secret-file edge.secret");
    expect(bridgeCommand("c1", "https://x", "kubernetes", "k.secret")).toMatch(/--driver kubernetes$/);
  });
});

describe("cluster:warnings onto the clusters list", () => {
  it("a report replaces the row's warnings, an empty one clears them; an unknown cluster asks for a re-read", () => {
    const warning = { code: "broker_queue_limit" as const, message: "the broker kept only 100 of 1200", detectedAt: at };
    const shown = { event: "cluster:warnings" as const, data: { clusterId: "c1", warnings: [warning], timestamp: at } };
    expect(isClusterWarnings(shown)).toBe(true);
    expect(isClusterWarnings({ event: "cluster:link", data: { clusterId: "c1", state: "connected" } })).toBe(false);
    const warned = applyClusterWarnings([cluster(), cluster({ id: "c2" })], shown);
    expect(warned.known).toBe(true);
    expect(warned.items.map((c) => c.warnings)).toEqual([[warning], []]);
    expect(applyClusterWarnings(warned.items, { ...shown, data: { ...shown.data, warnings: [] } }).items[0]!.warnings).toEqual([]);
    expect(applyClusterWarnings([cluster()], { ...shown, data: { ...shown.data, clusterId: "c9" } }).known).toBe(false);
  });
});

describe("alert rule forms", () => {
  it("offer every kind the API validates", () => {
    expect([...ALERT_KINDS].sort()).toEqual(Object.keys(paramShapes).sort());
  });

  it("send numbers as numbers, lists as lists, leave empty fields to the API's defaults, and keep what is not a number for the API to name", () => {
    const form: Record<string, string> = { metric: "cost", dailyBudget: "12.5", thresholdsPercent: "50, 90,100" };
    expect(paramsFromForm("ai_budget", (k) => form[k] ?? "")).toEqual({ metric: "cost", dailyBudget: 12.5, thresholdsPercent: [50, 90, 100] });
    expect(paramsFromForm("instance_not_ready", () => "")).toEqual({});
    expect(paramsFromForm("instance_not_ready", () => "soon")).toEqual({ minutes: "soon" });
    expect(ruleFields("bridge_disconnected")).toContain("params.minutes");
  });

  it("fleet:alert updates a listed alert and flags one not in the list", () => {
    const alert = { id: "a1", status: "firing", summary: "down", updatedAt: at };
    const event = { event: "fleet:alert", data: { alertId: "a1", ruleId: null, team: "t", kind: "instance_down", severity: "warning", subject: "s", subjectName: null, status: "acknowledged", summary: "down", timestamp: at } };
    expect(isAlertEvent(event)).toBe(true);
    expect(applyAlertEvent([alert], event as never).items[0]!.status).toBe("acknowledged");
    expect(applyAlertEvent([], event as never).unknown).toBe(true);
  });
});

describe("stored version flows", () => {
  it("reads each version once, and forgets a failed read", async () => {
    const reads: string[] = [];
    let fail = true;
    const store = new VersionFlows(async (id) => {
      reads.push(id);
      if (id === "v2" && fail) { fail = false; return { error: "down" }; }
      return { flows: [{ id }] };
    });
    expect(await store.pair("v1", "v2")).toEqual({ error: "down" });
    expect(await store.pair("v1", "v2")).toEqual({ before: [{ id: "v1" }], after: [{ id: "v2" }] });
    expect(await store.pair("v1", "v3")).toMatchObject({ before: [{ id: "v1" }] });
    expect(reads).toEqual(["v1", "v2", "v2", "v3"]);
  });
});

describe("a rollback that keeps failing", () => {
  const base = {
    id: "d1", instanceId: "i1", strategy: "blue-green", status: "in_progress", phase: "ROLLING_BACK", progress: 0.5, switched: true,
    history: [], metrics: { messagesHeld: 0, messagesReplayed: 0, messagesLost: 0, messagesDuplicated: 0, inFlightAtDrain: 0, stragglers: 0, phaseMs: {} },
    error: { code: "smoke_failed", message: "x" }, timeouts: null, fromVersionId: null, toVersionId: "v2", fromStack: null, toStack: null, toNodeRed: null, createdAt: at, completedAt: null,
  } as unknown as Deployment;
  const now = Date.parse(at);
  const retrying = (nextInMs: number): Deployment => ({
    ...base,
    attention: { state: "retrying", step: "rollback", attempts: 3, maxAttempts: null, lastError: "bridge gone", nextAttemptAt: new Date(now + nextInMs).toISOString(), since: at, message: "m" },
  });

  it("between attempts offers retry now and give up; while an attempt runs, only give up", () => {
    expect(operatorActions(retrying(5000), now)).toMatchObject({ retryRollback: true, giveUpRollback: true, rollback: false, promote: false });
    expect(operatorActions(retrying(-1000), now)).toMatchObject({ retryRollback: false, giveUpRollback: true });
    expect(operatorActions({ ...base, attention: null }, now)).toMatchObject({ retryRollback: false, giveUpRollback: false });
  });

  it("says what it is doing in words", () => {
    expect(attentionInWords(retrying(5000).attention!, now)).toBe("Retrying the rollback (attempt 3 failed; next attempt in 5 s).");
    expect(attentionInWords({ ...retrying(0).attention!, state: "waiting", step: "verify" }, now)).toMatch(/^Paused at the smoke checks/);
  });
});
