/**
 * The console in a real Chromium (@sparticuz/chromium + playwright-core)
 * against the real stack: the Worker under wrangler dev serving app/dist, a
 * real bridge with the process driver and a real Node-RED. An admin signs in,
 * creates an instance through the form and sees it turn running without a
 * reload (the row changes from /ws/fleet); a second create with the same name
 * shows the API's message next to the name field; a viewer sees the fleet but
 * no create or delete button.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import chromium from "@sparticuz/chromium";
import { chromium as playwright, type Browser, type Page } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBridge, type RunningBridge } from "../../bridge/main.ts";
import { lineLogger } from "../../bridge/log.ts";
import type { ApiBody } from "../../protocol/api/client.ts";
import { adminClient, type ApiClient } from "../harness/adminClient.ts";
import { startTestStack, type TestStack } from "../harness/testStack.ts";
import { zeroLossFlow } from "../harness/zeroLoss.ts";

const SCREENSHOT = path.join(os.tmpdir(), "redforge-console-fleet.png");
/** Generous for a loaded 2-core machine: Node-RED's cold start alone takes seconds. */
// A live change on a loaded machine (the clean-clone CI once waited past 45 s for a stop to show): generous, never a timing assertion.
const WAIT = 90_000;

let stack: TestStack;
let bridge: RunningBridge;
let browser: Browser;
let api: ApiClient;
let clusterId: string;
let tmp: string;
const VIEWER = { username: "console-viewer", password: "viewer-password-123" };

const APP = {
  dir: fileURLToPath(new URL("../../app/", import.meta.url)),
  vite: new URL("../../app/vite.config.ts", import.meta.url),
  built: fileURLToPath(new URL("../../app/dist/index.html", import.meta.url)),
};

async function consoleBuildIsStale(): Promise<boolean> {
  const built = await fs.stat(APP.built).then((s) => s.mtimeMs, () => 0);
  const sources = await fs.readdir(APP.dir, { recursive: true, withFileTypes: true });
  for (const entry of sources) {
    const where = path.join(entry.parentPath, entry.name);
    if (!entry.isFile() || where.includes(`${path.sep}dist${path.sep}`)) continue;
    if ((await fs.stat(where)).mtimeMs > built) return true;
  }
  return built === 0;
}

async function launchChromium(): Promise<Browser> {
  try {
    const executablePath = await chromium.executablePath();
    return await playwright.launch({ executablePath, args: chromium.args, headless: true });
  } catch (err) {
    throw new Error(`cannot start Chromium from @sparticuz/chromium on this machine: ${(err as Error).message.split("\n")[0]}`);
  }
}

async function signIn(page: Page, who: { username: string; password: string }, screenshot?: string) {
  await page.goto(`${stack.apiUrl}/`);
  if (screenshot) { await page.getByLabel("Username").waitFor({ timeout: WAIT }); await page.screenshot({ path: screenshot }); }
  await page.getByLabel("Username").fill(who.username);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Fleet" }).waitFor({ timeout: WAIT });
}

