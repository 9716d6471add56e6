/**
 * The bridge's side of the data plane: the process driver's registry of
 * instance fronts, which now run in the data plane process (main.ts). It
 * attaches to the state dir's data plane (or starts one, launcher.ts) and
 * remembers which fronts this bridge asked for, so that a data plane that
 * died is started again with the same fronts, ports and targets on the next
 * call. Held MQTT work survives that in the spool; held HTTP requests do not.
 */
import fs from "node:fs";
import { attachDataPlane } from "./launcher.ts";
import { CALLS, dataPlaneFiles, shutdownResult, type CallArgs, type CallName, type CallResult } from "./protocol.ts";
import { RemoteHttpRoute, RemoteMqttRoute } from "./remoteRoutes.ts";
import { DataPlaneCallFailed, DataPlaneUnreachable, openLease, pingDataPlane, requestDataPlane, type Lease } from "./transport.ts";

export interface DataPlaneClientOptions {
  /** The data plane's socket, info and log live here; held MQTT work in `<stateDir>/<instanceId>/hold.spool`. */
  stateDir: string;
  /** Where HTTP fronts listen. */
  host?: string;
  /** The cluster's MQTT bus; no MQTT fronts without it. */
  mqttUrl?: string;
  /** fsync each spooled record (`--spool-fsync`). */
  spoolFsync?: boolean;
  /** How long the data plane keeps a hold open once this bridge is gone (lease.ts; default 1 s, 0: until a bridge ends it). */
  holdLeaseMs?: number;
  log: (instanceId: string, line: string) => void;
}

interface KnownFronts {
  http?: { port: number; target: string | undefined; route: RemoteHttpRoute };
  mqtt?: { target: string; route: RemoteMqttRoute };
}

/**
 * Calls that wait on Node-RED or the broker get longer than the rest. A data plane replaying thousands of held
 * messages on a loaded machine answers its other calls late, not never (issue 12 (j): a switch failed on a 30 s
 * call and the deployment rolled back): a late answer only makes the step longer, and the control plane's
 * deadline and retries decide when a step has taken too long.
 */
const callTimeoutMs = (args: { op: CallName; timeoutMs?: number }): number =>
  args.op === "mqtt.beginHandover" ? (args.timeoutMs ?? 30_000) + 30_000 : args.op === "mqtt.completeHandover" ? 300_000 : 60_000;

export class DataPlaneClient {
  private readonly fronts = new Map<string, KnownFronts>();
  private attaching?: Promise<void>;
  private closed = false;
  private readonly socket: string;
  /** The data plane this client attached to or started. */
  private pid?: number;
  /** This bridge's lease on the data plane (lease.ts): open while this process lives and the client is not closed. */
  private lease?: Lease;

  /** See exitHook: called when the bridge process exits without having closed this client. */
  stopOnExit(): void {
    if (this.closed || !this.pid) return;
    try { process.kill(this.pid, "SIGTERM"); } catch { /* already gone */ }
  }

  constructor(private readonly opts: DataPlaneClientOptions) {
    this.socket = dataPlaneFiles(opts.stateDir).socket;
  }

  http(instanceId: string): RemoteHttpRoute | undefined {
    return this.fronts.get(instanceId)?.http?.route;
  }

  mqtt(instanceId: string): RemoteMqttRoute | undefined {
    return this.fronts.get(instanceId)?.mqtt?.route;
  }

  /** The instance's MQTT front in the data plane; one that already runs keeps its target and hold. Undefined without a bus. */
  async ensureMqtt(instanceId: string, target: () => string | Promise<string>): Promise<RemoteMqttRoute | undefined> {
    if (!this.opts.mqttUrl) return undefined;
    const known = this.fronts.get(instanceId)?.mqtt;
    if (known) return known.route;
    const runtimeId = await target();
    const { enabled } = await this.call({ op: "mqtt.ensure", instanceId, target: runtimeId });
    if (!enabled) throw new Error(`the data plane of ${this.opts.stateDir} runs without an MQTT bus; stop it (it is restarted with this bridge's --mqtt-url)`);
    const entry = { target: runtimeId, route: new RemoteMqttRoute((a) => this.call(a), instanceId, (t) => { entry.target = t; }) };
    this.entry(instanceId).mqtt = entry;
    return entry.route;
  }

