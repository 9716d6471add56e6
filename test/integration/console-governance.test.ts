/**
 * The console's later pages in a real Chromium against the real stack (a seeded world:
 * scripts/console-seed.ts, a real Node-RED instance redeployed once): an admin creates a
 * user and a scoped API key that is shown once and works with exactly its scopes; searches
 * the audit log, verifies the chain and downloads it as CSV; reads an instance's page
 * (health chart, versions, node diff, deployments, secret names, audit); a viewer sees no
 * governance write button and the API still answers 403. axe-core runs on every page: no
 * serious or critical violation. Forms work from the keyboard alone.
 */
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiClient } from "../../protocol/api/client.ts";
import { buildConsoleIfStale, launchChromium, signIn, watchFailures } from "../../scripts/console-browser.ts";
import { seedAiDecisions, seedInstance, startConsoleWorld, type ConsoleWorld } from "../../scripts/console-seed.ts";
import { zeroLossFlow } from "../harness/zeroLoss.ts";

// The functions handed to page.evaluate run in the page; this Node program has no DOM types.
declare const window: unknown, document: { activeElement: unknown };

/** Generous for a loaded 2-core machine. */
const WAIT = 45_000;
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const VIEWER = { username: "gov-viewer", password: "viewer-password-123" };

let world: ConsoleWorld;
let browser: Browser;
let instanceId: string;
let admin: { username: string; password: string };
const contexts: BrowserContext[] = [];

async function newPage(opts: { dark?: boolean; bypassCSP?: boolean } = {}): Promise<{ page: Page; failures: string[] }> {
  // Pages stay open until afterAll: @sparticuz/chromium runs --single-process, where closing the last page can end the browser.
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: "en-US", colorScheme: opts.dark ? "dark" : "light", bypassCSP: !!opts.bypassCSP, acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  return { page, failures: watchFailures(page) };
}

