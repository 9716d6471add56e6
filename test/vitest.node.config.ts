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
    // Two files at a time: a suite spends most of its time waiting on its own stack (Node-RED
    // starting, deployments, polling), which leaves a 2-core box half idle when files run one
    // at a time. Every stack takes free ports and its own temp dirs (test/harness/testStack.ts),
    // so two never share anything but the CPU. `--maxWorkers=1` runs them one at a time again.
    fileParallelism: true,
    maxWorkers: 2,
    // The migrated Postgres cluster each stack copies instead of initdb + migrations (test/harness/pgTemplate.ts).
    globalSetup: ["test/node.globalSetup.ts"],
  },
});
