/** Every code a bridge command can fail with is explained to operators in docs/bridge.md, and nothing there is stale. */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { BRIDGE_ERROR_CODES } from "../../bridge/errors.ts";

describe("bridge error codes", () => {
  it("docs/bridge.md's table lists exactly BRIDGE_ERROR_CODES", async () => {
    const doc = await readFile("docs/bridge.md", "utf8");
    const section = doc.slice(doc.indexOf("## Errors"), doc.indexOf("\n## ", doc.indexOf("## Errors") + 1));
    const documented = [...section.matchAll(/^\| ((?:`[a-z_]+`(?:, )?)+) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([a-z_]+)`/g)].map((c) => c[1]!));
    expect([...documented].sort()).toEqual([...BRIDGE_ERROR_CODES].sort());
  });
});
