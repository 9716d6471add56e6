import { describe, it, expect, beforeAll, afterAll, beforeEach } from "vitest";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { Client, Receiver, QstashError } from "@upstash/qstash";
import { defaultRetryBackoff, startQStashEmulator, type QStashEmulator } from "../../dev/qstash/index.ts";
import { freePort } from "../../dev/ports.ts";

const TOKEN = "test-qstash-token";
const KEYS = { currentSigningKey: "sig_test_current", nextSigningKey: "sig_test_next" };
const fastBackoff = () => 25;

interface Delivery {
  path: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
  status: number;
}

/** A destination that records every request and answers with whatever `respond` says. */
class Destination {
  readonly deliveries: Delivery[] = [];
  /** Status (or status + headers) for the n-th request to this path. */
  respond: (d: Omit<Delivery, "status">, n: number) => number | { status: number; headers: Record<string, string> } | "hang" = () => 200;
  private waiters: (() => void)[] = [];
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const d = { path: req.url ?? "/", method: req.method ?? "", headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() };
      const answer = this.respond(d, this.deliveries.filter((x) => x.path === d.path).length);
      if (answer === "hang") {
        this.deliveries.push({ ...d, status: 0 });
        for (const w of this.waiters.splice(0)) w();
        return;
      }
      const { status, headers } = typeof answer === "number" ? { status: answer, headers: {} } : answer;
      this.deliveries.push({ ...d, status });
      res.writeHead(status, { "content-type": "text/plain", ...headers }).end(status < 300 ? "ok" : `failing on purpose (${status})`);
      for (const w of this.waiters.splice(0)) w();
    });
  });
  port = 0;

  async start() {
    this.port = await freePort();
    await new Promise<void>((r) => this.server.listen(this.port, "127.0.0.1", r));
  }
  url(p: string) {
    return `http://127.0.0.1:${this.port}${p}`;
  }
  at(p: string) {
    return this.deliveries.filter((d) => d.path === p);
  }
  /** Waits until `p` has seen `n` requests (or fails after `ms`). */
  async waitFor(p: string, n: number, ms = 5000): Promise<Delivery[]> {
    const deadline = Date.now() + ms;
    while (this.at(p).length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} request(s) to ${p}; got ${this.at(p).length}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
    return this.at(p);
  }
  close() {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeAllConnections();
    return closed;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const header = (d: Delivery, name: string) => d.headers[name.toLowerCase()] as string | undefined;

describe("QStash emulator with the official @upstash/qstash client", () => {
  let emu: QStashEmulator;
  let client: Client;
  const dest = new Destination();
  const receiver = new Receiver(KEYS);
  const logs: string[] = [];

  beforeAll(async () => {
    await dest.start();
    emu = await startQStashEmulator({ port: await freePort(), token: TOKEN, ...KEYS, retryBackoff: fastBackoff, onLog: (l) => logs.push(l) });
    client = new Client({ baseUrl: emu.url, token: TOKEN, retry: false });
  });
  afterAll(async () => {
    await emu?.close();
    await dest.close();
  });
  beforeEach(() => {
    dest.respond = () => 200;
  });

  it("delivers publishJSON signed so that Receiver.verify accepts it, and rejects a tampered body", async () => {
    const res = await client.publishJSON({
      url: dest.url("/hooks/deploy?fleet=7"),
      body: { instance: "nr-1", action: "deploy" },
      headers: { "X-Fleet-Id": "fleet-7" },
    });
    expect(res.messageId).toMatch(/^msg_/);

    const [d] = await dest.waitFor("/hooks/deploy?fleet=7", 1);
    expect(d!.method).toBe("POST");
    expect(JSON.parse(d!.body)).toEqual({ instance: "nr-1", action: "deploy" });
    expect(header(d!, "content-type")).toBe("application/json");
    expect(header(d!, "x-fleet-id")).toBe("fleet-7");
    expect(header(d!, "upstash-message-id")).toBe(res.messageId);
    expect(header(d!, "upstash-retried")).toBe("0");
    // Client-side headers that are not Upstash-Forward-* must not leak to the destination.
    expect(Object.keys(d!.headers).filter((k) => k.startsWith("upstash-telemetry") || k === "authorization")).toEqual([]);

    const signature = header(d!, "upstash-signature")!;
    const url = dest.url("/hooks/deploy?fleet=7");
    await expect(receiver.verify({ signature, body: d!.body, url })).resolves.toBe(true);
    await expect(receiver.verify({ signature, body: d!.body.replace("deploy", "delete"), url })).rejects.toThrow(/body hash does not match/);
    await expect(receiver.verify({ signature, body: d!.body, url: dest.url("/elsewhere") })).rejects.toThrow(/invalid subject/);
    const stranger = new Receiver({ currentSigningKey: "sig_other", nextSigningKey: "sig_other2" });
    await expect(stranger.verify({ signature, body: d!.body })).rejects.toThrow(/signature/);
  });

  it("honours Upstash-Delay, shows the pending message, and can cancel one", async () => {
    const t0 = Date.now();
    const { messageId } = await client.publish({ url: dest.url("/delayed"), body: "later", delay: 1 });
    const cancelled = await client.publish({ url: dest.url("/cancelled"), body: "never", delay: 1 });

    const pending = await client.messages.get(messageId);
    expect(pending).toMatchObject({ messageId, url: dest.url("/delayed"), body: "later", maxRetries: 3 });
    expect(pending.notBefore).toBeGreaterThanOrEqual(t0 + 1000 - 5);
    await expect(client.messages.cancel(cancelled.messageId)).resolves.toEqual({ cancelled: 1 });

    await sleep(300);
    expect(dest.at("/delayed")).toHaveLength(0);
    const [d] = await dest.waitFor("/delayed", 1, 3000);
    expect(d!.at - t0).toBeGreaterThanOrEqual(1000);
    expect(d!.body).toBe("later");
    await emu.idle();
    await sleep(100);
    expect(dest.at("/cancelled")).toHaveLength(0);
    // Delivered messages leave the system, as in QStash.
    await expect(client.messages.get(messageId)).rejects.toMatchObject({ status: 404 });
  });

  it("retries a failing destination with Upstash-Retried 0,1,2 until it succeeds once", async () => {
    dest.respond = (_d, n) => (n < 2 ? 500 : 200);
    const { messageId } = await client.publishJSON({ url: dest.url("/flaky"), body: { n: 1 } });
    const got = await dest.waitFor("/flaky", 3);
    await emu.idle();
    await sleep(100);
    const all = dest.at("/flaky");
    expect(all.map((d) => header(d, "upstash-retried"))).toEqual(["0", "1", "2"]);
    expect(all.map((d) => d.status)).toEqual([500, 500, 200]);
    expect(new Set(got.map((d) => header(d, "upstash-message-id")))).toEqual(new Set([messageId]));
    // Every retry carries a fresh, valid signature.
    for (const d of all) await expect(receiver.verify({ signature: header(d, "upstash-signature")!, body: d.body })).resolves.toBe(true);
    expect((await client.dlq.listMessages()).messages.filter((m) => m.messageId === messageId)).toEqual([]);
  });

  it("moves a message that keeps failing to the DLQ, where it can be listed, retried and deleted", async () => {
    dest.respond = () => 503;
    const { messageId } = await client.publish({ url: dest.url("/broken"), body: "payload", retries: 2, headers: { "Content-Type": "text/plain" } });
    const other = await client.publish({ url: dest.url("/broken-too"), body: "x", retries: 0 });
    await dest.waitFor("/broken", 3);
    await dest.waitFor("/broken-too", 1);
    await emu.idle();
    expect(dest.at("/broken").map((d) => header(d, "upstash-retried"))).toEqual(["0", "1", "2"]);

    const { messages } = await client.dlq.listMessages();
    const entry = messages.find((m) => m.messageId === messageId);
    expect(entry).toMatchObject({ url: dest.url("/broken"), body: "payload", maxRetries: 2, responseStatus: 503, responseBody: "failing on purpose (503)" });
    expect(entry!.dlqId).toBeTruthy();
    expect(messages.find((m) => m.messageId === other.messageId)).toBeTruthy();
    const filtered = await client.dlq.listMessages({ filter: { url: dest.url("/broken-too") } });
    expect(filtered.messages.map((m) => m.messageId)).toEqual([other.messageId]);

    dest.respond = () => 200;
    const retried = await client.dlq.retry(entry!.dlqId);
    expect(retried.responses).toHaveLength(1);
    const again = await dest.waitFor("/broken", 4);
    expect(again[3]).toMatchObject({ status: 200, body: "payload" });
    expect(header(again[3]!, "upstash-message-id")).toBe(retried.responses[0]!.messageId);

    const otherEntry = (await client.dlq.listMessages()).messages.find((m) => m.messageId === other.messageId)!;
    await expect(client.dlq.delete(otherEntry.dlqId)).resolves.toEqual({ deleted: 1 });
    expect((await client.dlq.listMessages()).messages).toEqual([]);
  });

  it("lets Upstash-Retry-Delay, Retry-After and 489 non-retryable override the backoff", async () => {
    dest.respond = (_d, n) => (n < 2 ? 500 : 200);
    await client.publish({ url: dest.url("/linear"), body: "x", retryDelay: "100 * (1 + retried)" });
    const linear = await dest.waitFor("/linear", 3);
    // The emulator's own backoff is 25 ms here, so these gaps can only come from the expression.
    expect(linear[1]!.at - linear[0]!.at).toBeGreaterThanOrEqual(100);
    expect(linear[2]!.at - linear[1]!.at).toBeGreaterThanOrEqual(200);

    dest.respond = (_d, n) => (n === 0 ? { status: 429, headers: { "retry-after": "1" } } : 200);
    await client.publish({ url: dest.url("/rate-limited"), body: "x" });
    const limited = await dest.waitFor("/rate-limited", 2, 4000);
    expect(limited[1]!.at - limited[0]!.at).toBeGreaterThanOrEqual(1000);

    dest.respond = () => ({ status: 489, headers: { "upstash-nonretryable-error": "true" } });
    const { messageId } = await client.publish({ url: dest.url("/poison"), body: "x", retries: 3 });
    await dest.waitFor("/poison", 1);
    await emu.idle();
    await sleep(100);
    expect(dest.at("/poison")).toHaveLength(1);
    const dlq = await client.dlq.listMessages({ filter: { url: dest.url("/poison") } });
    expect(dlq.messages.map((m) => [m.messageId, m.responseStatus])).toEqual([[messageId, 489]]);
    await client.dlq.delete({ all: true });

    await expect(client.publish({ url: dest.url("/x"), body: "x", retryDelay: "rm -rf /" })).rejects.toMatchObject({ status: 400 });
  });

  it("uses QStash's documented default backoff", () => {
    expect(Math.round(defaultRetryBackoff(1) / 1000)).toBe(12);
    expect(Math.round(defaultRetryBackoff(2) / 1000)).toBe(148); // 2m28s
    expect(Math.round(defaultRetryBackoff(3) / 1000)).toBe(1808); // 30m8s
    expect(defaultRetryBackoff(5)).toBe(86_400_000);
  });

  it("manages schedules and delivers a signed message when one fires", async () => {
    const { scheduleId } = await client.schedules.create({
      destination: dest.url("/cron/health"),
      cron: "*/5 * * * *",
      scheduleId: "fleet-health",
      body: JSON.stringify({ check: "all" }),
      retries: 1,
    });
    expect(scheduleId).toBe("fleet-health");
    const generated = await client.schedules.create({ destination: dest.url("/cron/other"), cron: "0 3 * * *" });
    expect(generated.scheduleId).toMatch(/^scd_/);

    const list = await client.schedules.list();
    expect(list.map((s) => s.scheduleId).sort()).toEqual([generated.scheduleId, "fleet-health"].sort());
    const s = await client.schedules.get("fleet-health");
    expect(s).toMatchObject({ scheduleId: "fleet-health", cron: "*/5 * * * *", destination: dest.url("/cron/health"), method: "POST", retries: 1, isPaused: false });
    expect(s.nextScheduleTime! % (5 * 60_000)).toBe(0);
    expect(s.nextScheduleTime!).toBeGreaterThan(Date.now());

    // Fire through the cron path: a tick at the next slot time.
    await emu.tick(new Date(s.nextScheduleTime!));
    const [d] = await dest.waitFor("/cron/health", 1);
    expect(JSON.parse(d!.body)).toEqual({ check: "all" });
    expect(header(d!, "upstash-schedule-id")).toBe("fleet-health");
    await expect(receiver.verify({ signature: header(d!, "upstash-signature")!, body: d!.body, url: dest.url("/cron/health") })).resolves.toBe(true);
    const after = await client.schedules.get("fleet-health");
    expect(after.lastScheduleTime).toBe(s.nextScheduleTime);
    expect(after.nextScheduleTime).toBe(s.nextScheduleTime! + 5 * 60_000);
    expect(Object.values(after.lastScheduleStates ?? {})).toEqual(["SUCCESS"]);

    // A paused schedule does not fire on its slot; fireSchedule still forces one.
    await client.schedules.pause({ schedule: "fleet-health" });
    expect((await client.schedules.get("fleet-health")).isPaused).toBe(true);
    await emu.tick(new Date(after.nextScheduleTime! + 60_000));
    expect(dest.at("/cron/health")).toHaveLength(1);
    await client.schedules.resume({ schedule: "fleet-health" });
    emu.fireSchedule("fleet-health");
    await dest.waitFor("/cron/health", 2);

    await client.schedules.delete("fleet-health");
    await client.schedules.delete(generated.scheduleId);
    await expect(client.schedules.get("fleet-health")).rejects.toMatchObject({ status: 404 });
    expect(await client.schedules.list()).toEqual([]);
  });

  it("deduplicates by id and publishes batches", async () => {
    const a = await client.publishJSON({ url: dest.url("/dedup"), body: { v: 1 }, deduplicationId: "deploy-42" });
    const b = await client.publishJSON({ url: dest.url("/dedup"), body: { v: 2 }, deduplicationId: "deploy-42" });
    expect(b.messageId).toBe(a.messageId);
    const batch = await client.batchJSON([
      { url: dest.url("/batch/1"), body: { i: 1 } },
      { url: dest.url("/batch/2"), body: { i: 2 }, method: "PUT" },
    ]);
    expect(batch).toHaveLength(2);
    await dest.waitFor("/batch/1", 1);
    const [put] = await dest.waitFor("/batch/2", 1);
    expect(put!.method).toBe("PUT");
    await emu.idle();
    expect(dest.at("/dedup").map((d) => JSON.parse(d.body))).toEqual([{ v: 1 }]);
  });

  it("rejects a wrong token, non-loopback destinations and bad input with JSON errors", async () => {
    const schedulesBefore = emu.stats().schedules;
    const intruder = new Client({ baseUrl: emu.url, token: "wrong", retry: false });
    await expect(intruder.publishJSON({ url: dest.url("/x"), body: {} })).rejects.toMatchObject({ status: 401 });
    await expect(intruder.schedules.list()).rejects.toBeInstanceOf(QstashError);

    const offHost = await client.publishJSON({ url: "http://example.com/hook", body: {} }).catch((e: QstashError) => e);
    expect(offHost).toBeInstanceOf(QstashError);
    expect((offHost as QstashError).status).toBe(400);
    expect(JSON.parse((offHost as QstashError).message).error).toMatch(/loopback/);
    await expect(client.publishJSON({ url: "http://10.0.0.1:8787/hook", body: {} })).rejects.toMatchObject({ status: 400 });
    await expect(client.schedules.create({ destination: "https://api.example.org/x", cron: "* * * * *" })).rejects.toMatchObject({ status: 400 });

    await expect(client.publish({ url: dest.url("/x"), body: "b", delay: "soon" as "1s" })).rejects.toMatchObject({ status: 400 });
    await expect(client.schedules.create({ destination: dest.url("/x"), cron: "61 * * * *" })).rejects.toMatchObject({ status: 400 });
    await expect(client.schedules.create({ destination: dest.url("/x"), cron: "* * *" })).rejects.toMatchObject({ status: 400 });
    await expect(client.messages.get("msg_missing")).rejects.toMatchObject({ status: 404 });

    const unknown = await fetch(`${emu.url}/v2/nope`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toHaveProperty("error");
    const keys = await fetch(`${emu.url}/v2/keys`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await keys.json()).toEqual({ current: KEYS.currentSigningKey, next: KEYS.nextSigningKey });
    expect(emu.stats().schedules).toBe(schedulesBefore);
    expect(dest.at("/x")).toHaveLength(0);
  });
});

describe("QStash emulator persistence", () => {
  it("keeps schedules and undelivered messages across a restart", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "qstash-emu-"));
    const stateFile = path.join(dir, "state", "qstash.json");
    const dest = new Destination();
    await dest.start();
    const port = await freePort();
    const opts = { port, token: TOKEN, ...KEYS, stateFile, retryBackoff: fastBackoff };
    let emu = await startQStashEmulator(opts);
    try {
      const client = new Client({ baseUrl: emu.url, token: TOKEN, retry: false });
      await client.schedules.create({ destination: dest.url("/nightly"), cron: "0 2 * * *", scheduleId: "nightly-backup", body: "backup" });
      const { messageId } = await client.publish({ url: dest.url("/later"), body: "\u00e9t\u00e9 survives", delay: "1h" });
      // A delivery still on the wire at shutdown is cut short and kept, not lost.
      dest.respond = (d) => (d.path === "/slow" ? "hang" : 200);
      await client.publish({ url: dest.url("/slow"), body: "in flight" });
      await dest.waitFor("/slow", 1);
      const t0 = Date.now();
      await emu.close();
      expect(Date.now() - t0).toBeLessThan(1000);
      dest.respond = () => 200;
      expect(fs.existsSync(stateFile)).toBe(true);
      expect(fs.readdirSync(path.dirname(stateFile))).toEqual(["qstash.json"]);

      emu = await startQStashEmulator(opts);
      const schedules = await client.schedules.list();
      expect(schedules.map((s) => s.scheduleId)).toEqual(["nightly-backup"]);
      expect(schedules[0]).toMatchObject({ cron: "0 2 * * *", destination: dest.url("/nightly"), body: "backup" });
      await expect(client.messages.get(messageId)).resolves.toMatchObject({ url: dest.url("/later"), body: "\u00e9t\u00e9 survives" });
      const [redelivered] = (await dest.waitFor("/slow", 2)).slice(1);
      expect(redelivered).toMatchObject({ body: "in flight", status: 200 });

      // Jump the clock past the delay: the restored message is delivered, signed, once.
      await emu.tick(new Date(Date.now() + 2 * 3_600_000));
      const [d] = await dest.waitFor("/later", 1);
      expect(d!.body).toBe("\u00e9t\u00e9 survives");
      await expect(new Receiver(KEYS).verify({ signature: header(d!, "upstash-signature")!, body: d!.body })).resolves.toBe(true);
      expect(emu.stats().pending).toBe(0);
    } finally {
      await emu.close();
      await dest.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
