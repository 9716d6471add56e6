/**
 * Finds the data plane of a state dir, or starts one: ping its socket; a data
 * plane of this protocol is attached to as it is (its fronts keep their
 * targets, holds and counters); one of another protocol is replaced, but only
 * while none of its fronts holds work; none at all is spawned detached, in
 * its own process group with its output in `<stateDir>/dataplane.log`, so
 * that it outlives the bridge (a crash, `systemctl restart`, an upgrade).
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { DATA_PLANE_PROTOCOL, dataPlaneFiles, frontHoldsWork, shutdownResult, statusResult } from "./protocol.ts";
import { DataPlaneUnreachable, pingDataPlane, requestDataPlane } from "./transport.ts";

export interface LaunchOptions {
  stateDir: string;
  mqttUrl?: string;
  host: string;
  spoolFsync?: boolean;
  /** How long a new data plane may take to answer (tsx compiles it first: seconds on a loaded machine). */
  readyTimeoutMs?: number;
  log: (line: string) => void;
}

export interface Attached {
  pid: number;
  spawned: boolean;
}

const ENTRY = fileURLToPath(new URL("./entry.mjs", import.meta.url));
// The data plane gets only these from the bridge's environment: the bridge's own secrets stay home.
const PASSED_ENV = ["PATH", "HOME", "TMPDIR", "LANG", "TZ", "NODE_EXTRA_CA_CERTS"];
const LOG_ROTATE_BYTES = 10 * 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function attachDataPlane(o: LaunchOptions): Promise<Attached> {
  const files = dataPlaneFiles(o.stateDir);
  // sockaddr_un holds 108 bytes: a longer path fails deep inside listen/connect with an obscure error.
  if (Buffer.byteLength(files.socket) > 107) {
    throw new Error(`the data plane's socket path ${files.socket} is longer than a Unix socket allows (107 bytes); use a shorter --state-dir`);
  }
  const running = await pingDataPlane(files.socket).catch((err: unknown) => {
    if (err instanceof DataPlaneUnreachable) return undefined;
    throw err;
  });
  if (running?.protocol === DATA_PLANE_PROTOCOL) {
    const status = await requestDataPlane(files.socket, "GET", "/status", undefined, statusResult, 5_000);
    o.log(`attached to the running data plane (pid ${running.pid}, since ${running.startedAt}, ${status.fronts.length} front(s)); its fronts keep serving as they were`);
    if ((status.mqttUrl ?? "") !== (o.mqttUrl ?? "")) {
      o.log(`the data plane routes MQTT through ${status.mqttUrl ?? "no bus"}, this bridge was given ${o.mqttUrl ?? "none"}: it keeps its own until it is restarted (stop the bridge with SIGINT, or kill the data plane while no deployment runs)`);
    }
    return { pid: running.pid, spawned: false };
  }
  if (running) await replaceOtherVersion(o, running.pid, running.protocol);
  return spawnDataPlane(o);
}

async function replaceOtherVersion(o: LaunchOptions, pid: number, protocol: number): Promise<void> {
  const socket = dataPlaneFiles(o.stateDir).socket;
  const status = await requestDataPlane(socket, "GET", "/status", undefined, statusResult, 5_000);
  const busy = status.fronts.filter(frontHoldsWork).map((f) => f.instanceId);
  const what = `the data plane of ${o.stateDir} (pid ${pid}) speaks control protocol ${protocol}, this bridge speaks ${DATA_PLANE_PROTOCOL}`;
  if (busy.length) {
    throw new Error(`${what}, and the fronts of ${busy.join(", ")} hold work (a deployment is switching them), so it is not replaced now; `
      + "finish or roll back those deployments with the bridge version that started them, then start this one again");
  }
  o.log(`${what}; none of its ${status.fronts.length} front(s) holds work, so it is replaced (their ports refuse connections until the new one listens)`);
  const answer = await requestDataPlane(socket, "POST", "/shutdown", { onlyIfIdle: true }, shutdownResult, 10_000);
  if (!answer.stopping) throw new Error(`${what}, and it refused to stop: ${answer.reason ?? "no reason given"}`);
  const t0 = Date.now();
  while (isAlive(pid) && Date.now() - t0 < 15_000) await sleep(50);
  if (isAlive(pid)) throw new Error(`${what}; it was asked to stop but pid ${pid} still runs after 15 s`);
}

async function spawnDataPlane(o: LaunchOptions): Promise<Attached> {
  const files = dataPlaneFiles(o.stateDir);
  fs.mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  // Appended across starts; rotated at start once it passes 10 MiB, one old file kept (as Node-RED's logs).
  if ((fs.statSync(files.log, { throwIfNoEntry: false })?.size ?? 0) > LOG_ROTATE_BYTES) fs.renameSync(files.log, `${files.log}.1`);
  const out = fs.openSync(files.log, "a", 0o600);
  const env: Record<string, string> = {};
  for (const k of PASSED_ENV) if (process.env[k]) env[k] = process.env[k]!;
  const args = [ENTRY, "--state-dir", o.stateDir, "--host", o.host, ...(o.mqttUrl ? ["--mqtt-url", o.mqttUrl] : []), ...(o.spoolFsync ? ["--spool-fsync"] : [])];
  // Detached: its own process group and session, so a signal to the bridge's group (Ctrl-C in a
  // terminal, a container's or systemd's stop of the bridge's processes) does not reach it.
  const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", out, out], env, cwd: o.stateDir });
  fs.closeSync(out);
  child.unref();
  let exited: number | null | undefined;
  child.once("exit", (code) => { exited = code; });
  const deadline = Date.now() + (o.readyTimeoutMs ?? 60_000);
  for (;;) {
    const ping = await pingDataPlane(files.socket, 2_000).catch(() => undefined);
    if (ping && ping.pid === child.pid) break;
    // Exit 3: another data plane got there first (two bridge processes starting at once); use it.
    if (ping && exited === 3) return { pid: ping.pid, spawned: false };
    if (exited !== undefined && exited !== 3) throw new Error(`the data plane exited (code ${exited}) before it answered; see ${files.log}: ${tail(files.log)}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the data plane (pid ${child.pid}) did not answer on ${files.socket} within ${o.readyTimeoutMs ?? 60_000} ms; see ${files.log}`);
    }
    await sleep(50);
  }
  o.log(`started the data plane (pid ${child.pid}, log ${files.log}); it keeps the fronts serving across bridge restarts`);
  return { pid: child.pid!, spawned: true };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function tail(file: string): string {
  const text = fs.readFileSync(file, "utf8");
  return text.slice(-600).trim();
}
