/**
 * The Dead letters page in a real Chromium against the real stack: a letter the
 * cluster's bridge forwarded (a signed batch, as the bridge sends it) is listed
 * and found by the instance filter; Replay asks the API, the row turns
 * pending, and when the bridge reports the outcome (its signed collect call)
 * the row shows it without a reload; Replay again needs a confirmation and
 * goes with ?force; a viewer sees the letter with no Replay button; axe-core
 * finds no serious or critical violation on the page, light or dark.
 */
import { createRequire } from "node:module";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { buildConsoleIfStale, launchChromium, signIn, watchFailures } from "../../scripts/console-browser.ts";
import { startConsoleWorld, type ConsoleWorld } from "../../scripts/console-seed.ts";

declare const window: unknown, document: unknown;

const WAIT = 60_000;
const VIEWER = { username: "dl-viewer", password: "viewer-password-123" };
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

let world: ConsoleWorld;
let browser: Browser;
const contexts: BrowserContext[] = [];

async function newPage(opts: { dark?: boolean; bypassCSP?: boolean } = {}): Promise<{ page: Page; failures: string[] }> {
  // Pages stay open until afterAll: @sparticuz/chromium runs --single-process, where closing the last page can end the browser.
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: "en-US", colorScheme: opts.dark ? "dark" : "light", bypassCSP: !!opts.bypassCSP });
  contexts.push(context);
  const page = await context.newPage();
  return { page, failures: watchFailures(page) };
}

async function signed(cluster: { id: string; webhookSecret: string }, path: string, body: unknown) {
  const text = JSON.stringify(body);
  const res = await fetch(`${world.stack.apiUrl}/api/webhooks/clusters/${cluster.id}${path}`, {
    method: "POST", body: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "content-type": "application/json" },
  });
  return { status: res.status, body: await res.json() as any };
}

