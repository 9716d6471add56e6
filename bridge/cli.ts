/**
 * `redforge-bridge` command-line parsing: flags and environment in, validated
 * options out, or a UsageError whose message tells the operator what to fix.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { fromBase64 } from "../protocol/encoding.ts";

export const USAGE = `Usage: redforge-bridge --cluster <id> --api <url> [options]

Connects this cluster to a RedForge control plane and runs its commands.

  --cluster <id>         cluster id (a UUID, shown when the cluster was registered)
  --api <url>            control plane base URL, e.g. https://redforge.example.com
  --secret-file <path>   file holding the cluster's webhook secret (whsec_...);
                         default: environment variable REDFORGE_CLUSTER_SECRET
  --driver <kind>        process | kubernetes (default: process)
  --state-dir <dir>      where the bridge keeps its state (default: .redforge/bridge/<cluster>)
  --node-package <path>  RedForge node package tarball for the instances
                         (default: packed from flows/node-package at start)
  --mqtt-url <url>       the cluster's MQTT bus, e.g. mqtt://127.0.0.1:1883 (or MQTT_URL);
                         without it deploy gates and MQTT work routing are off
  --no-broker-check      skip the start-up check that the broker queues enough QoS 1
                         messages for an offline session (a warning, never a refusal)
  --broker-check-minutes <n>
                         run that check again this often while the bridge runs (a broker
                         restarted with another queue limit); default 60, 0: only at start
  --spool-fsync          fsync each held MQTT message the data plane spools (survives a
                         power cut, not only a crash; one disk flush per message)
  --max-hold-seconds <n> a deployment's hold (work held while blue drains) that gets no
                         command from the control plane for this long is released to the
                         runtime that served (as a rollback would); default 120, 0: never
  --hold-lease-ms <n>    once the link to the control plane is down, a deployment's hold is
                         released to the serving runtime after this long (the data plane
                         does the same when it loses its bridge); default 250, 0: no lease
  -h, --help             show this help`;

export type DriverKind = "process" | "kubernetes";

export interface CliOptions {
  clusterId: string;
  api: string;
  secret: string;
  driver: DriverKind;
  stateDir: string;
  nodePackage?: string;
  /** The cluster's MQTT bus (gates, the MQTT front door, AI audit records). */
  mqttUrl?: string;
  /** fsync each spooled held MQTT message (process driver's data plane). */
  spoolFsync?: boolean;
  /** --no-broker-check sets it false. */
  brokerCheck?: boolean;
  /** --broker-check-minutes in ms. */
  brokerCheckEveryMs?: number;
  /** --max-hold-seconds in ms. */
  maxHoldMs?: number;
  /** --hold-lease-ms. */
  holdLeaseMs?: number;
  /** REDFORGE_CONTEXT_URL + REDFORGE_CONTEXT_TOKEN: the instances' shared context store (Upstash REST). */
  contextStore?: { url: string; token: string };
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Returns null for --help. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): CliOptions | null {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        cluster: { type: "string" }, api: { type: "string" }, "secret-file": { type: "string" },
        driver: { type: "string" }, "state-dir": { type: "string" }, "node-package": { type: "string" },
        "mqtt-url": { type: "string" }, "spool-fsync": { type: "boolean" }, "no-broker-check": { type: "boolean" }, "broker-check-minutes": { type: "string" }, "max-hold-seconds": { type: "string" }, "hold-lease-ms": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return null;
  const clusterId = requireCluster(values.cluster as string | undefined);
  const nodePackage = values["node-package"] as string | undefined;
  const mqttUrl = (values["mqtt-url"] as string | undefined) ?? env.MQTT_URL;
  return {
    clusterId,
    api: requireApi(values.api as string | undefined),
    secret: readSecret(values["secret-file"] as string | undefined, env),
    driver: requireDriver(values.driver as string | undefined),
    stateDir: path.resolve(cwd, (values["state-dir"] as string | undefined) ?? path.join(".redforge", "bridge", clusterId)),
    ...(nodePackage ? { nodePackage: requireFile(path.resolve(cwd, nodePackage), "--node-package") } : {}),
    ...(mqttUrl ? { mqttUrl: requireMqttUrl(mqttUrl) } : {}),
    ...(values["spool-fsync"] ? { spoolFsync: true } : {}),
    ...(values["no-broker-check"] ? { brokerCheck: false } : {}),
    ...(values["broker-check-minutes"] !== undefined ? { brokerCheckEveryMs: requireMinutes(values["broker-check-minutes"] as string, "--broker-check-minutes") * 60_000 } : {}),
    ...(values["max-hold-seconds"] !== undefined ? { maxHoldMs: requireSeconds(values["max-hold-seconds"] as string, "--max-hold-seconds") * 1000 } : {}),
    ...(values["hold-lease-ms"] !== undefined ? { holdLeaseMs: requireMs(values["hold-lease-ms"] as string, "--hold-lease-ms") } : {}),
    ...(env.REDFORGE_CONTEXT_URL ? { contextStore: requireContextStore(env.REDFORGE_CONTEXT_URL, env.REDFORGE_CONTEXT_TOKEN) } : {}),
  };
}

