import type { Env as WorkerEnv } from "../../core/env.ts";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
  }
}

declare module "vitest" {
  export interface ProvidedContext {
    workerBindings: Record<string, string>;
    /** url is empty when no redis-server was reachable. */
    upstashRelay: { url: string; token: string };
    /** test/vitest.workers.config.ts: wrangler.toml's date and the workerd the pool runs. */
    toolchain: { compatibilityDate: string; workerdVersion: string; workerdCompatibilityDate: string };
  }
}
