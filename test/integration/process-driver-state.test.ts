/**
 * The process driver's own state on disk and its port allocator: what must
 * hold when two commands run at once, when the bridge dies mid-write, and when
 * a state file is damaged. Real Node-RED processes; no wall-clock assertions.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { BridgeError } from "../../bridge/errors.ts";
import type { InstanceSpec } from "../../bridge/drivers/driver.ts";

// Below Linux's ephemeral range (32768+), so the OS does not hand these out to anyone else meanwhile.
const rangeStart = 20_000 + Math.floor(Math.random() * 9_000);
let tmp: string;
let stateDir: string;
const drivers: ProcessDriver[] = [];

const spec = (): InstanceSpec => ({
  id: randomUUID(), name: `st-${randomUUID().slice(0, 6)}`, flows: [], resources: {}, env: {},
  credentialSecret: "a-credential-secret-of-some-length",
});

const ADMIN_TOKEN = "process-driver-state-admin-token";

function driver(portRange?: [number, number], dir = stateDir): ProcessDriver {
  const d = new ProcessDriver({ stateDir: dir, adminToken: ADMIN_TOKEN, ...(portRange ? { portRange } : {}), restart: { maxQuickExits: 2, quickExitMs: 5_000, backoffMs: 100 } });
  drivers.push(d);
  return d;
}

/** The Node-RED release a runtime reports (Admin API /settings; "-git" inside a git checkout). */
async function nodeRedOf(base: string): Promise<string> {
  const res = await fetch(`${base}/settings`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  return ((await res.json()) as { version: string }).version;
}

const instanceFile = (id: string, dir = stateDir) => path.join(dir, id, "instance.json");
const saved = async (id: string, dir = stateDir) => JSON.parse(await fs.readFile(instanceFile(id, dir), "utf8")) as { port: number; frontPort: number; portB?: number; serving?: string };

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-pds-"));
  stateDir = path.join(tmp, "instances");
});