// Pages and contexts stay open until afterAll: @sparticuz/chromium runs --single-process, where
// closing the last page can take the whole browser down with it.
beforeAll(async () => {
  // The browser must test this checkout's console: rebuild app/dist before wrangler dev reads it, unless it
  // is newer than every source (under `npm test`, pretest has just built it and other suites may be serving it).
  if (await consoleBuildIsStale()) await build({ configFile: fileURLToPath(APP.vite), logLevel: "warn" });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-console-e2e-"));
  [stack, browser] = await Promise.all([startTestStack({ worker: "wrangler" }), launchChromium()]);
  ({ api } = await adminClient(stack));
  const cluster = (await api.POST("/api/clusters", { body: { name: "console-e2e" } })).data!;
  clusterId = cluster.id;
  bridge = await startBridge({
    clusterId, api: stack.apiUrl, secret: cluster.webhookSecret, driver: "process", mqttUrl: stack.mqttUrl,
    stateDir: path.join(tmp, "bridge"), log: lineLogger(process.env.STACK_LOG ? (l) => console.log(`[bridge] ${l}`) : () => {}),
  });
  const viewer = await api.POST("/api/users", { body: { ...VIEWER, email: "viewer@example.com", role: "viewer" } });
  expect(viewer.response.status, JSON.stringify(viewer.error)).toBe(201);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await bridge?.close();
  await stack?.stop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("the console in a browser", () => {
  it("an admin creates an instance through the form and sees it turn running without a reload", async () => {
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 800 } })).newPage();
    const failures: string[] = [];
    page.on("pageerror", (e) => failures.push(e.message));
    // The console is served under a CSP without inline script or style (app/public/_headers): a violation is a failure.
    page.on("console", (m) => { if (m.type() === "error" && /Content Security Policy/i.test(m.text())) failures.push(m.text()); });
    await signIn(page, { username: "admin", password: stack.cfg.worker.adminPassword }, SCREENSHOT.replace("fleet", "login"));
    expect(new URL(page.url()).pathname).toBe("/fleet");
    await page.getByTestId("fleet-empty").waitFor({ timeout: WAIT });
    await page.getByTestId("live").filter({ hasText: "live" }).waitFor({ timeout: WAIT });

    // A marker on window survives only if the page is never reloaded.
    await page.evaluate(() => { (globalThis as unknown as { consoleMarker: number }).consoleMarker = 42; });
    await page.getByTestId("create-instance").click();
    const form = page.getByTestId("create-form");
    await form.locator(`input[name="name"]`).fill("console-agent");
    await form.locator(`select[name="clusterId"]`).selectOption(clusterId);
    await form.getByRole("button", { name: "Create" }).click();

    const row = page.locator('tr[data-instance="console-agent"]');
    await row.waitFor({ timeout: WAIT });
    await row.locator('[data-status="running"]').waitFor({ timeout: WAIT });
    expect(await page.evaluate(() => (globalThis as unknown as { consoleMarker?: number }).consoleMarker)).toBe(42);
    await expect(row.locator("td").nth(3).textContent()).resolves.toBe("console-e2e");
    await row.getByRole("link", { name: "admin" }).waitFor({ timeout: WAIT });

    // The same name again: the API's 409 message sits next to the name field.
    await page.getByTestId("create-instance").click();
    await form.locator(`input[name="name"]`).fill("console-agent");
    await form.locator(`select[name="clusterId"]`).selectOption(clusterId);
    await form.getByRole("button", { name: "Create" }).click();
    await expect(form.locator("#err-name").textContent({ timeout: WAIT })).resolves.toMatch(/already exists/);
    await page.screenshot({ path: SCREENSHOT.replace("fleet", "create-error") });
    await form.getByRole("button", { name: "Cancel" }).click();

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.getByRole("link", { name: "Clusters" }).click();
    await page.getByTestId("clusters-table").locator('[data-status="connected"]').waitFor({ timeout: WAIT });
    await page.screenshot({ path: SCREENSHOT.replace("fleet", "clusters") });

    expect(failures).toEqual([]);
  }, 120_000);

  it("a blue-green deployment started from pasted flow JSON shows every phase live and completes", async () => {
    // Gated flows (a redforge-gate at the entry), as docs/deployments.md asks: blue v1 through the API, v2 pasted in the console.
    const u = new URL(stack.mqttUrl);
    const broker = { host: u.hostname, port: Number(u.port || 1883) };
    const flows = (version: string) => zeroLossFlow({ version, entry: "gate", broker });
    const created = await api.POST("/api/instances", { body: { name: "console-gated", clusterId, flows: flows("v1") as ApiBody<"/api/instances", "post">["flows"] } });
    expect(created.response.status, JSON.stringify(created.error)).toBe(201);
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 800 } })).newPage();
    await signIn(page, { username: "admin", password: stack.cfg.worker.adminPassword });
    await page.locator('tr[data-instance="console-gated"] [data-status="running"]').waitFor({ timeout: WAIT });

    await page.getByRole("link", { name: "Deployments" }).click();
    await page.getByText("Start a deployment").click();
    await page.locator(`select[name="instanceId"]`).selectOption(created.data!.id);
    await page.locator(`textarea[name="flows"]`).fill(JSON.stringify(flows("v2")));
    await page.locator(`input[name="analysisSeconds"]`).fill("1");
    await page.locator(`input[name="rollbackWindowSeconds"]`).fill("0");
    await page.getByRole("button", { name: "Deploy blue-green" }).click();
    await page.getByTestId("timeline").waitFor({ timeout: WAIT });
    const final = page.locator('.summary [data-status="completed"], .summary [data-status="rolled_back"], .summary [data-status="failed"]');
    await final.waitFor({ timeout: 90_000 });
    await page.screenshot({ path: SCREENSHOT.replace("fleet", "deployment"), fullPage: true });
    expect(await final.textContent(), await page.locator(".failure").allTextContents().then((t) => t.join(" "))).toBe("completed");
    for (const phase of ["DRAIN", "DEPLOY", "VERIFY", "RESUME", "AUDIT", "CLEANUP"]) {
      await expect(page.locator(`[data-phase="${phase}"] [data-status]`).textContent(), phase).resolves.toBe("done");
    }
  }, 180_000);

  it("a viewer sees the fleet but no create or delete button; a 401 returns to login and back to the page", async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 800 }, colorScheme: "dark" });
    const page = await context.newPage();
    await signIn(page, VIEWER);
    await page.locator('tr[data-instance="console-agent"]').waitFor({ timeout: WAIT });
    await page.getByTestId("who").filter({ hasText: VIEWER.username }).waitFor({ timeout: WAIT });
    expect(await page.getByTestId("create-instance").count()).toBe(0);
    expect(await page.getByTestId("delete-instance").count()).toBe(0);
    expect(await page.getByRole("button", { name: "Stop" }).count()).toBe(0);
    await page.screenshot({ path: SCREENSHOT.replace("fleet", "viewer-dark") });

    // A session the API no longer accepts: the next call answers 401 and the login page brings the person back.
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem("redforge.session")!);
      sessionStorage.setItem("redforge.session", JSON.stringify({ ...s, token: "no-longer-valid" }));
    });
    await page.goto(`${stack.apiUrl}/clusters`);
    await page.getByLabel("Username").waitFor({ timeout: WAIT });
    expect(new URL(page.url()).searchParams.get("next")).toBe("/clusters");
    await page.getByText("Your session ended").waitFor({ timeout: WAIT });
    await page.getByLabel("Username").fill(VIEWER.username);
    await page.getByLabel("Password").fill(VIEWER.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Clusters" }).waitFor({ timeout: WAIT });
  }, 120_000);

  it("an admin stops an instance (it turns stopped live) and deletes one only after confirming", async () => {
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 800 } })).newPage();
    await signIn(page, { username: "admin", password: stack.cfg.worker.adminPassword });
    const gated = page.locator('tr[data-instance="console-gated"]');
    await gated.getByRole("button", { name: "Stop" }).click();
    await gated.locator('[data-status="stopped"]').waitFor({ timeout: WAIT });
    await gated.getByRole("button", { name: "Start" }).waitFor({ timeout: WAIT });

    const row = page.locator('tr[data-instance="console-agent"]');
    await row.getByTestId("delete-instance").click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText("Delete console-agent?").waitFor({ timeout: WAIT });
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect(await row.count()).toBe(1);
    await row.getByTestId("delete-instance").click();
    await dialog.getByRole("button", { name: "Delete instance" }).click();
    await row.waitFor({ state: "detached", timeout: WAIT });
    const left = await api.GET("/api/instances", { params: { query: { q: "console-agent" } } });
    expect(left.data!.items).toEqual([]);
  }, 120_000);
});
