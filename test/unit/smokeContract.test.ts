import { describe, expect, it } from "vitest";
import { contractViolation } from "../../bridge/deploy/smoke.ts";

// The smoke check's `contract: true` rule: the seed's msg_output, or the contract flows used before it.
describe("smoke check: message contract", () => {
  const metadata = { flowId: "f1", timestamp: "2026-12-02T10:00:00Z", source: "support-agent", contentType: "json" };
  it("passes a msg_output answer and an old-contract answer", () => {
    expect(contractViolation({ payload: { a: 1 }, metadata: { ...metadata, status: "success" }, error: null })).toBeUndefined();
    expect(contractViolation({ payload: 1, metadata: { flowId: "f1", timestamp: "2026-12-02T10:00:00Z", status: "completed" } })).toBeUndefined();
  });
  it("fails an answer that follows neither, naming what is wrong", () => {
    expect(contractViolation("text")).toBe("not an object");
    expect(contractViolation({ payload: 1, metadata: { ...metadata, status: "done" } })).toMatch(/status/);
    expect(contractViolation({ payload: 1 })).toMatch(/metadata/);
  });
});
