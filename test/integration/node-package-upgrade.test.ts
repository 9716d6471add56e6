/**
 * The node package upgrade path on the process driver, with real Node-RED: an
 * instance created with an older version of the RedForge node package gets
 * the bridge's newer one at its next blue-green deployment. Green's slot
 * still holds the old package from an earlier deployment, so Node-RED loads
 * the old code and answers the upload with an install it cannot load without
 * a restart; the driver restarts green (it serves nothing yet), the new
 * version and its node types are loaded, and flows using them deploy there.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { AdminApi, MissingNodeTypesError } from "../../bridge/drivers/nodeRedAdmin.ts";
import { loadedVersion, tarballPackage } from "../../bridge/drivers/nodePackageInstall.ts";
import { NODE_PACKAGE_DIR, packNodePackage } from "../../bridge/nodePackage.ts";
import type { InstanceSpec } from "../../bridge/drivers/driver.ts";

let tmp: string;
let oldTarball: string;
let newTarball: string;
const drivers: ProcessDriver[] = [];
const logs: string[] = [];
const ADMIN_TOKEN = "node-package-upgrade-admin-token";
const admin = new AdminApi(ADMIN_TOKEN, { deployMs: 30_000, probeMs: 10_000 });
const MODULE = "@redforge/node-red-contrib-redforge";

const policyFlow = [
  { id: "up-tab", type: "tab", label: "uses a node only the new version has" },
  { id: "up-policy", type: "redforge-model-policy", z: "up-tab", name: "approved model?", wires: [[], []] },
];

function driver(tarball: string): ProcessDriver {
  const nodeRedBin = process.env.REDFORGE_TEST_NODE_RED ? path.resolve(`node_modules/${process.env.REDFORGE_TEST_NODE_RED}/red.js`) : undefined;
  const d = new ProcessDriver({
    stateDir: path.join(tmp, "instances"), nodePackages: [tarball], adminToken: ADMIN_TOKEN, nodeRedBin,
    restart: { maxQuickExits: 3, quickExitMs: 5_000, backoffMs: 100 }, log: (_id, line) => logs.push(line),
  });
  drivers.push(d);
  return d;
}

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-pkg-upgrade-"));
  await fs.chmod(tmp, 0o755);
  newTarball = await packNodePackage(path.join(tmp, "new"));
  // The "old" release: the same package one version back, without the agent nodes.
  const oldDir = path.join(tmp, "old-src");
  execFileSync("cp", ["-r", NODE_PACKAGE_DIR, oldDir]);
  const pkg = JSON.parse(await fs.readFile(path.join(oldDir, "package.json"), "utf8"));
  pkg.version = "0.0.1";
  delete pkg["node-red"].nodes["redforge-agents"];
  await fs.writeFile(path.join(oldDir, "package.json"), JSON.stringify(pkg, null, 2));
  oldTarball = await packNodePackage(path.join(tmp, "old"), oldDir);
}, 120_000);

afterAll(async () => {
  for (const d of drivers) await d.close().catch(() => undefined);
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("node package upgrade", () => {
  it("reads name and version from a tarball", async () => {
    expect(await tarballPackage(oldTarball)).toEqual({ name: MODULE, version: "0.0.1" });
    const current = JSON.parse(await fs.readFile(path.join(NODE_PACKAGE_DIR, "package.json"), "utf8")).version;
    expect(await tarballPackage(newTarball)).toEqual({ name: MODULE, version: current });
    expect(current).not.toBe("0.0.1");
  });

  it("an instance on the old package gets the new one at its next blue-green deployment", async () => {
    const spec: InstanceSpec = { id: randomUUID(), name: `upg-${randomUUID().slice(0, 6)}`, flows: [], resources: {}, env: {}, credentialSecret: "a-credential-secret-of-some-length" };
    const before = driver(oldTarball);
    const created = await before.create(spec);
    expect(await loadedVersion(admin, created.endpoints.admin, MODULE)).toEqual({ version: "0.0.1" });
    // An earlier deployment on the old bridge: its green (slot b) installed the old package too.
    const oldGreen = await before.startGreen(spec.id);
    expect(await loadedVersion(admin, oldGreen.base, MODULE)).toEqual({ version: "0.0.1" });
    await before.stopRuntime(oldGreen.runtimeId);
    await expect(before.deployFlowsTo((await before.servingOf(spec.id)).runtimeId, policyFlow)).rejects.toBeInstanceOf(MissingNodeTypesError);
    // The bridge is upgraded (restart with a newer node package); blue keeps running meanwhile.
    await before.close({ leaveRunning: true });

    const after = driver(newTarball);
    const blue = await after.servingOf(spec.id);
    expect(await loadedVersion(admin, blue.base, MODULE), "blue is not restarted under traffic").toEqual({ version: "0.0.1" });
    const { version } = await tarballPackage(newTarball);
    const green = await after.startGreen(spec.id);
    expect(await loadedVersion(admin, green.base, MODULE)).toEqual({ version });
    expect(logs.some((l) => l.includes("restarted to load") && l.includes(path.basename(newTarball)))).toBe(true);
    await after.deployFlowsTo(green.runtimeId, policyFlow);
    await after.setServing(green.runtimeId);
    await after.stopRuntime(blue.runtimeId);
    expect(await loadedVersion(admin, (await after.servingOf(spec.id)).base, MODULE)).toEqual({ version });
  }, 240_000);
});