beforeAll(async () => {
  await buildConsoleIfStale();
  [world, browser] = await Promise.all([startConsoleWorld("dead-letters-edge"), launchChromium()]);
  const viewer = await world.api.POST("/api/users", { body: { ...VIEWER, email: "dl-viewer@example.com", role: "viewer" } });
  if (!viewer.data) throw new Error(`viewer: ${JSON.stringify(viewer.error)}`);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

describe("dead letters in a browser", () => {
  it("a forwarded letter is listed, filtered by instance, replayed from the page, settled live, replayed again after a confirmation; a viewer cannot replay", async () => {
    // A cluster with no bridge of its own: the test speaks for it, as its bridge would.
    const cluster = (await world.api.POST("/api/clusters", { body: { name: "dlq-edge" } })).data!;
    const instance = (await world.api.POST("/api/instances", { body: { name: "dlq-agent", clusterId: cluster.id } })).data!;
    const other = (await world.api.POST("/api/instances", { body: { name: "dlq-other", clusterId: cluster.id } })).data!;
    const letter = (instanceId: string, flowId: string) => ({
      letterId: crypto.randomUUID().replaceAll("-", "").padEnd(64, "0"), instanceId, flowId, nodeRedFlow: "rfeh-tab",
      failedAt: new Date().toISOString(), error: { code: "target_unavailable", message: "connect ECONNREFUSED 127.0.0.1:9 (attempt 2 of 2)", attempts: 2 },
      input: { payload: { url: "http://127.0.0.1:9/agents/memory" }, metadata: { flowId, timestamp: new Date().toISOString() } },
    });
    const stored = await signed(cluster, "/dead-letters", { letters: [letter(instance.id, "wf-mine"), letter(other.id, "wf-other")] });
    expect(stored.status, JSON.stringify(stored.body)).toBe(202);
    const id = (await world.api.GET("/api/dead-letters", { params: { query: { instanceId: instance.id } } })).data!.items[0]!.id;

    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, { username: "admin", password: world.adminPassword }, WAIT);
    await page.getByRole("link", { name: "Dead letters" }).click();
    const table = page.getByTestId("dead-letter-list");
    await table.waitFor({ timeout: WAIT });
    await page.getByTestId("dl-instance").selectOption({ label: "dlq-agent" });
    await page.getByRole("button", { name: "Apply filters" }).click();
    await expect.poll(() => table.locator("tbody tr").count(), { timeout: WAIT }).toBe(1);
    const row = page.locator(`tr[data-letter="${id}"]`);
    await expect(row.textContent()).resolves.toContain("target_unavailable");
    await expect(row.getByTestId("replay-state").textContent()).resolves.toContain("not replayed");
    await page.evaluate(() => { (window as { __noReload?: boolean }).__noReload = true; });

    await row.getByRole("button", { name: "Replay", exact: true }).click();
    await expect.poll(() => row.getByTestId("replay-state").textContent(), { timeout: WAIT }).toContain("pending");
    expect(await row.getByRole("button").count(), "no button while the replay waits").toBe(0);

    // The bridge collects it (an mqtt target: the letter names no primitive) and reports a failure.
    const collected = await signed(cluster, "/dead-letters/replays", { results: [] });
    expect(collected.body.replays).toEqual([expect.objectContaining({ id, instanceId: instance.id, target: { kind: "mqtt", topic: `redforge/ingest/${instance.id}` } })]);
    await signed(cluster, "/dead-letters/replays", { results: [{ id, ok: false, code: "replay_unreachable", message: "the bus was down" }] });
    await expect.poll(() => row.getByTestId("replay-state").textContent(), { timeout: WAIT }).toContain("replay_unreachable: the bus was down");
    await expect(row.getByTestId("replay-state").textContent()).resolves.toContain("failed");
    expect(await page.evaluate(() => (window as { __noReload?: boolean }).__noReload)).toBe(true);

    // Again: only after the confirmation, and as a forced replay.
    await row.getByRole("button", { name: "Replay again" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Replay again" }).click();
    await expect.poll(() => row.getByTestId("replay-state").textContent(), { timeout: WAIT }).toContain("pending");
    const after = (await world.api.GET("/api/dead-letters", { params: { query: { instanceId: instance.id } } })).data!.items[0]!;
    expect(after).toMatchObject({ replayState: "pending", replayCount: 2 });

    // A viewer sees the letter and no Replay button.
    const viewer = await newPage();
    await signIn(viewer.page, world.stack.apiUrl, VIEWER, WAIT);
    await viewer.page.getByRole("link", { name: "Dead letters" }).click();
    const viewerRow = viewer.page.locator(`tr[data-letter="${id}"]`);
    await viewerRow.waitFor({ timeout: WAIT });
    await expect(viewerRow.textContent()).resolves.toContain("hidden");
    expect(await viewerRow.getByRole("button").count()).toBe(0);
    expect(failures).toEqual([]);
    expect(viewer.failures).toEqual([]);
  }, 300_000);

  it("axe-core finds no serious or critical violation on the Dead letters page, light or dark", async () => {
    const problems: string[] = [];
    for (const dark of [false, true]) {
      // axe is injected as a script, which the console's CSP (rightly) refuses: this context bypasses CSP.
      const { page } = await newPage({ dark, bypassCSP: true });
      await signIn(page, world.stack.apiUrl, { username: "admin", password: world.adminPassword }, WAIT);
      await page.goto(`${world.stack.apiUrl}/dead-letters`);
      await page.getByTestId("dead-letter-list").waitFor({ timeout: WAIT });
      await page.addScriptTag({ path: AXE });
      const violations = await page.evaluate(async () => {
        const axe = (window as { axe: { run: (ctx: unknown, o: object) => Promise<{ violations: { id: string; impact: string | null; nodes: { target: string[] }[] }[] }> } }).axe;
        const r = await axe.run(document, { resultTypes: ["violations"] });
        return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}) at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
      });
      for (const v of violations) problems.push(`${dark ? "dark" : "light"}: ${v}`);
    }
    expect(problems).toEqual([]);
  }, 180_000);
});
