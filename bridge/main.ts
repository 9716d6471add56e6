/**
 * The RedForge bridge: one per cluster. It keeps the command channel to the
 * control plane open, runs each command once through the driver, and reports
 * results and status changes back as signed webhooks.
 *
 * `startBridge` runs it in-process (npm start, tests); run this file, or the
 * `redforge-bridge` bin, for the CLI.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import { AiAuditForwarder } from "./aiAuditForwarder.ts";
import { BrokerWatch } from "./brokerWatch.ts";
import type { BackoffPolicy } from "./backoff.ts";
import { parseCli, UsageError, USAGE, type DriverKind } from "./cli.ts";
import { CommandLedger } from "./dedupe.ts";
import { createDriver } from "./driverFactory.ts";
import { DeadLetterForwarder } from "./deadLetterForwarder.ts";
import { ModelPolicySync } from "./modelPolicySync.ts";
import { CheckpointForwarder } from "./checkpointForwarder.ts";
import type { BlueGreenDriver, ContextStoreTarget, Driver } from "./drivers/driver.ts";
import { CommandExecutor } from "./executor.ts";
import { controllerPresent } from "./handlers.ts";
import { InstanceRegistry } from "./instances.ts";
import { ClusterLink } from "./link.ts";
import { errorMessage, lineLogger, type Logger } from "./log.ts";
import { Reporter } from "./reporter.ts";
import { acquireStateLock } from "./stateLock.ts";
import { BRIDGE_VERSION } from "./version.ts";

export interface BridgeOptions {
  clusterId: string;
  /** Control plane base URL, without a trailing slash. */
  api: string;
  /** The cluster's webhook secret (whsec_...). */
  secret: string;
  /** A driver instance (the bridge owns it from now on and closes it), or the kind to build. */
  driver: Driver | DriverKind;
  stateDir: string;
  /** Node package tarball for a driver built here; packed from flows/node-package when absent. */
  nodePackage?: string;
  /** The cluster's MQTT bus (gates, MQTT work routing); off when absent. */
  mqttUrl?: string;
  /** fsync each held MQTT message the process driver's data plane spools. */
  spoolFsync?: boolean;
  /** At start, check that the broker queues enough for an offline session (bridge/brokerCheck.ts); default on when mqttUrl is set. */
  brokerCheck?: boolean;
  /** After the start-up check, check again this often (default 1 h, bridge/brokerWatch.ts); 0: only at start. */
  brokerCheckEveryMs?: number;
  /** How often instances' approved-model lists are refreshed (default: the control plane's ttlSeconds). */
  modelPolicyRefreshMs?: number;
  /** Upstash-REST Redis for the instances' `shared` context store (both colours); off when absent. */
  contextStore?: ContextStoreTarget;
  /** A deployment's hold released to the serving runtime after this long without a command (default 120 s; 0: never). */
  maxHoldMs?: number;
  /** A deployment's hold released to the serving runtime this long after the link to the control plane went down (default 1 s; 0: no lease). */
  holdLeaseMs?: number;
  log?: Logger;
  bridgeVersion?: string;
  linkBackoff?: BackoffPolicy;
  linkStableAfterMs?: number;
  heartbeatMs?: number;
  reportRetry?: BackoffPolicy & { attempts: number };
  /** How long close() lets running commands finish before shutting the driver down (default 30 s). */
  drainMs?: number;
}

export interface RunningBridge {
  readonly link: ClusterLink;
  /** Forwards the instances' AI decision records; present when the bridge has an MQTT bus. */
  readonly aiAudit?: AiAuditForwarder;
  /** Forwards the instances' dead letters; present when the bridge has an MQTT bus. */
  readonly deadLetters?: DeadLetterForwarder;
  /** Resolves once every command received so far has been answered (tests). */
  idle(): Promise<void>;
  /** `leaveRunning`: a restart or upgrade (the CLI's SIGTERM); what carries traffic stays up (Driver.close). */
  close(opts?: { leaveRunning?: boolean }): Promise<void>;
}

