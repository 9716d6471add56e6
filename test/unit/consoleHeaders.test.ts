import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CONSOLE_CSP } from "../../functions/middleware/contentSecurityPolicy.ts";

// The asset router serves the console without the Worker, so its headers come from _headers (copied into the build by Vite).
describe("the console's response headers", () => {
  it("app/public/_headers gives every console path CONSOLE_CSP, nosniff and no framing", () => {
    const text = readFileSync(new URL("../../app/public/_headers", import.meta.url), "utf8");
    const rules = text.split("\n").filter((l) => !l.startsWith("#"));
    expect(rules[0]).toBe("/*");
    expect(rules).toContain(`  Content-Security-Policy: ${CONSOLE_CSP}`);
    expect(rules).toContain("  X-Content-Type-Options: nosniff");
    expect(rules).toContain("  X-Frame-Options: DENY");
  });
});
