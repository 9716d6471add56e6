/**
 * A fake kubelet + StatefulSet controller + kube-proxy for FakeKubeApi: every
 * pod in the store becomes a REAL Node-RED process on this machine, and every
 * Service a local TCP proxy that picks a ready pod matching its selector per
 * connection. With it the kubernetes driver runs end to end without a cluster.
 *
 * What it models (and what it does not):
 * - StatefulSet controller: simulateStatefulSets() each tick (claims + pods per ordinal);
 *   EndpointSlice controller: simulateEndpointSlices() (one slice per Service).
 * - Volumes: a claim (volumeClaimTemplate mount `<tpl>` → claim `<tpl>-<pod>`, or a
 *   persistentVolumeClaim volume) is `<dir>/claims/<claim>`, kept across pod
 *   restarts and removed once the claim is gone from the store and no process
 *   uses it. configMap/secret volumes are written per pod at each container start;
 *   `subPath` file mounts are written to the matching path inside the enclosing mount.
 * - Container paths: settings.js files are rewritten (mountPath JSON string
 *   literals → local dirs, `uiPort: <containerPort>` → a free local port, plus
 *   `module.exports.uiHost = "127.0.0.1"`). Other files are copied verbatim.
 *   The userDir is the mount at /data (the official image's `--userDir /data`).
 * - Status: Pending until spawned, Running + Ready=False, Ready=True once
 *   `GET /` answers 200 (the manifests' readiness probe); podIP 127.0.0.1. An
 *   exit while the pod exists bumps restartCount and restarts after ~1 s (no
 *   CrashLoopBackOff). No liveness probe: a hung process stays Ready.
 * - Pod gone from the store → SIGTERM, SIGKILL after 5 s; when Node-RED exits
 *   (for any reason) the rest of its process group is killed, as a container's
 *   end takes every process in it. A pod re-created
 *   under the same name (new uid) waits until the old process exited.
 * - Service proxy: selector read per NEW connection (existing connections stay
 *   on their pod, like conntrack); no ready endpoint → the socket is destroyed.
 *   Only `spec.selector` is used (no ports/targetPort mapping: the pod's one port).
 * - One namespace per kubelet; no resource limits, no securityContext, no probes but readiness.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { NODE_RED_CLI } from "../../bridge/drivers/process/nodeRedProcess.ts";
import { freePort } from "../../dev/ports.ts";
import type { FakeKubeApi, KubeObject } from "./fakeKubeApi.ts";
import { simulateEndpointSlices, simulateStatefulSets } from "./fakeKubeControllers.ts";

export interface FakeKubelet {
  /** For KubernetesDriverOptions.adminUrl: the URL of the Service's stand-in ClusterIP (a TCP proxy per Service). */
  adminUrl: (t: { name: string; namespace: string }) => Promise<string>;
  /** http://127.0.0.1:<port> of the TCP proxy standing in for Service `name` (created lazily, one per Service, reused). */
  serviceUrl(name: string): Promise<string>;
  /** Pod names whose Node-RED process is alive. */
  running(): string[];
  /** Local port of a pod's Node-RED, while it runs. */
  podPort(pod: string): number | undefined;
  close(): Promise<void>;
}

export interface FakeKubeletOptions {
  namespace: string;
  /** Holds claims/<claim> (persistent) and pods/<pod> (per-pod volumes). */
  dir: string;
  log?: (line: string) => void;
  tickMs?: number;
}

/** As the process driver: Node-RED gets only these from this process's environment. */
const PASSED_ENV = ["PATH", "LANG", "TZ", "NODE_EXTRA_CA_CERTS"];
/** The official image's entrypoint runs `red.js --userDir /data`. */
const CONTAINER_USER_DIR = "/data";
const CONTAINER_NAME = "node-red";
const RESTART_DELAY_MS = 1_000;
const KILL_AFTER_MS = 5_000;

interface Mount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}