export async function startBridge(opts: BridgeOptions): Promise<RunningBridge> {
  const log = opts.log ?? lineLogger();
  const api = opts.api.replace(/\/+$/, "");
  // One bridge per state dir (stateLock.ts), before anything in it is read or started.
  const lock = acquireStateLock(opts.stateDir);
  if (lock.tookOverFrom) log.warn(`state dir lock taken over from bridge pid ${lock.tookOverFrom.pid} (since ${lock.tookOverFrom.since}), which is gone`);
  try {
    return await startLocked(opts, log, api, lock.release);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startLocked(opts: BridgeOptions, log: Logger, api: string, releaseLock: () => void): Promise<RunningBridge> {
  // The state dir first: without a ledger the bridge could run a command twice, so it must not start.
  const [ledger, instances] = await Promise.all([CommandLedger.open(opts.stateDir), InstanceRegistry.open(opts.stateDir)]).catch((err: unknown) => {
    throw new Error(`cannot use the state dir ${opts.stateDir}: ${errorMessage(err)}`);
  });
  const driver = typeof opts.driver === "string"
    ? await createDriver(opts.driver, {
      clusterId: opts.clusterId, stateDir: opts.stateDir, log,
      ...(opts.nodePackage ? { nodePackage: opts.nodePackage } : {}), ...(opts.mqttUrl ? { mqttUrl: opts.mqttUrl } : {}),
      ...(opts.spoolFsync ? { spoolFsync: true } : {}), ...(opts.contextStore ? { contextStore: opts.contextStore } : {}),
      ...(opts.holdLeaseMs !== undefined ? { holdLeaseMs: opts.holdLeaseMs } : {}),
    })
    : opts.driver;
  const reporter = new Reporter({ api, clusterId: opts.clusterId, secret: opts.secret, log, ...(opts.reportRetry ? { retry: opts.reportRetry } : {}) });
  const executor = new CommandExecutor({
    driver, ledger, reporter, instances, log, ...(opts.mqttUrl ? { mqttUrl: opts.mqttUrl } : {}), ...(opts.maxHoldMs !== undefined ? { maxHoldMs: opts.maxHoldMs } : {}),
    ...(opts.holdLeaseMs !== undefined ? { holdLeaseMs: opts.holdLeaseMs } : {}),
  });
  const link = new ClusterLink({
    api, clusterId: opts.clusterId, secret: opts.secret, bridgeVersion: opts.bridgeVersion ?? BRIDGE_VERSION,
    // A driver that cannot say which stacks it runs (the simulated one) reports nothing, so the control plane does not refuse them all.
    driver: driver.kind, ...(driver.supportedStacks ? { stacks: driver.supportedStacks() } : {}), sink: executor, log,
    ...(opts.linkBackoff ? { backoff: opts.linkBackoff } : {}),
    ...(opts.linkStableAfterMs !== undefined ? { stableAfterMs: opts.linkStableAfterMs } : {}),
    ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
    // The controller is known gone while the link is down: held work is given back after a short lease.
    onConnected: () => controllerPresent(driver, true),
    onDisconnected: () => controllerPresent(driver, false),
  });
  await resumeDriver(driver, log);
  log.info(`bridge ${opts.bridgeVersion ?? BRIDGE_VERSION} for cluster ${opts.clusterId} (driver ${driver.kind}, stacks ${(driver.supportedStacks?.() ?? []).map((s) => `${s.id}=${s.image ?? s.nodeRed}`).join(" ") || "none"}, state ${opts.stateDir}, ${ledger.size} command(s) remembered)`);
  link.start();
  const aiAudit = opts.mqttUrl ? new AiAuditForwarder({ api, clusterId: opts.clusterId, secret: opts.secret, mqttUrl: opts.mqttUrl, log }) : undefined;
  aiAudit?.start();
  const deadLetters = opts.mqttUrl ? new DeadLetterForwarder({ api, clusterId: opts.clusterId, secret: opts.secret, mqttUrl: opts.mqttUrl, log }) : undefined;
  deadLetters?.start();
  const modelPolicies = opts.mqttUrl ? new ModelPolicySync({
    api, clusterId: opts.clusterId, secret: opts.secret, mqttUrl: opts.mqttUrl, log,
    ...(opts.modelPolicyRefreshMs !== undefined ? { refreshMs: opts.modelPolicyRefreshMs } : {}),
  }) : undefined;
  modelPolicies?.start();
  const checkpoints = opts.mqttUrl ? new CheckpointForwarder({ api, clusterId: opts.clusterId, secret: opts.secret, mqttUrl: opts.mqttUrl, log, driver: driver as Partial<BlueGreenDriver> }) : undefined;
  checkpoints?.start();
  // In the background: a broker that silently drops queued work is worth a warning, not a refusal to start.
  const brokerWatch = opts.mqttUrl && opts.brokerCheck !== false
    ? new BrokerWatch({ mqttUrl: opts.mqttUrl, reporter, log, ...(opts.brokerCheckEveryMs !== undefined ? { everyMs: opts.brokerCheckEveryMs } : {}) })
    : undefined;
  brokerWatch?.start();

  let closing: Promise<void> | undefined;
  const close = (closeOpts: { leaveRunning?: boolean } = {}) => (closing ??= (async () => {
    await link.close();
    brokerWatch?.close();
    if (brokerWatch) await withDeadline(brokerWatch.current, 5_000);
    // A command cut off here is answered "interrupted" on redelivery, so a bounded wait is safe.
    await withDeadline(executor.idle(), opts.drainMs ?? 30_000);
    await aiAudit?.close();
    await deadLetters?.close();
    await modelPolicies?.close();
    await checkpoints?.close();
    await reporter.close();
    await driver.close(closeOpts).catch((err: unknown) => log.error(`driver did not close cleanly: ${errorMessage(err)}`));
    await ledger.close();
    releaseLock();
    log.info("bridge stopped");
  })());
  return { link, ...(aiAudit ? { aiAudit } : {}), ...(deadLetters ? { deadLetters } : {}), idle: () => executor.idle(), close };
}

/**
 * A driver whose runtimes outlive the bridge (the process driver) converges on
 * its saved desired state at start: it adopts what still runs and starts what
 * should run. Done before the link opens, so the first command and the first
 * status the control plane gets see the instances as they are.
 */
interface ResumingDriver {
  resume(): Promise<{ adopted: string[]; started: string[]; stopped: string[]; failed: Array<{ instanceId: string; error: string }> }>;
}

const isResuming = (driver: Driver): driver is Driver & ResumingDriver => typeof (driver as Partial<ResumingDriver>).resume === "function";

async function resumeDriver(driver: Driver, log: Logger): Promise<void> {
  if (!isResuming(driver)) return;
  const t0 = Date.now();
  const r = await driver.resume();
  if (r.adopted.length + r.started.length + r.stopped.length + r.failed.length === 0) return;
  log.info(`resumed after restart in ${Date.now() - t0} ms: ${r.adopted.length} runtime(s) adopted, ${r.started.length} runtime(s) started again, ${r.stopped.length} stopped as asked, ${r.failed.length} failed`);
  for (const f of r.failed) log.warn(`instance ${f.instanceId} not resumed: ${f.error}`);
}

function withDeadline(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** The CLI: exits 2 on a usage error, 1 when the bridge cannot start, 0 after SIGINT/SIGTERM. */
export async function runCli(argv: string[] = process.argv.slice(2)): Promise<void> {
  const log = lineLogger();
  let options;
  try {
    options = parseCli(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`redforge-bridge: ${err.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let bridge: RunningBridge;
  try {
    bridge = await startBridge({ ...options, log });
  } catch (err) {
    log.error(`bridge cannot start: ${errorMessage(err)}`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(130); // a second signal: the operator wants out now
    stopping = true;
    // SIGTERM is how a restart or an upgrade stops the bridge (systemctl restart): the data plane keeps serving.
    const leaveRunning = signal === "SIGTERM";
    log.info(`${signal}: shutting down (again to exit at once)${leaveRunning ? "; the process driver's Node-REDs and data plane keep serving for the next bridge, which adopts them (SIGINT stops them too)" : ""}`);
    void bridge.close({ leaveRunning }).then(() => process.exit(0), (err: unknown) => {
      log.error(`shutdown failed: ${errorMessage(err)}`);
      process.exit(1);
    });
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  void runCli();
}
