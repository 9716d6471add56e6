/**
 * The kubernetes driver's shared context store, laid out as in the pods:
 * the ConfigMap carries the store's source next to the seed flows, the URL is
 * plain env and the token comes from the instance's Secret. Two real Node-RED
 * processes stand in for blue's and green's pods (same instance id, their own
 * userDirs): what a flow writes to flow context in store `shared` on one is
 * read on the other.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import { freePort } from "../../dev/ports.ts";
import { buildInstanceManifests } from "../../bridge/drivers/kubernetes/manifests.ts";
import { renderSettings } from "../../bridge/drivers/kubernetes/settings.ts";
import { CONTEXT_STORE_FILE } from "../../bridge/drivers/sharedContextModule.ts";
import { redisServerAvailable, startUpstashStandIn, type UpstashStandIn } from "../harness/redisServer.ts";
import { until } from "../harness/eventually.ts";

const TOKEN = "k8s-shared-context-admin-token";
const redJs = createRequire(import.meta.url).resolve("node-red/red.js");
const INSTANCE = randomUUID();

const flows = [
  { id: "sc-tab", type: "tab", label: "shared" },
  { id: "set-in", type: "http in", z: "sc-tab", url: "/set", method: "get", wires: [["set-fn"]] },
  { id: "set-fn", type: "function", z: "sc-tab", outputs: 1, wires: [["set-out"]],
    func: `flow.set("n", Number(msg.req.query.v), "shared", (err) => { msg.payload = err ? String(err) : "ok"; node.send(msg); });\nreturn null;` },
  { id: "set-out", type: "http response", z: "sc-tab", statusCode: "", wires: [] },
  { id: "get-in", type: "http in", z: "sc-tab", url: "/get", method: "get", wires: [["get-fn"]] },
  { id: "get-fn", type: "function", z: "sc-tab", outputs: 1, wires: [["get-out"]],
    func: `flow.get("n", "shared", (err, v) => { msg.payload = err ? { error: String(err) } : { v: v === undefined ? null : v }; node.send(msg); });\nreturn null;` },
  { id: "get-out", type: "http response", z: "sc-tab", statusCode: "", wires: [] },
];

interface Running { child: ChildProcess; base: string; output: () => string }

describe.skipIf(!redisServerAvailable)("kubernetes pods share flow context through the shared store", () => {
  let redis: UpstashStandIn;
  let dir: string;
  const running: Running[] = [];

  beforeAll(async () => {
    redis = await startUpstashStandIn();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-k8s-context-"));
  }, 60_000);

  afterAll(async () => {
    for (const r of running) {
      if (r.child.exitCode === null) {
        const exited = new Promise((res) => r.child.once("exit", res));
        r.child.kill("SIGTERM");
        await exited;
      }
    }
    await redis?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  /** One pod: the ConfigMap's files in its seed dir, settings.js in its userDir, env as the StatefulSet and Secret give it. */
  async function pod(color: string, configMap: Record<string, string>, env: Record<string, string>): Promise<Running> {
    const userDir = path.join(dir, color, "data");
    const seedDir = path.join(dir, color, "seed");
    await fs.mkdir(userDir, { recursive: true });
    await fs.mkdir(seedDir, { recursive: true });
    for (const [file, text] of Object.entries(configMap)) await fs.writeFile(path.join(seedDir, file), text);
    // The manifests render for /data and /etc/redforge; here the same template with this pod's paths.
    await fs.writeFile(path.join(userDir, "settings.js"), renderSettings({ userDir, seedDir, port: 1880 }));
    const port = await freePort();
    let out = "";
    const child = spawn(process.execPath, [redJs, "--userDir", userDir, "--port", String(port), "-D", "uiHost=127.0.0.1", "flows.json"], {
      env: { PATH: process.env.PATH ?? "", HOME: userDir, ...env }, stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (c) => (out += c));
    child.stderr!.on("data", (c) => (out += c));
    const r = { child, base: `http://127.0.0.1:${port}`, output: () => out };
    running.push(r);
    await until(`${color} to serve /get`, async () => (await fetch(`${r.base}/get`)).status === 200, {
      timeoutMs: 60_000, explain: () => out, failIf: () => (child.exitCode !== null ? `Node-RED exited ${child.exitCode}` : undefined),
    });
    return r;
  }

  it("the manifests carry the store (ConfigMap), its URL (env) and token (Secret); blue's write is green's read", async () => {
    const spec = { id: INSTANCE, name: "shared-ctx", flows, resources: {}, env: {}, credentialSecret: "a-credential-secret-of-some-length" };
    const m = buildInstanceManifests(spec, {
      namespace: "redforge", clusterId: randomUUID(), image: "nodered/node-red:4.1.15", dataSize: "1Gi", adminToken: TOKEN, color: "blue",
      contextStore: { url: redis.url, token: redis.token },
    });
    const data = m.configMap.data!;
    expect(Object.keys(data).sort()).toEqual(["flows.json", CONTEXT_STORE_FILE, "settings.js"].sort());
    expect(JSON.stringify(data)).not.toContain(redis.token);
    expect(m.secret.stringData).toMatchObject({ REDFORGE_CONTEXT_TOKEN: redis.token });
    const container = m.statefulSet(1).spec!.template.spec!.containers[0]!;
    expect(container.env).toContainEqual({ name: "REDFORGE_CONTEXT_URL", value: redis.url });

    const configMap = { "flows.json": data["flows.json"]!, [CONTEXT_STORE_FILE]: data[CONTEXT_STORE_FILE]! };
    const env = (runtime: string) => ({
      REDFORGE_ADMIN_TOKEN: TOKEN, NODE_RED_CREDENTIAL_SECRET: "cred", REDFORGE_INSTANCE_ID: INSTANCE, REDFORGE_RUNTIME_ID: runtime,
      REDFORGE_CONTEXT_URL: redis.url, REDFORGE_CONTEXT_TOKEN: redis.token,
    });
    const blue = await pod("blue", configMap, env(`${INSTANCE}-blue`));
    const green = await pod("green", configMap, env(`${INSTANCE}-green`));
    expect(await (await fetch(`${blue.base}/set?v=42`)).text()).toBe("ok");
    expect(await (await fetch(`${green.base}/get`)).json()).toEqual({ v: 42 });
    expect(await (await fetch(`${green.base}/set?v=43`)).text()).toBe("ok");
    expect(await (await fetch(`${blue.base}/get`)).json()).toEqual({ v: 43 });
  }, 180_000);
});
