/**
 * An alert in a real Chromium against the real stack: with the Alerts page open, an instance
 * fails (its cluster's signed report, as a crashed Node-RED's bridge sends it), the evaluation
 * schedule fires (the QStash emulator), and the alert appears on the page live from
 * /ws/fleet `fleet:alert`, without a reload; acknowledging it from the page is what the API
 * then records, and a viewer sees the alert with no Acknowledge button.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { buildConsoleIfStale, launchChromium, signIn, watchFailures } from "../../scripts/console-browser.ts";
import { startConsoleWorld, type ConsoleWorld } from "../../scripts/console-seed.ts";
import { eventually } from "../harness/eventually.ts";

declare const window: unknown;

const WAIT = 60_000;
const VIEWER = { username: "alerts-viewer", password: "viewer-password-123" };

let world: ConsoleWorld;
let browser: Browser;
const contexts: BrowserContext[] = [];

async function newPage(): Promise<{ page: Page; failures: string[] }> {
  // Pages stay open until afterAll: @sparticuz/chromium runs --single-process, where closing the last page can end the browser.
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: "en-US" });
  contexts.push(context);
  const page = await context.newPage();
  return { page, failures: watchFailures(page) };
}

beforeAll(async () => {
  await buildConsoleIfStale();
  [world, browser] = await Promise.all([startConsoleWorld("alerts-edge"), launchChromium()]);
  const viewer = await world.api.POST("/api/users", { body: { ...VIEWER, email: "alerts-viewer@example.com", role: "viewer" } });
  if (!viewer.data) throw new Error(`viewer: ${JSON.stringify(viewer.error)}`);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

describe("alerts in a browser", () => {
  it("an alert caused through the API appears live on the Alerts page and is acknowledged from it", async () => {
    // A cluster with no bridge of its own: the test speaks for it, as its bridge would.
    const cluster = (await world.api.POST("/api/clusters", { body: { name: "alerting-edge" } })).data!;
    const instance = (await world.api.POST("/api/instances", { body: { name: "alerting-agent", clusterId: cluster.id } })).data!;
    const rule = await world.api.POST("/api/alerts/rules", { body: { team: instance.team, name: "agent-down", kind: "instance_down", severity: "critical" } });
    expect(rule.response.status, JSON.stringify(rule.error)).toBe(201);

    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, { username: "admin", password: world.adminPassword }, WAIT);
    await page.getByRole("link", { name: "Alerts" }).click();
    const list = page.getByTestId("alerts-list");
    await expect.poll(() => list.getByTestId("live").textContent(), { timeout: WAIT }).toBe("live");
    // The socket can say live before the first page of alerts has arrived: wait for the empty state itself.
    await expect.poll(() => list.textContent(), { timeout: WAIT }).toContain("Nothing is firing.");
    await page.evaluate(() => { (window as { __noReload?: boolean }).__noReload = true; });

    // The bridge's report of a crashed runtime, signed with the cluster's secret; then the minute's evaluation.
    const report = JSON.stringify({ type: "instance.status", instanceId: instance.id, state: "failed", reason: "killed by hand" });
    const signed = await fetch(`${world.stack.apiUrl}/api/webhooks/clusters/${cluster.id}`, {
      method: "POST", body: report, headers: { ...(await webhookHeaders(cluster.webhookSecret, report)), "content-type": "application/json" },
    });
    expect(signed.status).toBeLessThan(300);
    world.stack.qstash.fireSchedule("redforge-alerts-evaluate");
    const alert = await eventually(async () => {
      await world.stack.qstash.tick();
      const items = (await world.api.GET("/api/alerts", { params: { query: { kind: "instance_down" } } })).data?.items ?? [];
      return items.find((a) => a.subject === instance.id);
    }, 120_000);
    expect(alert.status).toBe("firing");

    // On the page without a reload: the fleet socket's fleet:alert brought it.
    const row = page.locator(`tr[data-alert="${alert.id}"]`);
    await row.waitFor({ timeout: WAIT });
    await expect(row.textContent()).resolves.toContain("critical");
    expect(await page.evaluate(() => (window as { __noReload?: boolean }).__noReload)).toBe(true);

    // A viewer sees it too, with nothing to press.
    const viewer = await newPage();
    await signIn(viewer.page, world.stack.apiUrl, VIEWER, WAIT);
    await viewer.page.getByRole("link", { name: "Alerts" }).click();
    const viewerRow = viewer.page.locator(`tr[data-alert="${alert.id}"]`);
    await viewerRow.waitFor({ timeout: WAIT });
    expect(await viewerRow.getByTestId("ack-alert").count()).toBe(0);

    await row.getByTestId("ack-alert").click();
    await page.getByText("alerting-agent: acknowledged").waitFor({ timeout: WAIT });
    // It leaves the firing list; the API records who acknowledged it.
    await row.waitFor({ state: "detached", timeout: WAIT });
    const acked = (await world.api.GET("/api/alerts/{id}", { params: { path: { id: alert.id } } })).data!;
    expect(acked.status).toBe("acknowledged");
    // The viewer's page follows, live: the row leaves their firing list too.
    await viewerRow.waitFor({ state: "detached", timeout: WAIT });
    await page.getByLabel("Filter alerts by status").selectOption("acknowledged");
    await expect.poll(() => row.locator(".badge").first().textContent(), { timeout: WAIT }).toBe("acknowledged");
    expect(failures).toEqual([]);
    expect(viewer.failures).toEqual([]);
  }, 300_000);
});
