import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

// Node layer: the local stand-ins (tested with each service's official client)
// and the integration suites that drive the built Worker over HTTP.
export default defineConfig({
  test: {
    name: "node",
    root: fileURLToPath(new URL("..", import.meta.url)),
    include: ["test/unit/**/*.test.ts", "test/dev/**/*.test.ts", "test/integration/**/*.test.ts"],
    environment: "node",
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites start real servers; running files one at a time keeps a 2-core box honest.
    fileParallelism: false,
    // The migrated Postgres cluster each stack copies instead of initdb + migrations (test/harness/pgTemplate.ts).
    globalSetup: ["test/node.globalSetup.ts"],
  },
});
