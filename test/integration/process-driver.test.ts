/** The process driver on real Node-RED processes: what an operator of an edge box would notice. */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../harness/eventually.ts";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { FlowsConflictError, MissingNodeTypesError } from "../../bridge/drivers/nodeRedAdmin.ts";
import { packNodePackage } from "../../bridge/nodePackage.ts";
import type { InstanceSpec, InstanceState } from "../../bridge/drivers/driver.ts";

let tmp: string;
let tarball: string;
let driver: ProcessDriver;
const events: Array<[string, InstanceState, string | undefined]> = [];

const spec = (extra: Partial<InstanceSpec> = {}): InstanceSpec => ({
  id: randomUUID(), name: `pd-${randomUUID().slice(0, 6)}`, flows: [], resources: {}, env: {},
  credentialSecret: "a-credential-secret-of-some-length", ...extra,
});

const httpFlow = (marker: string) => [
  { id: "t1", type: "tab", label: "api" },
  { id: "in1", type: "http in", z: "t1", url: "/echo", method: "get", wires: [["fn1"]] },
  { id: "fn1", type: "change", z: "t1", rules: [{ t: "set", p: "payload", pt: "msg", to: marker, tot: "str" }], wires: [["out1"]] },
  { id: "out1", type: "http response", z: "t1", statusCode: "200", wires: [] },
];


beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-pd-"));
  await fs.chmod(tmp, 0o755);
  // Like this repository's own .redforge/: instance dirs inside an ESM package.
  await fs.writeFile(path.join(tmp, "package.json"), JSON.stringify({ name: "enclosing", type: "module" }));
  tarball = await packNodePackage(path.join(tmp, "pkg"));
  // REDFORGE_TEST_NODE_RED=node-red-5 runs the suite on another installed stack (docs/stacks.md).
  const nodeRedBin = process.env.REDFORGE_TEST_NODE_RED ? path.resolve(`node_modules/${process.env.REDFORGE_TEST_NODE_RED}/red.js`) : undefined;
  driver = new ProcessDriver({ stateDir: path.join(tmp, "instances"), nodePackages: [tarball], restart: { maxQuickExits: 3, quickExitMs: 5_000, backoffMs: 100 }, nodeRedBin });
  driver.onStatus((id, state, reason) => events.push([id, state, reason]));
}, 60_000);

afterAll(async () => {
  await driver?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("process driver", () => {
  it("runs Node-RED with a token-guarded Admin API, the node package loaded, and flows deployed with type checks", async () => {
    const s = spec();
    const { endpoints } = await driver.create(s);
    expect((await fetch(endpoints.admin)).status).toBe(200);
    expect((await fetch(`${endpoints.admin}/settings`)).status).toBe(401);
    const health = await driver.health(s.id);
    expect(health).toMatchObject({ state: "running", live: true });
    expect(health.rssBytes).toBeGreaterThan(10_000_000);

    const { rev } = await driver.deployFlows(s.id, httpFlow("v1"));
    expect(await eventually(async () => {
      const res = await fetch(`${endpoints.admin}/echo`);
      return res.status === 200 ? res.text() : undefined;
    })).toBe("v1");
    await expect(driver.deployFlows(s.id, httpFlow("v2"), { rev: "stale-rev" })).rejects.toBeInstanceOf(FlowsConflictError);
    const bad = [...httpFlow("v3"), { id: "x1", type: "no-such-node", z: "t1", wires: [] }];
    const err = await driver.deployFlows(s.id, bad, { rev }).catch((e) => e);
    expect(err).toBeInstanceOf(MissingNodeTypesError);
    expect(err.message).toContain("no-such-node");
    expect(await (await fetch(`${endpoints.admin}/echo`)).text()).toBe("v1");

    // The RedForge node package: its gate type is installed and /healthz answers.
    const nodes = await fetch(`${endpoints.admin}/nodes`, { headers: { Accept: "application/json", Authorization: "Bearer wrong" } });
    expect(nodes.status).toBe(401);
    expect((await driver.health(s.id)).ready).toBe(true);
    await driver.destroy(s.id, { deleteData: true });
  }, 60_000);

  it("stop frees the port, start brings the same flows back behind the same front URL, and one replica is all it runs", async () => {
    const s = spec({ flows: httpFlow("kept") });
    const { endpoints } = await driver.create(s);
    expect(endpoints.front).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(endpoints.front).not.toBe(endpoints.admin);
    expect(await eventually(async () => {
      const res = await fetch(`${endpoints.front}/echo`);
      return res.status === 200 ? res.text() : undefined;
    })).toBe("kept");
    await driver.stop(s.id);
    await expect(fetch(endpoints.admin)).rejects.toThrow();
    // The front door stays and says why nothing answers.
    const closed = await fetch(`${endpoints.front}/echo`);
    expect(closed.status).toBe(503);
    expect(((await closed.json()) as any).error.code).toBe("instance_unavailable");
    expect((await driver.health(s.id)).state).toBe("stopped");
    await driver.start(s.id);
    expect(await eventually(async () => {
      const res = await fetch(`${endpoints.admin}/echo`);
      return res.status === 200 ? res.text() : undefined;
    })).toBe("kept");
    expect(await (await fetch(`${endpoints.front}/echo`)).text()).toBe("kept");
    await expect(driver.scale(s.id, 2)).rejects.toThrow(/one replica/);
    await driver.scale(s.id, 0);
    expect((await driver.health(s.id)).state).toBe("stopped");
    await driver.destroy(s.id);
    // Data kept unless asked: the userDir with its flows is still there.
    expect(JSON.parse(await fs.readFile(path.join(tmp, "instances", s.id, "flows.json"), "utf8"))).toHaveLength(4);
  }, 60_000);

  it("a Node-RED that exits at boot is retried, then reported failed with its last words", async () => {
    const s = spec({ env: { REDFORGE_FAIL_AT_BOOT: "settings exploded on purpose" } });
    await expect(driver.create(s)).rejects.toThrow();
    const failed = events.find(([id, state]) => id === s.id && state === "failed");
    expect(failed?.[2]).toMatch(/3 times within 5 s/);
    expect(failed?.[2]).toContain("settings exploded on purpose");
  }, 60_000);

  it("a restarted bridge can start an instance an earlier one created", async () => {
    const s = spec({ flows: httpFlow("again") });
    const { endpoints } = await driver.create(s);
    await driver.stop(s.id);
    const second = new ProcessDriver({ stateDir: path.join(tmp, "instances") });
    try {
      await second.start(s.id);
      expect(await eventually(async () => {
        const res = await fetch(`${endpoints.admin}/echo`);
        return res.status === 200 ? res.text() : undefined;
      })).toBe("again");
    } finally {
      await second.close();
    }
  }, 60_000);
});
