import { afterEach, describe, expect, it, vi } from "vitest";
import { issueSessionToken, verifySessionToken } from "../../functions/auth/tokens.ts";

const SECRET = "s".repeat(32);
const claims = { sub: crypto.randomUUID(), username: "u", role: "admin" };

// verifySessionToken answers a token it has verified before from the isolate's memory: it must answer as verifying again.
describe("session token verification, answered again from the isolate's memory", () => {
  afterEach(() => vi.useRealTimers());

  it("refuses a token as expired once its exp passes, though it verified a moment before", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-12-04T16:00:00.000Z"));
    const { token } = await issueSessionToken(claims, SECRET, 60);
    expect(await verifySessionToken(token, SECRET)).toMatchObject({ ok: true, userId: claims.sub });
    expect(await verifySessionToken(token, SECRET)).toMatchObject({ ok: true, userId: claims.sub });
    vi.setSystemTime(new Date("2026-12-04T16:00:59.999Z"));
    expect(await verifySessionToken(token, SECRET)).toMatchObject({ ok: true });
    vi.setSystemTime(new Date("2026-12-04T16:01:00.000Z"));
    expect(await verifySessionToken(token, SECRET)).toEqual({ ok: false, reason: "expired" });
  });

  it("does not take a token verified under one secret as valid under another, nor a token that differs by one character", async () => {
    const { token } = await issueSessionToken(claims, SECRET, 60);
    expect(await verifySessionToken(token, SECRET)).toMatchObject({ ok: true });
    expect(await verifySessionToken(token, "t".repeat(32))).toEqual({ ok: false, reason: "invalid" });
    // A character inside the signature (the last one carries bits base64url ignores).
    const i = token.lastIndexOf(".") + 5;
    const forged = token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
    expect(await verifySessionToken(forged, SECRET)).toEqual({ ok: false, reason: "invalid" });
    expect(await verifySessionToken(token, SECRET)).toMatchObject({ ok: true, userId: claims.sub });
  });
});
