/**
 * A managed Node-RED does not compile Node-RED again at every start: the process driver gives its
 * Node-REDs Node's compile cache under the state dir (Node >= 22.1), which a running Node-RED
 * writes within seconds of its start (so a kill leaves it) and the next start reads (bench/nodered-start, docs/bridge.md "Start-up time").
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../harness/eventually.ts";
import { COMPILE_CACHE_DIR, compileCacheEnv, ProcessDriver } from "../../bridge/drivers/process/index.ts";
import { readRecord } from "../../bridge/drivers/process/runtimeRecord.ts";

let tmp: string;
let driver: ProcessDriver;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-pd-cache-"));
  await fs.writeFile(path.join(tmp, "package.json"), JSON.stringify({ name: "enclosing", type: "module" }));
  driver = new ProcessDriver({ stateDir: path.join(tmp, "instances"), restart: { maxQuickExits: 3, quickExitMs: 5_000, backoffMs: 100 } });
}, 60_000);

afterAll(async () => {
  await driver?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

async function filesUnder(dir: string): Promise<number> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).length;
}

describe("process driver: Node's compile cache", () => {
  it("is set only where Node knows it", () => {
    expect(compileCacheEnv("/s", "20.20.2")).toEqual({});
    expect(compileCacheEnv("/s", "22.0.0")).toEqual({});
    expect(compileCacheEnv("/s", "22.23.3")).toEqual({ NODE_COMPILE_CACHE: path.join("/s", COMPILE_CACHE_DIR) });
    expect(compileCacheEnv("/s", "v24.1.0")).toEqual({ NODE_COMPILE_CACHE: path.join("/s", COMPILE_CACHE_DIR) });
  });

  it("a running Node-RED writes its compiled code under the state dir within seconds (a kill -9 later keeps it), the next start runs with it, and it is never taken for an instance", async () => {
    const id = randomUUID();
    const cache = path.join(tmp, "instances", COMPILE_CACHE_DIR);
    await driver.create({ id, name: `cc-${id.slice(0, 6)}`, flows: [], resources: {}, env: {}, credentialSecret: "a-credential-secret-of-some-length" });
    const supported = Object.keys(compileCacheEnv("/", process.versions.node)).length > 0;
    if (supported) {
      // Written while it runs (not only at a clean exit): Node-RED's own modules, hundreds of files.
      await until("the compile cache", async () => (await filesUnder(cache)) > 100, { timeoutMs: 30_000, intervalMs: 250 });
    }
    // Killed like a host restart does, then started again: it runs (reading the cache).
    const pid = (await readRecord(path.join(tmp, "instances", id)))!.pid;
    process.kill(pid, "SIGKILL");
    await until("the restarted Node-RED", async () => {
      const h = await driver.health(id);
      const now = (await readRecord(path.join(tmp, "instances", id)))?.pid;
      return h.state === "running" && h.live && now !== undefined && now !== pid;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    if (!supported) expect(await filesUnder(cache)).toBe(0);
    // The cache directory has no instance.json: a restarted bridge resumes the instance and nothing else.
    await driver.close({ leaveRunning: true });
    driver = new ProcessDriver({ stateDir: path.join(tmp, "instances") });
    const report = await driver.resume();
    expect(report.adopted).toHaveLength(1);
    expect(report.adopted[0]).toContain(id);
    expect(report.failed).toEqual([]);
    await driver.destroy(id, { deleteData: true });
  }, 120_000);
});
