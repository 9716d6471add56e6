/**
 * Runs in Node before the workerd suites: a throwaway Postgres (embedded, or
 * a fresh database on REDFORGE_DATABASE_URL's server), migrated, behind the
 * Neon relay; and the QStash emulator. The Worker under test gets their
 * addresses as bindings.
 */
import fs from "node:fs/promises";
import pg from "pg";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { loadConfig, type RunningService } from "../dev/config.ts";
import { freePort, isReachable } from "../dev/ports.ts";
import { startEmbeddedPostgres } from "../dev/postgres.ts";
import { startNeonRelay } from "../dev/neon-relay.ts";
import { startStallWatch, stallLogTo } from "../dev/stallWatch.ts";
import { keepExitCode } from "./harness/keepExitCode.ts";
import { startQStashEmulator } from "../dev/qstash/index.ts";
import { startUpstashRelay } from "../dev/upstash-relay.ts";
import { migrate } from "../db/migrate.ts";
import { freshDatabase } from "./harness/freshDatabase.ts";

export default async function setup(project: TestProject) {
  keepExitCode();
  const cfg = loadConfig();
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-workers-"));
  // As root, embedded Postgres runs as "postgres", which must be able to enter the dir.
  await fs.chmod(tmp, 0o755);
  const running: RunningService[] = [];
  let dropDatabase = async () => {};
  const stop = async () => {
    for (const s of running.reverse()) await s.close().catch(() => {});
    await dropDatabase();
    await fs.rm(tmp, { recursive: true, force: true });
  };
  try {
    let databaseUrl: string;
    if (cfg.postgres.url) {
      const fresh = await freshDatabase(cfg.postgres.url, "redforge_workers");
      databaseUrl = fresh.url;
      dropDatabase = fresh.drop;
    } else {
      const server = await startEmbeddedPostgres(cfg, { dataDir: path.join(tmp, "pg"), port: await freePort() });
      running.push(server);
      databaseUrl = server.connectionString;
      // A throwaway cluster needs no durability across an OS crash: no fsync per commit (every
      // API call commits its audit row). All three settings take effect on reload.
      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      try {
        for (const setting of ["fsync", "synchronous_commit", "full_page_writes"]) await admin.query(`ALTER SYSTEM SET ${setting} = off`);
        await admin.query("SELECT pg_reload_conf()");
      } finally {
        await admin.end();
      }
    }
    await migrate(databaseUrl);
    // A hung test leaves behind which statement waited on what (REDFORGE_STALL_LOG, docs/ci.md).
    const watch = startStallWatch({ databaseUrl, report: stallLogTo("workers", (l) => process.stderr.write(l + "\n")) });
    running.push({ name: "stall watch", url: "", close: () => watch.close() });
    const relayPort = await freePort();
    running.push(await startNeonRelay({ port: relayPort }));
    const qstashPort = await freePort();
    running.push(await startQStashEmulator({
      port: qstashPort, token: cfg.qstash.token,
      currentSigningKey: cfg.qstash.currentSigningKey, nextSigningKey: cfg.qstash.nextSigningKey,
    }));
    // Where a redis-server is reachable, the Upstash client itself is exercised through the relay.
    let upstashRelayUrl = "";
    const redisUrl = cfg.redisUrl ?? "redis://127.0.0.1:6379";
    const redis = new URL(redisUrl);
    if (await isReachable(Number(redis.port || 6379), redis.hostname)) {
      const port = await freePort();
      running.push(await startUpstashRelay({ port, redisUrl, token: cfg.upstashToken }));
      upstashRelayUrl = `http://127.0.0.1:${port}`;
    }
    project.provide("upstashRelay", { url: upstashRelayUrl, token: cfg.upstashToken });
    project.provide("workerBindings", {
      ENVIRONMENT: "development",
      DATABASE_URL: databaseUrl,
      NEON_LOCAL_PROXY: `127.0.0.1:${relayPort}`,
      JWT_SECRET: cfg.worker.jwtSecret,
      REDFORGE_ADMIN_PASSWORD: cfg.worker.adminPassword,
      REDFORGE_ENCRYPTION_KEY: cfg.worker.encryptionKey,
      QSTASH_URL: `http://127.0.0.1:${qstashPort}`,
      QSTASH_TOKEN: cfg.qstash.token,
      QSTASH_CURRENT_SIGNING_KEY: cfg.qstash.currentSigningKey,
      QSTASH_NEXT_SIGNING_KEY: cfg.qstash.nextSigningKey,
      // Alert tests receive notifications on loopback (core/alerts/channelUrl.ts).
      REDFORGE_ALERT_CHANNELS_ALLOW_PRIVATE: "true",
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return stop;
}
