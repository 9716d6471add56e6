import { inject } from "vitest";
import { describe, expect, it } from "vitest";

// Inside workerd: the runtime is the one wrangler.toml targets. The Node side
// (test/vitest.workers.config.ts) passes wrangler.toml's compatibility_date and the
// build date of the workerd the pool runs; a date past the build would make
// workerd fall back to an older date without failing.
describe("workerd toolchain", () => {
  it("runs the tests in workerd with the compatibility settings of wrangler.toml", () => {
    const { compatibilityDate, workerdCompatibilityDate, workerdVersion } = inject("toolchain");
    expect(navigator.userAgent).toBe("Cloudflare-Workers");
    expect(compatibilityDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(compatibilityDate <= workerdCompatibilityDate, `compatibility_date ${compatibilityDate} is past workerd ${workerdVersion}'s build`).toBe(true);
    const flags = (globalThis as { Cloudflare?: { compatibilityFlags?: Record<string, boolean> } }).Cloudflare?.compatibilityFlags;
    expect(flags).toBeDefined();
    // nodejs_compat from wrangler.toml; the plugin also turns on v2 (Node built-ins such as node:fs, node:http).
    expect(flags).toMatchObject({ nodejs_compat: true, nodejs_compat_v2: true });
    expect(process.versions.node).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
