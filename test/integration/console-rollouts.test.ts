/**
 * Fleet delivery in the console, in a real Chromium against the real stack with real Node-RED
 * instances (three, labelled env=staging ×2 and env=prod): start a rollout with a live preview
 * of the instances its selector picks, watch its waves and instances change live, start the
 * next wave, abort another between waves; build a pipeline, promote to a stage that needs a
 * second person, where the requester and an operator get no approve button, the server's 403
 * is shown when an approver loses the permission mid-page, and a real approver's approval rolls
 * the version out; create a CI hook whose secret (shown once) signs a delivery that starts a
 * rollout; axe-core on every new page, light and dark.
 */
import { createRequire } from "node:module";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiBody } from "../../protocol/api/client.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { buildConsoleIfStale, launchChromium, signIn, watchFailures } from "../../scripts/console-browser.ts";
import { startConsoleWorld, type ConsoleWorld } from "../../scripts/console-seed.ts";
import { eventually } from "../harness/eventually.ts";
import { zeroLossFlow } from "../harness/zeroLoss.ts";

declare const window: unknown, document: unknown;

/** Generous for a loaded 2-core machine: each instance change is a real blue-green deployment. */
const WAIT = 60_000;
const DEPLOY_WAIT = 240_000;
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const OPERATOR = { username: "ro-operator", password: "operator-password-123" };
const APPROVER = { username: "ro-approver", password: "approver-password-123" };
const APPROVER_ROLE = "ro-release-approver";
const APPROVER_PERMISSIONS = [
  { resource: "deployments", action: "read" }, { resource: "deployments", action: "approve" },
  { resource: "instances", action: "read" }, { resource: "clusters", action: "read" },
] as const;

type Flows = NonNullable<ApiBody<"/api/instances", "post">["flows"]>;

let world: ConsoleWorld;
let browser: Browser;
let flows: (version: string) => Flows;
const contexts: BrowserContext[] = [];

async function newPage(opts: { dark?: boolean; bypassCSP?: boolean } = {}): Promise<{ page: Page; failures: string[] }> {
  // Pages stay open until afterAll: @sparticuz/chromium runs --single-process, where closing the last page can end the browser.
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: "en-US", colorScheme: opts.dark ? "dark" : "light", bypassCSP: !!opts.bypassCSP });
  contexts.push(context);
  const page = await context.newPage();
  return { page, failures: watchFailures(page) };
}

/** Marks the document; still marked later means the page changed live, without a reload. */
async function markDocument(page: Page): Promise<() => Promise<boolean>> {
  await page.evaluate(() => { (window as { __noReload?: boolean }).__noReload = true; });
  return () => page.evaluate(() => (window as { __noReload?: boolean }).__noReload === true);
}

async function shown(page: Page): Promise<string> {
  return JSON.stringify(await page.locator(".error, .field-error, .notice, .failure").allTextContents());
}

beforeAll(async () => {
  await buildConsoleIfStale();
  [world, browser] = await Promise.all([startConsoleWorld("rollouts-edge"), launchChromium()]);
  const u = new URL(world.stack.mqttUrl);
  flows = (version) => zeroLossFlow({ version, entry: "gate", broker: { host: u.hostname, port: Number(u.port || 1883) } }) as Flows;
  const ids: string[] = [];
  for (const [name, env] of [["ro-s1", "staging"], ["ro-s2", "staging"], ["ro-p1", "prod"]] as const) {
    const created = await world.api.POST("/api/instances", { body: { name, clusterId: world.clusterId, labels: { env }, flows: flows("v1") } });
    if (!created.data) throw new Error(`create ${name}: ${JSON.stringify(created.error)}`);
    ids.push(created.data.id);
  }
  await eventually(async () => {
    const all = await Promise.all(ids.map(async (id) => (await world.api.GET("/api/instances/{id}", { params: { path: { id } } })).data));
    return all.every((i) => i?.status === "running") || undefined;
  }, 180_000);
  const role = await world.api.POST("/api/roles", { body: { name: APPROVER_ROLE, permissions: [...APPROVER_PERMISSIONS] } });
  if (!role.data) throw new Error(`role: ${JSON.stringify(role.error)}`);
  for (const [who, r] of [[OPERATOR, "operator"], [APPROVER, APPROVER_ROLE]] as const) {
    const user = await world.api.POST("/api/users", { body: { ...who, email: `${who.username}@example.com`, role: r } });
    if (!user.data) throw new Error(`user ${who.username}: ${JSON.stringify(user.error)}`);
  }
}, 400_000);

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

