/**
 * The data plane process: one per bridge state dir, spawned detached by the
 * bridge (launcher.ts) so that it outlives a bridge crash, restart or
 * upgrade. It hosts every instance's HTTP and MQTT front (bridge/routing/)
 * and answers the bridge on `<stateDir>/dataplane.sock` (server.ts). It
 * stops on SIGTERM/SIGINT or `POST /shutdown`, never because a bridge went away.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { writeFileAtomic } from "../atomicFile.ts";
import { FrontRegistry } from "../routing/frontRegistry.ts";
import { BRIDGE_VERSION } from "../version.ts";
import { DATA_PLANE_PROTOCOL, dataPlaneFiles, type DataPlaneInfo } from "./protocol.ts";
import { HoldLease } from "./lease.ts";
import { createControlServer } from "./server.ts";
import { pingDataPlane } from "./transport.ts";

const cliArgs = z.object({
  "state-dir": z.string().min(1),
  "mqtt-url": z.string().url().optional(),
  host: z.string().min(1).default("127.0.0.1"),
  "spool-fsync": z.boolean().default(false),
});

/** How long a data plane with no fronts and no calls waits before it stops. */
const IDLE_EXIT_MS = 15_000;

const log = (line: string) => process.stdout.write(`${new Date().toISOString()} data plane ${process.pid}: ${line}\n`);

export async function runDataPlane(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: {
    "state-dir": { type: "string" }, "mqtt-url": { type: "string" }, host: { type: "string" }, "spool-fsync": { type: "boolean" },
  } });
  const opts = cliArgs.parse(values);
  const stateDir = path.resolve(opts["state-dir"]);
  const files = dataPlaneFiles(stateDir);
  // One data plane per state dir: a second one would fight the first over every front's port and MQTT session.
  const other = await pingDataPlane(files.socket).catch(() => undefined);
  if (other) {
    log(`another data plane (pid ${other.pid}, protocol ${other.protocol}) already serves ${stateDir}; exiting`);
    process.exit(3);
  }
  fs.rmSync(files.socket, { force: true }); // left by a data plane that was killed

  const fronts = new FrontRegistry({
    host: opts.host, spoolRoot: stateDir, spoolFsync: opts["spool-fsync"],
    ...(opts["mqtt-url"] ? { mqttUrl: opts["mqtt-url"] } : {}),
    log: (instanceId, line) => log(`[${instanceId}] ${line}`),
  });
  reportSpools(stateDir);
  const info: DataPlaneInfo = { pid: process.pid, version: DATA_PLANE_PROTOCOL, startedAt: new Date().toISOString(), bridgeVersion: BRIDGE_VERSION };

  let stopping: Promise<void> | undefined;
  const stop = (why: string) => (stopping ??= (async () => {
    log(`${why}: closing every front`);
    server.close();
    await fronts.close().catch((err: unknown) => log(`fronts did not close cleanly: ${String(err)}`));
    fs.rmSync(files.socket, { force: true });
    fs.rmSync(files.info, { force: true });
    log("stopped");
    process.exit(0);
  })());

  // Holds a bridge opened are released once no bridge holds the lease (lease.ts).
  const lease = new HoldLease(fronts, log);
  const server = createControlServer({ fronts, info, lease, ...(opts["mqtt-url"] ? { mqttUrl: opts["mqtt-url"] } : {}), onShutdown: () => void stop("asked to stop"), log });
  // Before the socket: whoever can reach the socket can also read who answers there.
  await writeFileAtomic(files.info, JSON.stringify(info));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(files.socket, () => { server.off("error", reject); resolve(); });
  });
  fs.chmodSync(files.socket, 0o600);
  log(`serving ${stateDir} (protocol ${DATA_PLANE_PROTOCOL}, bridge ${BRIDGE_VERSION}, MQTT ${opts["mqtt-url"] ?? "off"}, spool fsync ${opts["spool-fsync"] ? "on" : "off"})`);

  // With no front left (every instance destroyed, or a bridge that stopped for a restart with none) there
  // is nothing to keep serving: it goes after a quiet while, and the next bridge starts one when it needs one.
  let lastRequest = Date.now();
  server.on("request", () => { lastRequest = Date.now(); });
  setInterval(() => {
    if (fronts.instanceIds().length === 0 && Date.now() - lastRequest > IDLE_EXIT_MS) void stop(`no fronts for ${IDLE_EXIT_MS / 1000} s`);
  }, 1_000).unref();

  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  // A bug must not leave a half-working front door: exit, and the bridge starts a fresh data plane
  // on its next call (held MQTT work is in the spool; held HTTP requests see their connection close).
  process.on("uncaughtException", (err) => { log(`uncaught: ${err.stack ?? err.message}`); process.exit(70); });
}

/** Held work an earlier data plane left in the spools: kept, replayed at the instance's next hand-over. */
function reportSpools(stateDir: string): void {
  for (const entry of fs.readdirSync(stateDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    for (const name of ["hold.spool", "switch.spool"]) {
      const size = fs.statSync(path.join(stateDir, entry.name, name), { throwIfNoEntry: false })?.size ?? 0;
      if (size > 0) log(`[${entry.name}] ${name} holds ${size} bytes of held work from before; kept for the instance's next hand-over`);
    }
  }
}
