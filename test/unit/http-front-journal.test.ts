/**
 * Requests a killed data plane had accepted are the deployment's loss, and the product says so
 * (issue 12 (g), honest accounting): the HTTP front journals each request as accepted and as ended
 * (bridge/routing/httpFront.ts, RequestJournal), and the front that comes back on the same directory
 * counts accepted − ended as unanswered when the hold it was cut in resumes. Before, a host restart
 * reset those requests and `metrics.messagesLost` said 0. The kill is simulated by reading the
 * journal while the first front still runs: a kill leaves the file exactly so (page cache, no fsync).
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HttpFront } from "../../bridge/routing/httpFront.ts";

const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => { for (const c of cleanup.reverse()) await c(); });

/** An upstream that never answers: requests stay in flight, as inside a Node-RED at the moment of a kill. */
async function hangingUpstream(): Promise<string> {
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((_req, res) => { open.add(res); });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  cleanup.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function frontOn(dir: string, target: string): Promise<HttpFront> {
  const front = new HttpFront("127.0.0.1", { journalDir: dir });
  await front.listen(0);
  await front.setTarget(target);
  cleanup.push(() => front.close());
  return front;
}

const post = (url: string) => fetch(`${url}/work`, { method: "POST", body: "{}", signal: AbortSignal.timeout(20_000) }).then(() => "answered", () => "failed");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the HTTP front's request journal", () => {
  it("a front restarted inside a hold counts the requests its predecessor accepted and never answered", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-http-journal-"));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const upstream = await hangingUpstream();
    const first = await frontOn(dir, upstream);
    // Three in flight inside the instance, then the deployment's hold begins and two more wait at the front.
    const inFlight = [post(first.url), post(first.url), post(first.url)];
    await sleep(300);
    await first.hold();
    const held = [post(first.url), post(first.url)];
    await sleep(300);
    void inFlight; void held;

    // The host restarts: what the journal says now is what a kill leaves.
    const second = await frontOn(dir, upstream);
    const baseline = await second.counters();
    // Known without any baseline too (the bridge that drained died with the data plane): the hand-over reports it.
    expect(baseline.cutInHold).toBe(5);
    await second.hold(); // the restarted bridge drains again: the hold goes on
    const after = await second.counters();
    expect(after.unanswered! - baseline.unanswered!).toBe(5);
  });

  it("requests cut outside any hold are not a deployment's", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rf-http-journal-"));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const upstream = await hangingUpstream();
    const first = await frontOn(dir, upstream);
    void post(first.url);
    await sleep(300);
    const second = await frontOn(dir, upstream);
    await second.hold();
    expect(await second.counters()).toMatchObject({ unanswered: 0, cutInHold: 0 });
  });
});
