import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

// Nothing in a test run may reach beyond loopback (wrangler's metrics, version check, cf fetch).
for (const [k, v] of Object.entries({
  WRANGLER_SEND_METRICS: "false", WRANGLER_SEND_ERROR_REPORTS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true",
})) process.env[k] ??= v;

// Unit and route tests inside workerd. The global setup (Node) starts
// embedded Postgres behind the Neon relay and the QStash emulator; the Worker
// reaches them exactly as in `npm start`, through the production clients.
export default defineConfig({
  plugins: [
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
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
