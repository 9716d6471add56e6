/** Our Standard Webhooks code against the scheme's reference implementation (`standardwebhooks`). */
import { describe, expect, it } from "vitest";
import { Webhook } from "standardwebhooks";
import { signWebhook, verifyWebhook, webhookHeaders } from "../../protocol/webhooks.ts";

const secret = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;
const other = `whsec_${btoa("fedcba9876543210fedcba9876543210")}`;
const body = JSON.stringify({ commandId: "cmd_1", status: "ok", result: { rev: "abc" } });

const asHeaders = (h: Record<string, string>) => new Headers(h);

describe("Standard Webhooks", () => {
  it("signatures made by the reference implementation verify", async () => {
    const ref = new Webhook(secret);
    const now = new Date();
    const id = "msg_ref_1";
    const signature = ref.sign(id, now, body);
    const check = await verifyWebhook([secret], asHeaders({
      "webhook-id": id, "webhook-timestamp": String(Math.floor(now.getTime() / 1000)), "webhook-signature": signature,
    }), body);
    expect(check).toEqual({ ok: true, id, timestamp: Math.floor(now.getTime() / 1000) });
  });

  it("signatures we make pass the reference verifier", async () => {
    const headers = await webhookHeaders(secret, body);
    expect(() => new Webhook(secret).verify(body, headers)).not.toThrow();
    expect(headers["webhook-signature"]).toBe(new Webhook(secret).sign(headers["webhook-id"], new Date(Number(headers["webhook-timestamp"]) * 1000), body));
  });

  it("a tampered body, a wrong secret or a forged signature fails", async () => {
    const headers = await webhookHeaders(secret, body);
    expect(await verifyWebhook([secret], asHeaders(headers), body.replace("ok", "error"))).toEqual({ ok: false, reason: "bad_signature" });
    expect(await verifyWebhook([other], asHeaders(headers), body)).toEqual({ ok: false, reason: "bad_signature" });
    expect(await verifyWebhook([secret], asHeaders({ ...headers, "webhook-signature": "v1,AAAA" }), body)).toMatchObject({ ok: false });
    expect(await verifyWebhook([secret], asHeaders({ ...headers, "webhook-signature": "v2," + headers["webhook-signature"].slice(3) }), body)).toMatchObject({ ok: false });
    // The reference agrees.
    expect(() => new Webhook(other).verify(body, headers)).toThrow();
  });

  it("a timestamp more than 5 minutes off is stale, both ways", async () => {
    const old = await webhookHeaders(secret, body, "msg_old", Date.now() - 6 * 60_000);
    const future = await webhookHeaders(secret, body, "msg_future", Date.now() + 6 * 60_000);
    expect(await verifyWebhook([secret], asHeaders(old), body)).toEqual({ ok: false, reason: "stale" });
    expect(await verifyWebhook([secret], asHeaders(future), body)).toEqual({ ok: false, reason: "stale" });
    expect(() => new Webhook(secret).verify(body, old)).toThrow();
    const edge = await webhookHeaders(secret, body, "msg_edge", Date.now() - 4 * 60_000);
    expect((await verifyWebhook([secret], asHeaders(edge), body)).ok).toBe(true);
  });

  it("any of several signatures and any of several secrets may match (rotation)", async () => {
    const ts = Math.floor(Date.now() / 1000);
    const sigOld = await signWebhook(other, "msg_rot", ts, body);
    const sigNew = await signWebhook(secret, "msg_rot", ts, body);
    const h = asHeaders({ "webhook-id": "msg_rot", "webhook-timestamp": String(ts), "webhook-signature": `${sigOld} ${sigNew}` });
    expect((await verifyWebhook([secret], h, body)).ok).toBe(true);
    const single = asHeaders({ "webhook-id": "msg_rot", "webhook-timestamp": String(ts), "webhook-signature": sigOld });
    expect((await verifyWebhook([secret, other], single, body)).ok).toBe(true);
  });

  it("missing or malformed headers are rejected before any crypto", async () => {
    expect(await verifyWebhook([secret], asHeaders({}), body)).toEqual({ ok: false, reason: "missing_headers" });
    expect(await verifyWebhook([secret], asHeaders({ "webhook-id": "x", "webhook-timestamp": "yesterday", "webhook-signature": "v1,AA==" }), body))
      .toEqual({ ok: false, reason: "bad_timestamp" });
  });
});
