/**
 * A throwaway redis-server on a free loopback port with the Upstash REST relay
 * in front of it (dev/upstash-relay.ts), for tests of code that speaks Upstash
 * REST. Nothing is saved to disk. `available` is false when no redis-server
 * binary is installed (suites skip with a message then).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { freePort, isReachable } from "../../dev/ports.ts";
import { startUpstashRelay } from "../../dev/upstash-relay.ts";
import { until } from "./eventually.ts";

export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? "redis-server";
export const redisServerAvailable = spawnSync(REDIS_SERVER_BIN, ["--version"], { stdio: "ignore" }).status === 0;

export interface UpstashStandIn {
  /** The Upstash REST URL and token, as a bridge or an Upstash client takes them. */
  url: string;
  token: string;
  redisUrl: string;
  close(): Promise<void>;
}

export async function startUpstashStandIn(token = "test-context-token"): Promise<UpstashStandIn> {
  const port = await freePort();
  const child: ChildProcess = spawn(REDIS_SERVER_BIN, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await until("redis-server to listen", () => isReachable(port), {
      timeoutMs: 30_000, failIf: () => (child.exitCode !== null ? `redis-server exited with ${child.exitCode}` : undefined),
    });
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  const redisUrl = `redis://127.0.0.1:${port}`;
  const relay = await startUpstashRelay({ port: await freePort(), redisUrl, token });
  return {
    url: relay.url, token, redisUrl,
    async close() {
      await relay.close();
      child.kill("SIGTERM");
      await exited;
    },
  };
}