function requireContextStore(url: string, token: string | undefined): { url: string; token: string } {
  if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`REDFORGE_CONTEXT_URL must be the Upstash REST URL (https://…), got "${url}"`);
  if (!token) throw new UsageError("REDFORGE_CONTEXT_URL is set but REDFORGE_CONTEXT_TOKEN is not (the Upstash REST token)");
  return { url, token };
}

function requireSeconds(value: string, flag: string): number {
  if (!/^\d{1,7}$/.test(value)) throw new UsageError(`${flag} must be a whole number of seconds, got "${value}"`);
  return Number(value);
}

function requireMinutes(value: string, flag: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 10_080) throw new UsageError(`${flag} must be a whole number of minutes up to 10080 (a week), got "${value}"`);
  return Number(value);
}

function requireMs(value: string, flag: string): number {
  if (!/^\d{1,6}$/.test(value) || Number(value) > 600_000) throw new UsageError(`${flag} must be a whole number of milliseconds up to 600000, got "${value}"`);
  return Number(value);
}

function requireMqttUrl(value: string): string {
  if (!/^(mqtts?|wss?|tcp):\/\/[^/]+/.test(value)) throw new UsageError(`--mqtt-url must look like mqtt://host:1883, got "${value}"`);
  return value;
}

function requireCluster(value: string | undefined): string {
  if (!value) throw new UsageError("--cluster <id> is required (the cluster's UUID)");
  if (!z.uuid().safeParse(value).success) throw new UsageError(`--cluster must be the cluster's UUID, got "${value}"`);
  return value.toLowerCase();
}

function requireApi(value: string | undefined): string {
  if (!value) throw new UsageError("--api <url> is required (the control plane's base URL)");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--api is not a URL: "${value}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--api must be an http(s) URL, got "${value}"`);
  return url.href.replace(/\/+$/, "");
}

function requireDriver(value: string | undefined): DriverKind {
  const kind = value ?? "process";
  if (kind !== "process" && kind !== "kubernetes") throw new UsageError(`--driver must be "process" or "kubernetes", got "${kind}"`);
  return kind;
}

function readSecret(file: string | undefined, env: NodeJS.ProcessEnv): string {
  let secret: string;
  if (file) {
    try {
      secret = fs.readFileSync(file, "utf8").trim();
    } catch (err) {
      throw new UsageError(`cannot read --secret-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else {
    secret = (env.REDFORGE_CLUSTER_SECRET ?? "").trim();
    if (!secret) throw new UsageError("the cluster secret is required: pass --secret-file <path> or set REDFORGE_CLUSTER_SECRET");
  }
  const where = file ? `--secret-file ${file}` : "REDFORGE_CLUSTER_SECRET";
  if (!secret.startsWith("whsec_")) throw new UsageError(`${where} does not hold a cluster webhook secret (expected whsec_...)`);
  try {
    if (fromBase64(secret.slice("whsec_".length)).length < 16) throw new Error("too short");
  } catch {
    throw new UsageError(`${where}: the secret after whsec_ is not valid base64 of at least 16 bytes`);
  }
  return secret;
}

function requireFile(file: string, flag: string): string {
  if (!fs.existsSync(file)) throw new UsageError(`${flag}: ${file} does not exist`);
  return file;
}