describe("rollouts, pipelines and CI hooks in a browser", () => {
  it("starts a rollout with a live preview of what its selector picks, then watches both waves live and starts the second", async () => {
    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, { username: "admin", password: world.adminPassword }, WAIT);
    await page.getByRole("link", { name: "Rollouts" }).click();
    await page.getByRole("heading", { name: "Rollouts" }).waitFor({ timeout: WAIT });
    await page.getByTestId("start-rollout").locator("summary").click();

    const selector = page.getByTestId("rollout-selector");
    const count = page.getByTestId("rollout-selector-count");
    await selector.fill("env in (staging");
    await expect.poll(() => count.textContent(), { timeout: WAIT }).toMatch(/not a valid selector.*at character \d+/);
    await selector.fill("env=staging");
    await expect.poll(() => count.textContent(), { timeout: WAIT }).toBe("2 instances match now");
    const preview = page.getByTestId("rollout-selector-preview");
    expect((await preview.locator("[data-match]").evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { match: string } }).dataset.match))).sort()).toEqual(["ro-s1", "ro-s2"]);

    const form = page.getByTestId("start-rollout");
    await form.locator('input[name="waves"]').fill("1, 100%");
    await form.locator('select[name="pauseKind"]').selectOption("approval");
    await form.locator('input[name="analysisSeconds"]').fill("1");
    await form.locator('input[name="rollbackWindowSeconds"]').fill("0");
    await form.locator('input[name="description"]').fill("console rollout");
    await form.locator('textarea[name="flows"]').fill(JSON.stringify(flows("v2")));
    await form.getByRole("button", { name: "Start rollout" }).click();
    await page.waitForURL(/\/rollouts\/[0-9a-f-]{36}$/, { timeout: WAIT }).catch(async (err) => { throw new Error(`${String(err).split("\n")[0]}; shown: ${await shown(page)}`); });
    const rolloutId = page.url().split("/").pop()!;
    const stillSameDocument = await markDocument(page);

    const waves = page.getByTestId("rollout-wave");
    await expect.poll(() => waves.count(), { timeout: WAIT }).toBe(2);
    const summaryBadge = page.getByTestId("rollout-summary").locator(".badge").first();
    // Wave 1 (one instance) deploys blue-green for real, then the rollout waits for a person.
    await expect.poll(() => waves.nth(0).getAttribute("data-status"), { timeout: DEPLOY_WAIT }).toBe("completed");
    await expect.poll(() => summaryBadge.textContent(), { timeout: WAIT }).toBe("awaiting_approval");
    await expect(waves.nth(0).locator("[data-rollout-instance]").first().getAttribute("data-status")).resolves.toBe("completed");
    await expect(waves.nth(1).locator("[data-rollout-instance]").first().getAttribute("data-status")).resolves.toBe("pending");
    await page.getByTestId("rollout-approve").click();
    await expect.poll(() => waves.nth(1).getAttribute("data-status"), { timeout: DEPLOY_WAIT }).toBe("completed");
    await expect.poll(() => summaryBadge.textContent(), { timeout: WAIT }).toBe("completed");
    await expect(page.getByTestId("rollout-completed").textContent()).resolves.toBe("2");
    expect(await stillSameDocument()).toBe(true);
    // No action applies to an ended rollout.
    expect(await page.getByTestId("rollout-abort").count()).toBe(0);

    const view = (await world.api.GET("/api/rollouts/{id}", { params: { path: { id: rolloutId } } })).data!;
    expect(view).toMatchObject({ status: "completed", selector: "env=staging", description: "console rollout", summary: { total: 2, completed: 2, failed: 0 } });

    await page.getByRole("link", { name: "Rollouts" }).first().click();
    await expect.poll(() => page.locator(`tr[data-rollout="${rolloutId}"] .badge`).textContent(), { timeout: WAIT }).toBe("completed");
    expect(failures).toEqual([]);
  }, 600_000);

  it("aborts a rollout that waits between waves, after confirming; the next wave's instances are skipped", async () => {
    const started = await world.api.POST("/api/rollouts", { body: {
      selector: "env=staging", flows: flows("v3"), waves: [1, "100%"], pause: { kind: "approval" },
      deployment: { analysisSeconds: 1, rollbackWindowSeconds: 0 },
    } as unknown as ApiBody<"/api/rollouts", "post"> }); // defaulted fields are required in the generated type
    expect(started.response.status, JSON.stringify(started.error)).toBe(202);
    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, { username: "admin", password: world.adminPassword }, WAIT);
    await page.goto(`${world.stack.apiUrl}/rollouts/${started.data!.id}`);
    const summaryBadge = page.getByTestId("rollout-summary").locator(".badge").first();
    await expect.poll(() => summaryBadge.textContent(), { timeout: DEPLOY_WAIT }).toBe("awaiting_approval");
    await page.getByTestId("rollout-abort").click();
    await page.getByRole("dialog").getByRole("button", { name: "Abort rollout" }).click();
    await expect.poll(() => summaryBadge.textContent(), { timeout: WAIT }).toBe("aborted");
    await expect.poll(() => page.getByTestId("rollout-failure").textContent(), { timeout: WAIT }).toContain("operator_abort");
    const second = page.getByTestId("rollout-wave").nth(1);
    await expect.poll(() => second.locator("[data-rollout-instance]").first().getAttribute("data-status"), { timeout: WAIT }).toBe("skipped");
    expect((await world.api.GET("/api/rollouts/{id}", { params: { path: { id: started.data!.id } } })).data!.status).toBe("aborted");
    expect(failures).toEqual([]);
  }, 400_000);

  it("four-eyes: the requester and an operator get no approve button, a lost permission shows the server's 403, a second person's approval rolls the version out", async () => {
    const admin = await newPage();
    await signIn(admin.page, world.stack.apiUrl, { username: "admin", password: world.adminPassword }, WAIT);
    await admin.page.getByRole("link", { name: "Pipelines" }).click();
    await admin.page.getByTestId("new-pipeline").click();
    const form = admin.page.getByTestId("pipeline-form");
    await form.locator('input[name="name"]').fill("web");
    await form.getByRole("button", { name: "Remove stage 1" }).click(); // dev: this world has no env=dev instance
    await expect(form.getByTestId("stage-row").count()).resolves.toBe(2);
    await form.locator('input[name="stage-1-selector"]').fill("env in (prod");
    await form.getByRole("button", { name: "Create pipeline" }).click();
    await expect(form.locator('[id="err-stage-1-selector"]').textContent({ timeout: WAIT })).resolves.toMatch(/prod/);
    await form.locator('input[name="stage-1-selector"]').fill("env=prod");
    await form.getByRole("button", { name: "Create pipeline" }).click();
    await admin.page.waitForURL(/\/pipelines\/[0-9a-f-]{36}$/, { timeout: WAIT }).catch(async (err) => { throw new Error(`${String(err).split("\n")[0]}; shown: ${await shown(admin.page)}`); });
    const pipelineId = admin.page.url().split("/").pop()!;
    const pipeline = (await world.api.GET("/api/pipelines/{id}", { params: { path: { id: pipelineId } } })).data!;
    expect(pipeline.stages.map((s) => [s.name, s.selector, s.requiresApproval])).toEqual([["staging", "env=staging", false], ["prod", "env=prod", true]]);

    // The admin asks for prod (a flow file): it waits for a second person, and the admin's own row has no approve button.
    await admin.page.getByTestId("promote").locator("summary").click();
    const promote = admin.page.getByTestId("promote");
    await promote.locator('select[name="stage"]').selectOption("prod");
    await promote.locator('select[name="source"]').selectOption("flows");
    await promote.locator('textarea[name="flows"]').fill(JSON.stringify(flows("v4")));
    await promote.getByTestId("promote-submit").click();
    const adminRow = admin.page.locator('tr[data-stage="prod"][data-status="awaiting_approval"]');
    await adminRow.waitFor({ timeout: WAIT }).catch(async (err) => { throw new Error(`${String(err).split("\n")[0]}; shown: ${await shown(admin.page)}`); });
    await adminRow.getByTestId("own-promotion").waitFor({ timeout: WAIT });
    expect(await adminRow.getByTestId("approve-promotion").count()).toBe(0);
    const promotionId = (await adminRow.getAttribute("data-promotion"))!;
    // …and the API refuses the requester's own approval, whatever the console shows.
    const own = await world.api.POST("/api/pipelines/promotions/{id}/approve", { params: { path: { id: promotionId } } });
    expect([own.response.status, own.error?.error.code]).toEqual([403, "self_approval"]);

    // An operator deploys but may not approve: no buttons, a note saying who may.
    const operator = await newPage();
    await signIn(operator.page, world.stack.apiUrl, OPERATOR, WAIT);
    await operator.page.goto(`${world.stack.apiUrl}/pipelines/${pipelineId}`);
    const operatorRow = operator.page.locator(`tr[data-promotion="${promotionId}"]`);
    await operatorRow.getByTestId("needs-approver").waitFor({ timeout: WAIT });
    expect(await operatorRow.getByTestId("approve-promotion").count()).toBe(0);

    // The approver sees the button; their role loses the permission before they click: the server's 403 is shown plainly.
    const approver = await newPage();
    await signIn(approver.page, world.stack.apiUrl, APPROVER, WAIT);
    await approver.page.goto(`${world.stack.apiUrl}/pipelines/${pipelineId}`);
    const approverRow = approver.page.locator(`tr[data-promotion="${promotionId}"]`);
    await approverRow.getByTestId("approve-promotion").waitFor({ timeout: WAIT });
    const narrowed = await world.api.PATCH("/api/roles/{name}", { params: { path: { name: APPROVER_ROLE } }, body: { permissions: APPROVER_PERMISSIONS.filter((p) => p.action !== "approve") } });
    expect(narrowed.response.status, JSON.stringify(narrowed.error)).toBe(200);
    await approverRow.getByTestId("approve-promotion").click();
    const refusal = approver.page.getByTestId("promotion-refusal");
    await expect(refusal.textContent({ timeout: WAIT })).resolves.toMatch(/refused.*403 forbidden/s);
    expect((await world.api.GET("/api/pipelines/promotions/{id}", { params: { path: { id: promotionId } } })).data!.status).toBe("awaiting_approval");

    // Given back, the approval starts the rollout on env=prod; the page follows it to completed.
    const restored = await world.api.PATCH("/api/roles/{name}", { params: { path: { name: APPROVER_ROLE } }, body: { permissions: [...APPROVER_PERMISSIONS] } });
    expect(restored.response.status).toBe(200);
    await approverRow.getByTestId("approve-promotion").click();
    await expect.poll(() => approverRow.getAttribute("data-status"), { timeout: WAIT }).toMatch(/rolling_out|completed/);
    await expect.poll(() => approverRow.getAttribute("data-status"), { timeout: DEPLOY_WAIT }).toBe("completed");
    await expect(approver.page.locator('[data-testid="stages-table"] tr[data-stage="prod"] [data-testid="stage-current"]').textContent()).resolves.toMatch(/flows [0-9a-f]{12}/);
    const decided = (await world.api.GET("/api/pipelines/promotions/{id}", { params: { path: { id: promotionId } } })).data!;
    const approverId = (await world.api.GET("/api/users", { params: { query: { limit: 200 } } })).data!.items.find((u) => u.username === APPROVER.username)!.id;
    expect(decided).toMatchObject({ status: "completed", decidedBy: approverId });
    for (const p of [admin, operator, approver]) expect(p.failures).toEqual([]);
  }, 600_000);

  it("creates a CI hook whose secret, shown once, signs a delivery that starts a rollout", async () => {
    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, { username: "admin", password: world.adminPassword }, WAIT);
    await page.getByRole("link", { name: "CI hooks" }).click();
    await page.getByTestId("new-hook").click();
    const form = page.getByTestId("hook-form");
    await form.locator('input[name="name"]').fill("web-main");
    await form.getByTestId("hook-selector").fill("env=staging");
    await expect.poll(() => form.getByTestId("hook-selector-count").textContent(), { timeout: WAIT }).toBe("2 instances match now");
    await form.locator('input[name="waves"]').fill("100%");
    await form.getByRole("button", { name: "Create hook" }).click();
    const secret = await page.getByTestId("hook-secret-value").inputValue({ timeout: WAIT });
    expect(secret).toMatch(/^whsec_/);
    const url = (await page.getByTestId("hook-url").textContent())!;
    expect(url).toMatch(new RegExp(`^${world.stack.apiUrl}/api/webhooks/ci/[0-9a-f-]{36}$`));

    // What the CI job does with what the page showed: a Standard Webhooks delivery of its flow file.
    const body = JSON.stringify({ flows: flows("v5"), description: "from CI" });
    const delivered = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json", ...(await webhookHeaders(secret, body)) } });
    const answer = await delivered.json() as { rolloutId: string | null };
    expect(delivered.status, JSON.stringify(answer)).toBe(202);
    expect(answer.rolloutId).toMatch(/^[0-9a-f-]{36}$/);

    await page.getByRole("button", { name: "I have saved it" }).click();
    expect(await page.content()).not.toContain(secret);
    await page.reload();
    const row = page.locator('tr[data-hook="web-main"]');
    await row.waitFor({ timeout: WAIT });
    await expect(row.textContent()).resolves.toContain("rollout to env=staging");
    await expect.poll(async () => { await page.reload(); return row.locator("td").nth(4).textContent({ timeout: WAIT }); }, { timeout: WAIT }).not.toBe("never");
    // The hook acts as its creator: the rollout it started is listed with the others.
    await page.goto(`${world.stack.apiUrl}/rollouts`);
    await page.locator(`tr[data-rollout="${answer.rolloutId}"]`).waitFor({ timeout: WAIT });
    expect(failures).toEqual([]);
  }, 240_000);

  it("axe-core finds no serious or critical violation on the rollout, pipeline and CI hook pages, light or dark", async () => {
    const rolloutId = (await world.api.GET("/api/rollouts", { params: { query: { limit: 1 } } })).data!.items[0]!.id;
    const pipelineId = (await world.api.GET("/api/pipelines", { params: { query: { limit: 1 } } })).data!.items[0]!.id;
    const pages: [string, ((p: Page) => Promise<unknown>) | null][] = [
      ["/rollouts", (p) => p.getByTestId("start-rollout").locator("summary").click()],
      [`/rollouts/${rolloutId}`, (p) => p.getByTestId("rollout-wave").first().waitFor({ timeout: WAIT })],
      ["/pipelines", (p) => p.getByTestId("new-pipeline").click()],
      [`/pipelines/${pipelineId}`, (p) => p.getByTestId("promote").locator("summary").click()],
      ["/ci-hooks", (p) => p.getByTestId("new-hook").click()],
    ];
    const problems: string[] = [];
    for (const dark of [false, true]) {
      // axe is injected as a script, which the console's CSP (rightly) refuses: this context bypasses CSP.
      const { page } = await newPage({ dark, bypassCSP: true });
      await signIn(page, world.stack.apiUrl, { username: "admin", password: world.adminPassword }, WAIT);
      for (const [where, open] of pages) {
        await page.goto(`${world.stack.apiUrl}${where}`);
        await page.locator("main h1").first().waitFor({ timeout: WAIT });
        await page.waitForTimeout(1000); // lists have answered
        await open?.(page);
        await page.waitForTimeout(500); // previews have answered
        await page.addScriptTag({ path: AXE });
        const violations = await page.evaluate(async () => {
          const axe = (window as { axe: { run: (ctx: unknown, o: object) => Promise<{ violations: { id: string; impact: string | null; nodes: { target: string[] }[] }[] }> } }).axe;
          const r = await axe.run(document, { resultTypes: ["violations"] });
          return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}) at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
        });
        for (const v of violations) problems.push(`${dark ? "dark" : "light"} ${where}: ${v}`);
      }
    }
    expect(problems).toEqual([]);
  }, 300_000);
});