afterAll(async () => {
  for (const d of drivers) await d.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("process driver state", () => {
  it("a green started while other instances are created never gets one of their ports", async () => {
    // A range just big enough, picked from its low end: a port picked outside the allocator collides.
    const dir = path.join(tmp, "race");
    // Many saved (stopped) instances make every pick read for a while, so picks that are not serialised overlap.
    for (let i = 0; i < 400; i++) {
      await fs.mkdir(path.join(dir, `idle-${i}`), { recursive: true });
      await fs.writeFile(path.join(dir, `idle-${i}`, "instance.json"), JSON.stringify({ port: 1000 + i, frontPort: 2000 + i }));
    }
    const d = driver([rangeStart, rangeStart + 9], dir);
    const a = spec();
    await d.create(a);
    const others = [spec(), spec(), spec()];
    // Green first, so its pick is under way when the creates ask for ports (the order that raced).
    const green = d.startGreen(a.id);
    await new Promise((r) => setTimeout(r, 10));
    const settled = await Promise.allSettled([green, ...others.map((s) => d.create(s))]);
    const ports = [await saved(a.id, dir), ...(await Promise.all(others.map((s) => saved(s.id, dir))))].flatMap((s) => [s.port, s.frontPort, s.portB]).filter((p) => p !== undefined);
    expect(new Set(ports).size, `ports ${ports.join(", ")}`).toBe(9);
    expect(settled.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled", "fulfilled"]);
    for (const s of [a, ...others]) await d.destroy(s.id, { deleteData: true });
  }, 120_000);

  it("instance.json is replaced whole by a rename (a new file each write), never rewritten in place", async () => {
    const d = driver();
    const a = spec();
    await d.create(a);
    const before = await fs.stat(instanceFile(a.id));
    // Held open, the old file keeps its inode number: destroy writes instance.json too (desired "stopped"),
    // and a filesystem may hand a freed number to the next file, which would look like a write in place.
    const pinned = await fs.open(instanceFile(a.id), "r");
    await d.destroy(a.id); // data kept
    await d.create(a); // the same instance again: instance.json rewritten
    const after = await fs.stat(instanceFile(a.id));
    await pinned.close();
    expect(after.ino, "a write in place can be torn by a crash; writeFileAtomic renames a complete file over it").not.toBe(before.ino);
    expect(after.mode & 0o777).toBe(0o600);
    const leftovers = (await fs.readdir(path.dirname(instanceFile(a.id)))).filter((f) => f.endsWith(".tmp"));
    expect(leftovers).toEqual([]);
    await d.destroy(a.id, { deleteData: true });
  }, 120_000);

  it("each slot keeps its stack: after a runtime upgrade a restarted bridge starts the serving slot on the new one", async () => {
    const d = driver();
    const a = { ...spec(), stack: "4.1" };
    const created = await d.create(a);
    expect(created.stack).toEqual({ id: "4.1", nodeRed: expect.stringMatching(/^4\.1\.\d+$/) });
    expect(await nodeRedOf((await d.servingOf(a.id)).base)).toMatch(/^4\.1\./);
    const green = await d.startGreen(a.id, { stack: "5.0" });
    expect(green.stack).toEqual({ id: "5.0", nodeRed: expect.stringMatching(/^5\.0\.\d+$/) });
    expect(await nodeRedOf(green.base)).toBe(green.stack.nodeRed);
    await d.setServing(green.runtimeId);
    expect(await saved(a.id)).toMatchObject({ serving: "b", slotStacks: { a: "4.1", b: "5.0" } });
    await d.stop(a.id);

    const restarted = driver();
    await restarted.start(a.id);
    const serving = await restarted.servingOf(a.id);
    expect(serving.runtimeId).toBe(green.runtimeId);
    expect(await nodeRedOf(serving.base)).toBe(green.stack.nodeRed);
    await restarted.destroy(a.id, { deleteData: true });
  }, 180_000);

  it("an instance.json from before stacks runs 4.1; a stack the bridge does not have is refused before anything is written", async () => {
    const d = driver();
    const a = spec(); // no stack: what an older control plane sends
    expect((await d.create(a)).stack.id).toBe("4.1");
    await d.stop(a.id);
    const { slotStacks: _gone, spec: { stack: _alsoGone, ...oldSpec }, ...rest } = JSON.parse(await fs.readFile(instanceFile(a.id), "utf8"));
    await fs.writeFile(instanceFile(a.id), JSON.stringify({ ...rest, spec: oldSpec }));
    const restarted = driver();
    await restarted.start(a.id);
    expect(await nodeRedOf((await restarted.servingOf(a.id)).base)).toMatch(/^4\.1\./);
    await restarted.destroy(a.id, { deleteData: true });

    const b = { ...spec(), stack: "3.1" };
    await expect(d.create(b)).rejects.toMatchObject({ code: "unsupported", message: expect.stringMatching(/stack 3\.1 is not installed/) });
    await expect(fs.access(path.join(stateDir, b.id))).rejects.toThrow();
  }, 180_000);

  it("a corrupt instance.json is a state_corrupt error naming the file, and the file is left as it was", async () => {
    const d = driver();
    const a = spec();
    await d.create(a);
    await d.stop(a.id);
    await fs.writeFile(instanceFile(a.id), '{"spec": {"id": "trunc');
    const restarted = driver();
    for (const attempt of [() => restarted.start(a.id), () => restarted.create(a), () => restarted.deployFlows(a.id, [])]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BridgeError);
      expect((err as BridgeError).code).toBe("state_corrupt");
      expect((err as BridgeError).message).toContain(instanceFile(a.id));
    }
    expect(await fs.readFile(instanceFile(a.id), "utf8")).toBe('{"spec": {"id": "trunc');
    // An instance this bridge never had is something else: not_found.
    const unknown = await restarted.start(randomUUID()).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(BridgeError);
    expect((unknown as BridgeError).code).toBe("not_found");
    // The same codes as the kubernetes driver for the same failures (kubernetes-driver.test.ts).
    await expect(restarted.deployFlows(randomUUID(), [])).rejects.toMatchObject({ code: "not_found" });
    await expect(restarted.scale(randomUUID(), 2)).rejects.toMatchObject({ code: "unsupported" });
  }, 120_000);
});