  /**
   * The instance's HTTP front on `port`, forwarding to `target`; one that
   * already runs keeps its port, target and held requests. When the port is
   * taken, it listens on `fallback()` instead and says so in `moved`.
   */
  async ensureHttp(instanceId: string, port: number, target: string, fallback: () => Promise<number>): Promise<{ front: RemoteHttpRoute; moved?: number }> {
    const known = this.fronts.get(instanceId)?.http;
    if (known) return { front: known.route };
    let moved: number | undefined;
    let listening: CallResult<"http.ensure">;
    try {
      listening = await this.call({ op: "http.ensure", instanceId, port, target });
    } catch (err) {
      if (!(err instanceof DataPlaneCallFailed && err.code === "port_taken")) throw err;
      moved = await fallback();
      listening = await this.call({ op: "http.ensure", instanceId, port: moved, target });
      this.opts.log(instanceId, `front port ${port} is taken; front door moved to ${moved}`);
    }
    const entry: NonNullable<KnownFronts["http"]> = {
      port: listening.port, target,
      route: new RemoteHttpRoute((a) => this.call(a), instanceId, listening.url, (t) => { entry.target = t; }),
    };
    this.entry(instanceId).http = entry;
    return moved === undefined ? { front: entry.route } : { front: entry.route, moved };
  }

  /** Closes the instance's fronts (destroy). */
  async drop(instanceId: string): Promise<void> {
    // Also fronts this bridge never asked for (destroyed right after a restart): the data plane may still run them.
    if (!this.fronts.delete(instanceId) && !(await pingDataPlane(this.socket).catch(() => undefined))) return;
    await this.call({ op: "drop", instanceId });
  }

  /** Stops the data plane: every instance's front door closes (the bridge is shutting down for good). */
  async close(): Promise<void> {
    this.closed = true;
    this.dropLease();
    openClients.delete(this);
    this.fronts.clear();
    // Also one an earlier bridge left running and this one never needed: it serves this state dir.
    const running = await pingDataPlane(this.socket).catch(() => undefined);
    if (!running) return;
    const answer = await requestDataPlane(this.socket, "POST", "/shutdown", { onlyIfIdle: false }, shutdownResult, 10_000).catch(() => undefined);
    if (answer?.stopping) await untilGone(running.pid);
    this.opts.log("dataplane", `stopped the data plane (pid ${running.pid})`);
  }

  /** Leaves the data plane running for the next bridge (a restart or an upgrade). */
  async detach(): Promise<void> {
    this.closed = true;
    this.dropLease();
    openClients.delete(this);
    this.fronts.clear();
    const running = await pingDataPlane(this.socket).catch(() => undefined);
    if (running) this.opts.log("dataplane", `leaving the data plane (pid ${running.pid}) running: instances' front doors keep serving; the next bridge attaches to it`);
  }

  /** One control-API call; a data plane that is gone is started again (with this bridge's fronts) and asked once more. */
  private async call<K extends CallName>(args: CallArgs<K>): Promise<CallResult<K>> {
    if (this.closed) throw new Error("the bridge's data plane client is closed");
    await this.attach();
    const send = () => requestDataPlane(this.socket, "POST", "/call", args, CALLS[args.op].result, callTimeoutMs(args)) as Promise<CallResult<K>>;
    try {
      return await send();
    } catch (err) {
      if (!(err instanceof DataPlaneUnreachable)) throw err;
      const died = lastWords(dataPlaneFiles(this.opts.stateDir).log);
      this.opts.log(args.instanceId, `${err.message}${died ? ` (its log: ${died})` : ""}; starting it again with this bridge's fronts`);
      this.attaching = undefined;
      await this.attach();
      return send();
    }
  }

