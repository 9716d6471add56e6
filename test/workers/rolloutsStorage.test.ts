/**
 * A 1,000-instance rollout's state fits Durable Object storage whatever its
 * instances carry: a 500-instance wave whose instances all have a reason is
 * stored 100 instances to a value, each below the 128 KiB per value of
 * key-value-backed storage (the SQLite-backed storage here accepted the whole
 * 386 KB wave as one value, but every tick rewrote it), and a restarted
 * RolloutRun loads every instance back as it was.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RolloutInit } from "../../core/rollouts/types.ts";
import type { RolloutRun } from "../../durable/rolloutRun/index.ts";
import type { RunState } from "../../durable/rolloutRun/state.ts";

const VALUE_LIMIT = 128 * 1024;

function init(n: number): RolloutInit {
  const ids = Array.from({ length: n }, () => crypto.randomUUID());
  const cuts = [1, Math.ceil(n / 10), Math.ceil(n / 2), n];
  return {
    id: crypto.randomUUID(), selector: "bench=storage", description: "storage test", flows: [{ id: "t1", type: "tab" }], flowsDigest: "x".repeat(64),
    versionId: null,
    // An approval pause: wave 1 (an instance that does not exist: skipped) settles and the rollout waits; nothing else runs.
    plan: { waves: [1, "10%", "50%", "100%"], parallelism: 50, pause: { kind: "approval" }, failureBudget: { maxFailedInstances: 0 }, onFailure: "rollback_wave", lateJoiners: "ignore" },
    deployment: { strategy: "blue-green", drainTimeoutSeconds: 30, analysisSeconds: 0, maxErrorRate: 0.01, rollbackWindowSeconds: 0, holdDuring: "deploy" },
    waves: cuts.map((end, i) => ids.slice(i === 0 ? 0 : cuts[i - 1], end)), targets: cuts,
    createdBy: null, createdAt: new Date().toISOString(),
  };
}

describe("rollout storage at fleet scale", { timeout: 120_000 }, () => {
  it("a 500-instance wave whose instances all carry a long reason is stored in values under 128 KiB and loads back whole after a restart", async () => {
    const plan = init(1000);
    const stub = env.ROLLOUTS.get(env.ROLLOUTS.idFromName(plan.id));
    const started = await stub.start(plan);
    expect(started.summary.total).toBe(1000);

    const reason = `start attempt 6 failed (${"timeout exceeded when trying to connect ".repeat(12)}); trying again`;
    await runInDurableObject(stub, async (obj: RolloutRun, state) => {
      const o = obj as unknown as { load(): Promise<RunState>; store(s: RunState, waves: Iterable<number>): Promise<void> };
      const s = await o.load();
      for (const i of s.waves[3]!.instances) Object.assign(i, { reason, code: "start_failed", attempts: 6, retryAt: Date.now() + 32_000, deploymentId: crypto.randomUUID(), fromVersionId: crypto.randomUUID() });
      // ~330 KB for this one wave: one value would be refused.
      expect(JSON.stringify(s.waves[3]!.instances).length).toBeGreaterThan(2 * VALUE_LIMIT);
      await o.store(s, [3]);
      const stored = await state.storage.list({ prefix: "wave:" });
      for (const [key, value] of stored) expect(JSON.stringify(value).length, key).toBeLessThan(VALUE_LIMIT);
      expect([...stored.keys()].filter((k) => k.startsWith("wave:3:"))).toHaveLength(5);
    });

    // Restart the object: only storage remains.
    await runInDurableObject(stub, (_obj, state) => { state.abort("test: restart"); }).catch(() => {});
    const loaded = await env.ROLLOUTS.get(env.ROLLOUTS.idFromName(plan.id)).state();
    expect(loaded!.waves.map((w) => w.instances.length)).toEqual([1, 99, 400, 500]);
    expect(loaded!.waves[3]!.instances.map((i) => i.instanceId)).toEqual(plan.waves[3]);
    expect(loaded!.waves[3]!.instances.every((i) => i.reason === reason && i.code === "start_failed")).toBe(true);
    expect(loaded!.waves[1]!.instances.every((i) => i.status === "pending")).toBe(true);
  });
});
