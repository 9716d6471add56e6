import { defineConfig } from "vitest/config";
import { fileURLToPath } from "node:url";

// `npm test` runs both layers: node (test/node.config.ts) and workers (test/workers.config.ts).
export default defineConfig({
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    projects: ["test/node.config.ts", "test/workers.config.ts"],
  },
});
