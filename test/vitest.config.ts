import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

// `npm test` runs both layers: node (test/vitest.node.config.ts) and workers (test/vitest.workers.config.ts).
// In one vitest they run one after the other: vitest groups projects by maxWorkers (node: two files
// at a time, workers: one) and runs the groups in turn. CI (.ci/run) runs the two configs as two
// processes side by side instead (docs/ci.md).
export default defineConfig({
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    projects: ["test/vitest.node.config.ts", "test/vitest.workers.config.ts"],
  },
});