  private attach(): Promise<void> {
    this.attaching ??= (async () => {
      const attached = await attachDataPlane({
        stateDir: this.opts.stateDir, host: this.opts.host ?? "127.0.0.1",
        ...(this.opts.mqttUrl ? { mqttUrl: this.opts.mqttUrl } : {}), ...(this.opts.spoolFsync ? { spoolFsync: true } : {}),
        log: (line) => this.opts.log("dataplane", line),
      });
      this.pid = attached.pid;
      await this.takeLease();
      openClients.add(this);
      exitHook ??= process.once("exit", () => { for (const c of openClients) c.stopOnExit(); });
      if (attached.spawned) await this.restoreFronts();
    })().catch((err: unknown) => {
      this.attaching = undefined; // the next call tries again
      throw err;
    });
    return this.attaching;
  }

  /**
   * Opens this bridge's lease; a data plane that is releasing a hold of its own finishes first. Without a
   * lease (a data plane from before it) the bridge works as before: holds wait for the control plane.
   */
  private async takeLease(): Promise<void> {
    this.dropLease();
    const lease = await openLease(this.socket, this.opts.holdLeaseMs).catch((err: unknown) => {
      this.opts.log("dataplane", `no lease on the data plane (${err instanceof Error ? err.message : String(err)}): a hold outlives this bridge until a bridge ends it`);
      return undefined;
    });
    if (!lease) return;
    this.lease = lease;
    void lease.ended.then(() => {
      if (this.lease !== lease || this.closed) return;
      // The data plane went away (or stopped: no fronts): the next call attaches again and takes a new lease.
      this.lease = undefined;
      this.attaching = undefined;
    });
  }

  private dropLease(): void {
    this.lease?.release();
    this.lease = undefined;
  }

  /** A new data plane gets back the fronts this bridge had: same ports, same targets (held MQTT work waits in the spool). */
  private async restoreFronts(): Promise<void> {
    for (const [instanceId, f] of this.fronts) {
      const call = <K extends CallName>(a: CallArgs<K>) => requestDataPlane(this.socket, "POST", "/call", a, CALLS[a.op].result, 30_000);
      if (f.http) await call({ op: "http.ensure", instanceId, port: f.http.port, ...(f.http.target ? { target: f.http.target } : {}) });
      if (f.mqtt) await call({ op: "mqtt.ensure", instanceId, target: f.mqtt.target });
    }
  }

  private entry(instanceId: string): KnownFronts {
    let e = this.fronts.get(instanceId);
    if (!e) this.fronts.set(instanceId, (e = {}));
    return e;
  }
}

/**
 * A bridge process that exits on its own without closing its driver also kills
 * its Node-REDs (the process driver's exit hook), so its data plane would only
 * answer 503s: it goes too. A kill -9 runs no exit hook and leaves both serving
 * for the next bridge. One hook per process, however many clients (tests make many).
 */
const openClients = new Set<DataPlaneClient>();
let exitHook: NodeJS.Process | undefined;

/**
 * The data plane's last "uncaught" line, when it died of one: without it the bridge only knows the
 * socket reset (session 7's (g) run said ECONNRESET three times, and why was in a log deleted with
 * the state dir).
 */
function lastWords(logFile: string): string | undefined {
  try {
    const fd = fs.openSync(logFile, "r");
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(size, 16 * 1024));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      const lines = buf.toString("utf8").split("\n");
      // Only the last data plane's: from its "serving" line on.
      const since = lines.findLastIndex((l) => l.includes(": serving "));
      return lines.slice(Math.max(since, 0)).find((l) => l.includes(": uncaught: "))?.slice(0, 300);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

async function untilGone(pid: number, timeoutMs = 15_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() - t0 > timeoutMs) return;
    await new Promise((r) => setTimeout(r, 25));
  }
}
