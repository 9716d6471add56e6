import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import type { Plugin } from "vite";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const require = createRequire(import.meta.url);
const workerd = require("workerd/package.json") as { version: string };
const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(`${root}/wrangler.toml`, "utf8"))?.[1] ?? "";

// Nothing in a test run may reach beyond loopback (wrangler's metrics, version check, cf fetch).
for (const [k, v] of Object.entries({
  WRANGLER_SEND_METRICS: "false", WRANGLER_SEND_ERROR_REPORTS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true",
})) process.env[k] ??= v;

/**
 * The Workers plugin adds the workerd/worker/browser export conditions to the
 * top-level `resolve`, and since vitest 5 the global setup is imported through
 * the `__vitest__` environment, which inherits them: `ws` then resolves to its
 * browser stub ("WebSocketServer is not a constructor"). The global setup runs
 * in Node, so that environment keeps Node's conditions only.
 */
function nodeSideGlobalSetup(): Plugin {
  const workerOnly = new Set(["workerd", "worker", "browser"]);
  return {
    name: "redforge:node-side-global-setup",
    configEnvironment: {
      order: "post",
      handler(name, config) {
        if (name !== "__vitest__" || !config.resolve?.conditions) return;
        config.resolve.conditions = config.resolve.conditions.filter((c) => !workerOnly.has(c));
      },
    },
  };
}

// Unit and route tests inside workerd. The global setup (Node) starts
// embedded Postgres behind the Neon relay and the QStash emulator; the Worker
// reaches them exactly as in `npm start`, through the production clients.
export default defineConfig({
  plugins: [
    nodeSideGlobalSetup(),
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: `${root}/wrangler.toml` },
      miniflare: {
        bindings: inject("workerBindings"),
      },
    })),
  ],
  test: {
    name: "workers",
    root,
    include: ["test/workers/**/*.test.ts"],
    globalSetup: ["test/workers.globalSetup.ts"],
    provide: {
      // workerd 1.YYYYMMDD.n supports compatibility dates up to YYYY-MM-DD.
      toolchain: {
        compatibilityDate,
        workerdVersion: workerd.version,
        workerdCompatibilityDate: workerd.version.replace(/^1\.(\d{4})(\d{2})(\d{2})\..*$/, "$1-$2-$3"),
      },
    },
    // Room for a machine loaded by the node layer beside this one (a test that only passes when fast is
    // a defect); a request that hangs fails sooner, by name (helpers.ts `api`).
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One file at a time (on the 2-core CI box that was already vitest's default): every file
    // shares the global setup's database, and audit.test.ts / auditBatch.test.ts break the audit
    // chain for a moment while others verify it. CI runs this layer beside the node layer
    // instead (.ci/run, docs/ci.md).
    fileParallelism: false,
  },
});
