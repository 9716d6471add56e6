import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

// `npm test` runs both layers: node (test/vitest.node.config.ts) and workers (test/vitest.workers.config.ts).
export default defineConfig({
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    projects: ["test/vitest.node.config.ts", "test/vitest.workers.config.ts"],
  },
});