interface Container {
  name: string;
  image?: string;
  ports?: Array<{ containerPort: number }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } }>;
  envFrom?: Array<{ secretRef?: { name: string; optional?: boolean }; configMapRef?: { name: string; optional?: boolean }; prefix?: string }>;
  volumeMounts?: Mount[];
}

interface Volume {
  name: string;
  configMap?: { name: string; items?: Array<{ key: string; path: string }> };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  persistentVolumeClaim?: { claimName: string };
  emptyDir?: object;
}

interface PodProc {
  name: string;
  uid: string;
  child?: ChildProcess;
  port?: number;
  /** Materialising volumes / picking a port / spawning. */
  launching: boolean;
  ready: boolean;
  restarts: number;
  /** Earliest time of the next launch (after an exit or a failed launch). */
  notBefore: number;
  startedAt?: string;
  lastTerminated?: { exitCode: number; signal?: string; reason: string; startedAt?: string; finishedAt: string };
  /** Pod gone: being killed; removed from the map once exited. */
  stopping: boolean;
  claims: string[];
  probing: boolean;
  launchError?: string;
}

/** Something the pod waits for (its claim, ConfigMap, Secret): retried next tick, not after the restart delay. */
class NotYet extends Error {}

export async function startFakeKubelet(api: FakeKubeApi, opts: FakeKubeletOptions): Promise<FakeKubelet> {
  const { namespace } = opts;
  const log = opts.log ?? (() => {});
  const tickMs = opts.tickMs ?? 100;
  const claimsDir = path.join(opts.dir, "claims");
  const podsDir = path.join(opts.dir, "pods");
  await fs.mkdir(claimsDir, { recursive: true });
  await fs.mkdir(podsDir, { recursive: true });

  const procs = new Map<string, PodProc>();
  const exits = new Map<PodProc, Promise<void>>();
  const knownClaims = new Set<string>();
  const proxies = new Map<string, Promise<{ server: net.Server; url: string }>>();
  const sockets = new Set<net.Socket>();
  const roundRobin = new Map<string, number>();
  let closed = false;

  // ---- kubelet: one container per pod ----

  const launch = async (p: PodProc, pod: KubeObject): Promise<void> => {
    p.launching = true;
    try {
      const spec = pod.spec ?? {};
      const containers: Container[] = spec.containers ?? [];
      const c = containers.find((x) => x.name === CONTAINER_NAME) ?? containers[0];
      if (!c) throw new Error("pod has no container");
      const volumes = new Map<string, Volume>(((spec.volumes ?? []) as Volume[]).map((v) => [v.name, v]));
      const podDir = path.join(podsDir, p.name);
      const mounts = [...(c.volumeMounts ?? [])];
      const claims: string[] = [];

      // Directory mounts first: container path → local dir.
      const dirs = new Map<string, string>();
      for (const m of mounts.filter((x) => !x.subPath)) {
        const vol = volumes.get(m.name);
        if (!vol || vol.persistentVolumeClaim) {
          const claim = vol?.persistentVolumeClaim?.claimName ?? `${m.name}-${p.name}`;
          if (!api.get("persistentvolumeclaims", namespace, claim)) throw new NotYet(`claim ${claim} not found`);
          const local = path.join(claimsDir, claim);
          await fs.mkdir(local, { recursive: true });
          knownClaims.add(claim);
          claims.push(claim);
          dirs.set(m.mountPath, local);
        } else {
          const local = path.join(podDir, "volumes", m.name);
          if (!vol.emptyDir) {
            await fs.rm(local, { recursive: true, force: true });
            await fs.mkdir(local, { recursive: true });
            const files = volumeFiles(vol);
            for (const key of Object.keys(files)) await writeFileIn(local, key, files[key]!);
          } else await fs.mkdir(local, { recursive: true });
          dirs.set(m.mountPath, local);
        }
      }
      const localOf = (containerPath: string): string => {
        const enclosing = [...dirs.keys()].filter((d) => containerPath === d || containerPath.startsWith(`${d.replace(/\/$/, "")}/`)).sort((a, b) => b.length - a.length)[0];
        if (enclosing) return path.join(dirs.get(enclosing)!, path.relative(enclosing, containerPath));
        return path.join(podDir, "rootfs", containerPath);
      };
      // File (subPath) mounts of configMap/secret keys.
      for (const m of mounts.filter((x) => x.subPath)) {
        const vol = volumes.get(m.name);
        if (!vol || (!vol.configMap && !vol.secret)) throw new Error(`subPath mount ${m.mountPath}: only configMap/secret volumes are supported by the fake kubelet`);
        const content = volumeFiles(vol)[m.subPath!];
        if (content === undefined) throw new NotYet(`${m.subPath} not in volume ${m.name}`);
        const target = localOf(m.mountPath);
        await fs.mkdir(path.dirname(target), { recursive: true });
        await fs.writeFile(target, content);
      }

      const containerPort = c.ports?.[0]?.containerPort ?? 1880;
      const port = await freePort();
      // Container paths inside settings.js → local dirs; the container port → the local one.
      const rewrite = (text: string): string => {
        let out = text;
        for (const d of [...dirs.keys()].sort((a, b) => b.length - a.length)) out = out.split(JSON.stringify(d)).join(JSON.stringify(dirs.get(d)!));
        out = out.replace(new RegExp(`uiPort:\\s*${containerPort}\\b`, "g"), `uiPort: ${port}`);
        return `${out}\nmodule.exports.uiHost = "127.0.0.1";\n`;
      };
      const userDir = localOf(CONTAINER_USER_DIR);
      await fs.mkdir(userDir, { recursive: true });
      const settingsFile = path.join(userDir, "settings.js");
      const settings = await fs.readFile(settingsFile, "utf8").catch(() => undefined);
      if (settings === undefined) throw new Error(`no settings.js at ${CONTAINER_USER_DIR}/settings.js`);
      await fs.writeFile(settingsFile, rewrite(settings));
      // settings.js is CommonJS: an enclosing "type": "module" package would make Node load it as ESM.
      const pkg = path.join(userDir, "package.json");
      if (!(await fs.stat(pkg).catch(() => undefined))) await fs.writeFile(pkg, JSON.stringify({ name: `pod-${p.name}`, private: true }));

      const env = containerEnv(c, userDir);
      if (p.stopping || closed) return;
      const child = spawn(process.execPath, [NODE_RED_CLI, "--userDir", userDir, "--settings", settingsFile], {
        // Its own process group, so the container's end takes what Node-RED spawned (npm installing a node package) with it.
        cwd: userDir, env, stdio: ["ignore", "pipe", "pipe"], detached: true,
      });
      p.child = child;
      p.port = port;
      p.ready = false;
      p.claims = claims;
      p.startedAt = new Date().toISOString();
      p.launchError = undefined;
      const startedAt = p.startedAt;
      log(`kubelet: ${p.name} started Node-RED (pid ${child.pid}) on 127.0.0.1:${port}, userDir ${userDir}`);
      const onData = (buf: Buffer) => {
        for (const line of buf.toString().split("\n")) if (line.trim()) log(`${p.name}: ${line}`);
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.on("error", (err) => log(`kubelet: ${p.name}: ${err.message}`));
      exits.set(p, new Promise<void>((resolve) => {
        child.once("exit", (code, signal) => {
          // A container ends with everything in it: no npm left writing into the claim.
          try {
            process.kill(-child.pid!, "SIGKILL");
          } catch {
            /* the group is already empty */
          }
          if (p.child === child) {
            p.child = undefined;
            p.ready = false;
            p.port = undefined;
            p.lastTerminated = { exitCode: code ?? 137, ...(signal ? { signal } : {}), reason: code === 0 ? "Completed" : "Error", startedAt, finishedAt: new Date().toISOString() };
            if (!p.stopping) {
              p.restarts++;
              p.notBefore = Date.now() + RESTART_DELAY_MS;
              log(`kubelet: ${p.name} exited (${signal ?? `code ${code}`}); restarting in ${RESTART_DELAY_MS} ms`);
            }
          }
          resolve();
        });
      }));
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (p.launchError !== msg) log(`kubelet: ${p.name} cannot start yet: ${msg}`);
      p.launchError = msg;
      p.notBefore = Date.now() + (err instanceof NotYet ? tickMs : RESTART_DELAY_MS);
    } finally {
      p.launching = false;
      // Deleted while it was being set up: nothing to kill, forget it.
      if (p.stopping && !p.child && procs.get(p.name) === p) procs.delete(p.name);
    }
  };

  const volumeFiles = (vol: Volume): Record<string, string | Buffer> => {
    const out: Record<string, string | Buffer> = {};
    if (vol.configMap) {
      const cm = api.get("configmaps", namespace, vol.configMap.name);
      if (!cm) throw new NotYet(`configmap ${vol.configMap.name} not found`);
      const data: Record<string, string> = cm.data ?? {};
      const items = vol.configMap.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const it of items) if (data[it.key] !== undefined) out[it.path] = data[it.key]!;
    } else if (vol.secret) {
      const s = api.get("secrets", namespace, vol.secret.secretName);
      if (!s) throw new NotYet(`secret ${vol.secret.secretName} not found`);
      const data: Record<string, string> = s.data ?? {};
      const items = vol.secret.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const it of items) if (data[it.key] !== undefined) out[it.path] = Buffer.from(data[it.key]!, "base64");
    }
    return out;
  };

  const writeFileIn = async (dir: string, rel: string, content: string | Buffer): Promise<void> => {
    const target = path.join(dir, rel);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.writeFile(target, path.basename(rel) === "settings.js" ? String(content) : content);
  };

  const containerEnv = (c: Container, home: string): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const k of PASSED_ENV) if (process.env[k]) env[k] = process.env[k]!;
    env.HOME = home;
    for (const from of c.envFrom ?? []) {
      const prefix = from.prefix ?? "";
      if (from.secretRef) {
        const s = api.get("secrets", namespace, from.secretRef.name);
        if (!s) {
          if (from.secretRef.optional) continue;
          throw new NotYet(`secret ${from.secretRef.name} not found (CreateContainerConfigError)`);
        }
        for (const [k, v] of Object.entries((s.data ?? {}) as Record<string, string>)) env[prefix + k] = Buffer.from(v, "base64").toString("utf8");
      }
      if (from.configMapRef) {
        const cm = api.get("configmaps", namespace, from.configMapRef.name);
        if (!cm) {
          if (from.configMapRef.optional) continue;
          throw new NotYet(`configmap ${from.configMapRef.name} not found (CreateContainerConfigError)`);
        }
        for (const [k, v] of Object.entries((cm.data ?? {}) as Record<string, string>)) env[prefix + k] = v;
      }
    }
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.secretKeyRef) {
        const v = api.get("secrets", namespace, e.valueFrom.secretKeyRef.name)?.data?.[e.valueFrom.secretKeyRef.key];
        if (v === undefined) throw new NotYet(`secret key ${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key} not found`);
        env[e.name] = Buffer.from(v, "base64").toString("utf8");
      } else if (e.valueFrom?.configMapKeyRef) {
        const v = api.get("configmaps", namespace, e.valueFrom.configMapKeyRef.name)?.data?.[e.valueFrom.configMapKeyRef.key];
        if (v === undefined) throw new NotYet(`configmap key ${e.valueFrom.configMapKeyRef.name}/${e.valueFrom.configMapKeyRef.key} not found`);
        env[e.name] = v;
      } else env[e.name] = "";
    }
    return env;
  };

  const terminate = (p: PodProc): void => {
    if (p.stopping) return;
    p.stopping = true;
    p.ready = false;
    const child = p.child;
    if (!child) {
      if (!p.launching) procs.delete(p.name);
      return;
    }
    log(`kubelet: ${p.name} deleted; stopping Node-RED (pid ${child.pid})`);
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), KILL_AFTER_MS);
    void exits.get(p)!.then(() => {
      clearTimeout(timer);
      exits.delete(p);
      if (procs.get(p.name) === p) procs.delete(p.name);
    });
  };

  const probeReady = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/", timeout: 1_000, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
    });

  const desiredStatus = (p: PodProc, current: KubeObject["status"]): KubeObject["status"] => {
    if (!p.startedAt) return current; // never spawned: still Pending
    const running = Boolean(p.child);
    const state = running
      ? { running: { startedAt: p.startedAt } }
      : p.lastTerminated
        ? { terminated: p.lastTerminated }
        : { waiting: { reason: "ContainerCreating" } };
    return {
      ...current,
      phase: "Running",
      podIP: "127.0.0.1",
      podIPs: [{ ip: "127.0.0.1" }],
      conditions: [
        { type: "PodScheduled", status: "True" },
        { type: "Initialized", status: "True" },
        { type: "ContainersReady", status: p.ready ? "True" : "False" },
        { type: "Ready", status: p.ready ? "True" : "False" },
      ],
      containerStatuses: [
        {
          name: CONTAINER_NAME,
          ready: p.ready,
          started: running,
          restartCount: p.restarts,
          image: "fake-kubelet/node-red",
          imageID: "",
          state,
          ...(running && p.lastTerminated ? { lastState: { terminated: p.lastTerminated } } : {}),
        },
      ],
    };
  };

  const reconcilePods = async (): Promise<void> => {
    const pods = api.list("pods", namespace);
    const byName = new Map(pods.map((p) => [p.metadata.name as string, p]));
    for (const p of procs.values()) {
      const pod = byName.get(p.name);
      if (!pod || pod.metadata.uid !== p.uid) terminate(p);
    }
    for (const pod of pods) {
      const name: string = pod.metadata.name;
      let p = procs.get(name);
      if (p?.stopping) continue; // the old pod's process is still on its way out
      if (!p) {
        p = { name, uid: pod.metadata.uid, launching: false, ready: false, restarts: 0, notBefore: 0, stopping: false, claims: [], probing: false };
        procs.set(name, p);
      }
      if (!p.child && !p.launching && Date.now() >= p.notBefore) void launch(p, pod);
    }
    // Readiness probes, concurrently.
    await Promise.all([...procs.values()].filter((p) => p.child && !p.ready && !p.stopping && p.port && !p.probing).map(async (p) => {
      p.probing = true;
      const port = p.port!;
      const ok = await probeReady(port);
      p.probing = false;
      if (ok && p.child && p.port === port && !p.stopping) {
        p.ready = true;
        log(`kubelet: ${p.name} is Ready`);
      }
    }));
    // Status write-back (only on change: every put bumps resourceVersion).
    for (const p of procs.values()) {
      if (p.stopping) continue;
      const pod = api.get("pods", namespace, p.name);
      if (!pod || pod.metadata.uid !== p.uid) continue;
      const next = desiredStatus(p, pod.status);
      if (JSON.stringify(next) !== JSON.stringify(pod.status)) api.put("pods", { ...pod, status: next });
    }
  };

  const collectClaims = async (): Promise<void> => {
    for (const claim of [...knownClaims]) {
      if (api.get("persistentvolumeclaims", namespace, claim)) continue;
      // A claim in use is protected (kubernetes.io/pvc-protection) until its pod is gone.
      if ([...procs.values()].some((p) => p.claims.includes(claim) && (p.child || p.launching))) continue;
      knownClaims.delete(claim);
      await fs.rm(path.join(claimsDir, claim), { recursive: true, force: true });
      log(`kubelet: claim ${claim} deleted; removed its volume`);
    }
  };

  // Own process groups don't get the test runner's Ctrl-C: no Node-RED outlives this process.
  const onExit = () => {
    for (const p of procs.values()) {
      try {
        if (p.child?.pid) process.kill(-p.child.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
  };
  process.on("exit", onExit);

  let ticking: Promise<void> | undefined;
  const tick = async (): Promise<void> => {
    try {
      simulateStatefulSets(api, namespace);
      await reconcilePods();
      simulateEndpointSlices(api, namespace);
      await collectClaims();
    } catch (err) {
      log(`kubelet: tick failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
  };
  const loop = setInterval(() => {
    if (ticking || closed) return; // no overlapping ticks
    ticking = tick().finally(() => (ticking = undefined));
  }, tickMs);

  // ---- kube-proxy: one TCP proxy per Service ----

  const matches = (labels: Record<string, string>, selector: Record<string, string>): boolean =>
    Object.entries(selector).every(([k, v]) => labels[k] === v);

  const pickEndpoint = (service: string): { pod: string; port: number } | undefined => {
    const svc = api.get("services", namespace, service);
    const selector: Record<string, string> | undefined = svc?.spec?.selector;
    if (!svc || !selector || !Object.keys(selector).length) return undefined;
    const ready = api.list("pods", namespace)
      .filter((pod) => matches(pod.metadata.labels ?? {}, selector))
      .filter((pod) => (pod.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === "Ready" && c.status === "True"))
      .map((pod) => procs.get(pod.metadata.name))
      .filter((p): p is PodProc => Boolean(p && p.child && p.ready && !p.stopping && p.port))
      .sort((a, b) => a.name.localeCompare(b.name));
    if (!ready.length) return undefined;
    const n = roundRobin.get(service) ?? 0;
    roundRobin.set(service, n + 1);
    const p = ready[n % ready.length]!;
    return { pod: p.name, port: p.port! };
  };

  const serviceUrl = (name: string): Promise<string> => {
    if (closed) return Promise.reject(new Error("fake kubelet is closed"));
    let proxy = proxies.get(name);
    if (!proxy) {
      proxy = new Promise((resolve, reject) => {
        const server = net.createServer({ allowHalfOpen: true }, (client) => {
          sockets.add(client);
          client.once("close", () => sockets.delete(client));
          client.on("error", () => client.destroy());
          const target = pickEndpoint(name);
          if (!target) {
            client.destroy();
            return;
          }
          const upstream = net.connect({ host: "127.0.0.1", port: target.port, allowHalfOpen: true });
          sockets.add(upstream);
          upstream.once("close", () => {
            sockets.delete(upstream);
            client.end();
          });
          client.once("close", () => upstream.destroy());
          upstream.on("error", () => {
            upstream.destroy();
            client.destroy();
          });
          client.on("error", () => upstream.destroy());
          client.pipe(upstream);
          upstream.pipe(client);
        });
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
          const { port } = server.address() as net.AddressInfo;
          log(`kube-proxy: service ${name} at 127.0.0.1:${port}`);
          resolve({ server, url: `http://127.0.0.1:${port}` });
        });
      });
      proxies.set(name, proxy);
    }
    return proxy.then((p) => p.url);
  };

  return {
    adminUrl: async ({ name, namespace: ns }) => {
      if (ns !== namespace) throw new Error(`fake kubelet serves namespace ${namespace}, not ${ns}`);
      return serviceUrl(name);
    },
    serviceUrl,
    running: () => [...procs.values()].filter((p) => p.child).map((p) => p.name).sort(),
    podPort: (pod) => {
      const p = procs.get(pod);
      return p?.child && !p.stopping ? p.port : undefined;
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(loop);
      await ticking;
      // Launches in flight finish (or see `closed` and do not spawn) before the kill.
      while ([...procs.values()].some((p) => p.launching)) await new Promise((r) => setTimeout(r, 20));
      for (const p of procs.values()) terminate(p);
      await Promise.all([...exits.values()]);
      process.off("exit", onExit);
      for (const s of sockets) s.destroy();
      await Promise.all([...proxies.values()].map(async (pr) => {
        const { server } = await pr.catch(() => ({ server: undefined }));
        if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
      }));
      proxies.clear();
    },
  };
}
