/**
 * A deployment's hold is bounded when the control plane is away (bridge/deploy/blueGreen.ts): a hold
 * that gets no command for `maxHoldMs` is released by the bridge itself, back to the runtime that
 * served (as a rollback before the switch), and reported; a command for the instance re-arms the bound.
 * The steps run on small fakes of the driver, its front and the gate's Admin API.
 */
import { describe, expect, it } from "vitest";
import { BlueGreen } from "../../bridge/deploy/blueGreen.ts";

function fakes() {
  const events: string[] = [];
  let gateMode = "active";
  const gate = () => ({ mode: gateMode, inFlight: 0, gates: 1, heldHttp: 0, mqtt: "off", counters: { entered: 0, exited: 0, expired: 0, heldMqtt: 0, heldHttp: 0, refusedHttp: 0, released: 0 } });
  const front = {
    url: "http://front", holding: false,
    hold: async () => { front.holding = true; events.push("front hold"); },
    release: async () => { front.holding = false; events.push("front release"); return 3; },
    setTarget: async (t: string | undefined) => { events.push(`front → ${t}`); },
    heldCount: async () => 3,
    counters: async () => ({ forwarded: 0, held: 3, refused: 0, serverErrors: 0, unanswered: 0 }),
  };
  const driver = {
    ensureFronts: async () => undefined,
    servingOf: async () => ({ runtimeId: "blue", base: "http://blue" }),
    runtimeBase: async (id: string) => `http://${id}`,
    front: () => front,
    mqttFront: () => undefined,
    setServing: async (id: string) => { events.push(`serving ${id}`); },
  };
  const admin = {
    gate: async (_base: string, mode?: string) => { if (mode) { gateMode = mode; events.push(`gate ${mode}`); } return gate(); },
    flowsRev: async () => undefined,
  };
  return { events, front, driver, admin };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a hold the control plane does not end", () => {
  it("is released to the runtime that served after maxHoldMs without a command, and reported", async () => {
    const f = fakes();
    const reported: string[] = [];
    const bg = new BlueGreen(f.driver as never, f.admin as never, false, { maxHoldMs: 100, onHoldReleased: (_id, reason) => reported.push(reason) });
    await bg.setGate("inst", { mode: "drain", drainTimeoutMs: 1_000 });
    expect(f.front.holding).toBe(true);
    const t0 = Date.now();
    while (!reported.length && Date.now() - t0 < 10_000) await sleep(20);
    expect(reported[0]).toMatch(/hold released by the bridge .* 3 HTTP request\(s\) released to blue, which serves again/);
    expect(f.front.holding).toBe(false);
    expect(f.events).toEqual(expect.arrayContaining(["gate drain", "gate active", "front → http://blue", "front release", "serving blue"]));
  });

  it("is not released while commands keep coming, and not after the switch ended it", async () => {
    const f = fakes();
    const reported: string[] = [];
    // A bound far above the pauses below, so a slow machine cannot make this test lie.
    const bg = new BlueGreen(f.driver as never, f.admin as never, false, { maxHoldMs: 10_000, onHoldReleased: (_id, reason) => reported.push(reason) });
    await bg.setGate("inst", { mode: "drain", drainTimeoutMs: 1_000 });
    for (let i = 0; i < 3; i++) {
      await sleep(50);
      await bg.smoke("inst", { runtime: "green", kind: "analysis", maxErrorRate: 1 } as never).catch(() => undefined);
    }
    expect((bg as unknown as { holds: Map<string, unknown> }).holds.size).toBe(1);
    await bg.switchRoute("inst", "blue", "green");
    // Handed over: no bound left to fire.
    expect((bg as unknown as { holds: Map<string, unknown> }).holds.size).toBe(0);
    expect(reported).toEqual([]);
  });
});
