/**
 * A deployment's hold on a short lease once the bridge knows its controller is gone (bridge/deploy/blueGreen.ts,
 * issue 12 (j)): with the link to the control plane down, an open hold is released to the runtime that serves
 * after `leaseMs` instead of waiting as long as the control plane is away; the link back in time keeps it; a
 * release never runs beside a switch the control plane already sent; and the switch that follows a release drains
 * again first (never a switch without a hold) and carries the release's figures. Small fakes of the driver, its
 * front and the gate's Admin API, as in bounded-hold.test.ts; no wall-clock assertion (each wait is for an event).
 */
import { describe, expect, it } from "vitest";
import { BlueGreen } from "../../bridge/deploy/blueGreen.ts";

function fakes(opts: { slowActivateMs?: number } = {}) {
  const events: string[] = [];
  let gateMode = "active";
  let serving = "blue";
  const gate = () => ({ mode: gateMode, inFlight: 0, gates: 1, heldHttp: 0, mqtt: "off", counters: { entered: 0, exited: 0, expired: 0, heldMqtt: 0, heldHttp: 0, refusedHttp: 0, released: 0 } });
  const front = {
    url: "http://front", holding: false,
    hold: async () => { front.holding = true; events.push("front hold"); },
    release: async () => { front.holding = false; events.push("front release"); return 2; },
    setTarget: async (t: string | undefined) => { events.push(`front → ${t}`); },
    heldCount: async () => 2,
    counters: async () => ({ forwarded: 0, held: 2, refused: 0, serverErrors: 0, unanswered: 0 }),
  };
  const driver = {
    ensureFronts: async () => undefined,
    servingOf: async () => ({ runtimeId: serving, base: `http://${serving}` }),
    runtimeBase: async (id: string) => `http://${id}`,
    front: () => front,
    mqttFront: () => undefined,
    setServing: async (id: string) => { serving = id; events.push(`serving ${id}`); },
  };
  const admin = {
    gate: async (base: string, mode?: string) => {
      if (mode) {
        // The switch's activation of green: slow on demand, so a release can be made to race it.
        if (mode === "active" && base === "http://green" && opts.slowActivateMs) await sleep(opts.slowActivateMs);
        gateMode = mode;
        events.push(`gate ${base.slice(7)} ${mode}`);
      }
      return gate();
    },
    flowsRev: async () => undefined,
  };
  return { events, front, driver, admin };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!cond() && Date.now() - t0 < ms) await sleep(10);
}

describe("a hold while the link to the control plane is down", () => {
  it("is released to the serving runtime after the lease, long before the hold's bound, and reported", async () => {
    const f = fakes();
    const reported: string[] = [];
    const bg = new BlueGreen(f.driver as never, f.admin as never, false, { maxHoldMs: 600_000, leaseMs: 50, onHoldReleased: (_id, reason) => reported.push(reason) });
    await bg.setGate("inst", { mode: "drain", drainTimeoutMs: 1_000 });
    bg.controllerGone();
    await until(() => reported.length > 0);
    expect(reported[0]).toMatch(/hold released by the bridge .*the link to the control plane is down .* 2 HTTP request\(s\) released to blue/);
    expect(f.front.holding).toBe(false);
    expect(f.events.slice(-4)).toEqual(["gate blue active", "front → http://blue", "front release", "serving blue"]);
  });

  it("is kept when the link is back within the lease (a reconnect costs nothing)", async () => {
    const f = fakes();
    const reported: string[] = [];
    const bg = new BlueGreen(f.driver as never, f.admin as never, false, { maxHoldMs: 600_000, leaseMs: 5_000, onHoldReleased: (_id, reason) => reported.push(reason) });
    await bg.setGate("inst", { mode: "drain", drainTimeoutMs: 1_000 });
    bg.controllerGone();
    bg.controllerBack();
    // A hold opened while the link is down goes on the lease too; this one was opened with the link up.
    expect((bg as unknown as { holds: Map<string, { lease?: unknown }> }).holds.get("inst")?.lease).toBeUndefined();
    expect(f.front.holding).toBe(true);
    expect(reported).toEqual([]);
  });

  it("never runs beside a switch already under way: the switch ends the hold and there is nothing to release", async () => {
    const f = fakes({ slowActivateMs: 300 });
    const reported: string[] = [];
    const bg = new BlueGreen(f.driver as never, f.admin as never, false, { maxHoldMs: 600_000, leaseMs: 20, onHoldReleased: (_id, reason) => reported.push(reason) });
    await bg.setGate("inst", { mode: "drain", drainTimeoutMs: 1_000 });
    const switching = bg.switchRoute("inst", "blue", "green");
    bg.controllerGone(); // the link drops while the switch the control plane sent runs
    const result = await switching;
    await sleep(100); // past the lease: a release, had it started, would have begun
    await bg.releaseHold("inst", "lease"); // and one asked for now finds no hold
    expect(result).toMatchObject({ from: "blue", to: "green" });
    expect(reported).toEqual([]);
    expect(f.events.filter((e) => e === "serving blue")).toEqual([]);
    expect(f.events.at(-1)).not.toBe("gate blue drain");
  });

  it("the switch after a release drains blue again first and reports the release with its own figures", async () => {
    const f = fakes();
    const reported: string[] = [];
    const bg = new BlueGreen(f.driver as never, f.admin as never, false, { maxHoldMs: 600_000, leaseMs: 20, onHoldReleased: (_id, reason) => reported.push(reason) });
    await bg.setGate("inst", { mode: "drain", drainTimeoutMs: 1_000 });
    bg.controllerGone();
    await until(() => reported.length > 0);
    bg.controllerBack();
    const mark = f.events.length;
    const result = await bg.switchRoute("inst", "blue", "green");
    const after = f.events.slice(mark);
    // Held again before the hand-over: the front holds and blue's gate drains before green's gate opens.
    expect(after.indexOf("front hold")).toBeGreaterThanOrEqual(0);
    expect(after.indexOf("gate blue drain")).toBeGreaterThan(after.indexOf("front hold"));
    expect(after.indexOf("gate green active")).toBeGreaterThan(after.indexOf("gate blue drain"));
    expect(after).toContain("serving green");
    // The release's 2 HTTP requests (to blue) and the switch's 2 (to green): both holds in one count.
    expect(result.httpReleased).toBe(4);
  });

  it("a switch re-sent after it completed (its answer came late) holds nothing again and answers what it did", async () => {
    const f = fakes();
    const bg = new BlueGreen(f.driver as never, f.admin as never, false, { maxHoldMs: 600_000, leaseMs: 0 });
    await bg.setGate("inst", { mode: "drain", drainTimeoutMs: 1_000 });
    const first = await bg.switchRoute("inst", "blue", "green");
    const mark = f.events.length;
    const again = await bg.switchRoute("inst", "blue", "green");
    expect(f.events.slice(mark)).toEqual([]);
    expect(f.front.holding).toBe(false);
    // Not zeros: zeros would read as held work never replayed.
    expect(again).toEqual(first);
    expect(again.httpReleased).toBe(2);
  });
});