beforeAll(async () => {
  await buildConsoleIfStale();
  [world, browser] = await Promise.all([startConsoleWorld("gov-e2e"), launchChromium()]);
  admin = { username: "admin", password: world.adminPassword };
  instanceId = await seedInstance(world, "gov-agent");
  await seedAiDecisions(world, instanceId, 12);
  const viewer = await world.api.POST("/api/users", { body: { ...VIEWER, email: "gov-viewer@example.com", role: "viewer" } });
  expect(viewer.response.status, JSON.stringify(viewer.error)).toBe(201);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

describe("governance and the instance page in a browser", () => {
  it("an admin creates a user, then a scoped API key that is shown once and allows exactly its scopes", async () => {
    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, admin, WAIT);
    await page.getByRole("link", { name: "Governance" }).click();
    await page.getByTestId("users-table").waitFor({ timeout: WAIT });

    await page.getByText("Create a user").click();
    const form = page.getByTestId("create-user");
    await form.locator('input[name="username"]').fill("new.operator");
    await form.locator('input[name="email"]').fill("new.operator@example.com");
    await form.locator('input[name="password"]').fill("short");
    await form.locator('select[name="role"]').selectOption("operator");
    await form.getByRole("button", { name: "Create user" }).click();
    // The API's own message next to the field its details name.
    await expect(form.locator("#err-password").textContent({ timeout: WAIT })).resolves.toMatch(/12|too small|at least/i);
    await form.locator('input[name="password"]').fill("a-long-enough-password");
    await form.getByRole("button", { name: "Create user" }).click();
    await page.locator('tr[data-user="new.operator"]').waitFor({ timeout: WAIT });
    const users = await world.api.GET("/api/users", { params: { query: { role: "operator" } } });
    expect(users.data!.items.map((u) => u.username)).toContain("new.operator");

    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByText("Create an API key").click();
    const keyForm = page.getByTestId("create-key");
    await keyForm.locator('input[name="name"]').fill("ci-reader");
    await keyForm.getByLabel("instances read").check();
    await keyForm.getByRole("button", { name: "Create key" }).click();
    const key = (await page.getByTestId("new-key-value").textContent({ timeout: WAIT }))!;
    expect(key).toMatch(/^rf_/);
    const withKey = createApiClient({ baseUrl: world.stack.apiUrl, token: key });
    expect((await withKey.GET("/api/instances")).response.status).toBe(200);
    expect((await withKey.GET("/api/users")).response.status).toBe(403);
    const listed = (await world.api.GET("/api/api-keys")).data!.items.find((k) => k.name === "ci-reader");
    expect(listed?.scopes).toEqual([{ resource: "instances", action: "read" }]);
    // Shown once: after a reload the page has the key's prefix, never the key.
    await page.reload();
    await page.locator('tr[data-key="ci-reader"]').waitFor({ timeout: WAIT });
    expect(await page.content()).not.toContain(key);
    expect(failures).toEqual([]);
  }, 120_000);

  it("audit search, the chain's verification and a CSV download", async () => {
    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, admin, WAIT);
    await page.goto(`${world.stack.apiUrl}/governance/audit`);
    const search = page.getByTestId("audit-search");
    await search.locator('input[name="action"]').fill("USER_CREATED");
    await search.getByRole("button", { name: "Search" }).click();
    await page.locator('[data-testid="audit-table"] tbody tr').first().waitFor({ timeout: WAIT });
    await expect.poll(async () => [...new Set(await page.locator('[data-testid="audit-table"] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-audit"))))], { timeout: WAIT }).toEqual(["USER_CREATED"]);

    await page.getByTestId("audit-verify").click();
    await expect(page.getByTestId("audit-verification").textContent({ timeout: WAIT })).resolves.toMatch(/Chain intact: \d+ rows verified/);

    const [download] = await Promise.all([page.waitForEvent("download", { timeout: WAIT }), page.getByTestId("audit-csv").click()]);
    const file = path.join(os.tmpdir(), `console-audit-${Date.now()}.csv`);
    await download.saveAs(file);
    const csv = await fs.readFile(file, "utf8");
    await fs.rm(file, { force: true });
    expect(csv.split("\n")[0]).toMatch(/^id,/);
    expect(csv).toContain("USER_CREATED");
    expect(failures).toEqual([]);
  }, 120_000);

  it("the instance page shows its health chart, versions with a node diff, deployments, secret names and audit", async () => {
    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, admin, WAIT);
    await page.locator('tr[data-instance="gov-agent"]').getByRole("link", { name: "gov-agent" }).click();
    await page.getByRole("heading", { name: /gov-agent/ }).waitFor({ timeout: WAIT });
    await page.getByTestId("health-chart").locator("canvas").waitFor({ timeout: WAIT });
    await expect(page.getByTestId("health-chart").getAttribute("aria-label")).resolves.toMatch(/health reports; latest RSS \d/);
    // Created with v1, deployed v2 (the API may store more, e.g. the flows a completed deployment leaves running).
    expect(await page.getByTestId("flow-versions").locator("tbody tr").count()).toBeGreaterThanOrEqual(2);
    await expect(page.getByTestId("secret-names").textContent()).resolves.toContain("OPENAI_API_KEY");
    await page.getByTestId("deployments-table").locator("tbody tr").first().waitFor({ timeout: WAIT });
    await page.locator('[data-testid="instance-audit"] tr[data-audit="INSTANCE_CREATED"]').waitFor({ timeout: WAIT });
    expect(await page.content()).not.toContain("sk-demo-not-real");

    // The running flows are v2 plus a debug node; v1 (as first deployed) differs by that node and the function's code.
    const u = new URL(world.stack.mqttUrl);
    const v1 = zeroLossFlow({ version: "v1", entry: "gate", broker: { host: u.hostname, port: Number(u.port || 1883) } });
    await page.getByText(/Compare the running flows/).click();
    await page.getByTestId("compare-json").fill(JSON.stringify(v1));
    await page.getByRole("button", { name: "Compare", exact: true }).click();
    const diff = page.getByTestId("flow-diff");
    await expect(diff.locator(".diff-del").first().textContent({ timeout: WAIT })).resolves.toBe("−1 removed");
    await expect(diff.locator("tr.diff-del").textContent()).resolves.toContain("debug");
    await expect(diff.locator("tr.diff-chg").first().textContent()).resolves.toMatch(/function.*func/);
    expect(failures).toEqual([]);
  }, 120_000);

  it("a viewer sees no governance write button, and the API still refuses the write", async () => {
    const { page } = await newPage({ dark: true });
    await signIn(page, world.stack.apiUrl, VIEWER, WAIT);
    await page.goto(`${world.stack.apiUrl}/governance/users`);
    await page.getByRole("heading", { name: "Governance" }).waitFor({ timeout: WAIT });
    await page.getByTestId("who").filter({ hasText: VIEWER.username }).waitFor({ timeout: WAIT });
    await page.waitForTimeout(1000); // the lists and permissions have answered
    for (const [where, label] of [["/governance/users", "Create a user"], ["/governance/quotas", "Set a team's quota"], ["/governance/policies", "New policy"], ["/governance/roles", "New custom role"], ["/settings", "Add a price"]] as const) {
      await page.goto(`${world.stack.apiUrl}${where}`);
      await page.locator("h1").first().waitFor({ timeout: WAIT });
      await page.waitForTimeout(500);
      expect(await page.getByText(label, { exact: true }).count(), `${where}: ${label}`).toBe(0);
    }
    const login = await createApiClient({ baseUrl: world.stack.apiUrl }).POST("/api/auth/login", { body: VIEWER });
    const asViewer = createApiClient({ baseUrl: world.stack.apiUrl, token: login.data!.token });
    expect((await asViewer.POST("/api/users", { body: { username: "x-user", email: "x@example.com", password: "a-long-enough-password", role: "viewer" } })).response.status).toBe(403);
  }, 120_000);

  it("a user is created with the keyboard alone", async () => {
    const { page } = await newPage();
    await signIn(page, world.stack.apiUrl, admin, WAIT);
    await page.goto(`${world.stack.apiUrl}/governance/users`);
    await page.getByTestId("users-table").waitFor({ timeout: WAIT });
    const tabTo = async (match: (el: { tag: string; text: string; name: string | null }) => boolean) => {
      for (let n = 0; n < 80; n++) {
        await page.keyboard.press("Tab");
        const el = await page.evaluate(() => { const a = document.activeElement as { tagName?: string; textContent?: string | null; getAttribute(n: string): string | null } | null; return { tag: a?.tagName ?? "", text: a?.textContent?.trim() ?? "", name: a?.getAttribute("name") ?? null }; });
        if (match(el)) return;
      }
      throw new Error("not reachable with Tab");
    };
    await tabTo((el) => el.tag === "SUMMARY" && el.text === "Create a user");
    await page.keyboard.press("Enter");
    await tabTo((el) => el.name === "username");
    await page.keyboard.type("keyboard.user");
    await page.keyboard.press("Tab");
    await page.keyboard.type("keyboard.user@example.com");
    await page.keyboard.press("Tab");
    await page.keyboard.type("typed-without-a-mouse");
    await page.keyboard.press("Enter"); // submits the form
    await page.locator('tr[data-user="keyboard.user"]').waitFor({ timeout: WAIT });
  }, 120_000);

  it("axe-core finds no serious or critical violation on any page, light or dark", async () => {
    const pages = ["/fleet", `/instances/${instanceId}`, "/clusters", "/deployments", "/ai", "/governance/users", "/governance/roles", "/governance/api-keys",
      "/governance/quotas", "/governance/policies", "/governance/audit", "/governance/reports", "/governance/schedules", "/settings"];
    const problems: string[] = [];
    for (const dark of [false, true]) {
      // axe is injected as a script, which the console's CSP (rightly) refuses: this context bypasses CSP.
      const { page } = await newPage({ dark, bypassCSP: true });
      await page.goto(`${world.stack.apiUrl}/login`);
      await page.getByLabel("Username").waitFor({ timeout: WAIT });
      for (const where of ["/login", ...pages]) {
        if (where !== "/login") {
          if (where === "/fleet") await signIn(page, world.stack.apiUrl, admin, WAIT);
          else await page.goto(`${world.stack.apiUrl}${where}`);
          await page.locator("main h1").first().waitFor({ timeout: WAIT });
          await page.waitForTimeout(800); // lists and charts have answered
        }
        await page.addScriptTag({ path: AXE });
        const violations = await page.evaluate(async () => {
          const axe = (window as unknown as { axe: { run: (ctx: unknown, o: object) => Promise<{ violations: { id: string; impact: string | null; nodes: { target: string[] }[] }[] }> } }).axe;
          const r = await axe.run(document, { resultTypes: ["violations"] });
          return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}) at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
        });
        for (const v of violations) problems.push(`${dark ? "dark" : "light"} ${where}: ${v}`);
      }
    }
    expect(problems).toEqual([]);
  }, 300_000);
});
