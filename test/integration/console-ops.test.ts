/**
 * The console's operations pages in a real Chromium against the real stack (a seeded world:
 * scripts/console-seed.ts, a real Node-RED instance deployed twice): register a cluster, copy
 * its secret, start its bridge and see the row turn connected with the bridge's version, live; a
 * bridge on a Mosquitto with a queue limit puts its broker warning on the cluster's row, live, and
 * a restart on a broker without one clears it;
 * scale (the API's message at the field) and restart a real instance; diff two stored flow
 * versions node by node; create an alert rule (the API's threshold message at its field);
 * axe-core on the new pages, light and dark: no serious or critical violation.
 */
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lineLogger } from "../../bridge/log.ts";
import { startBridge, type RunningBridge } from "../../bridge/main.ts";
import { BRIDGE_VERSION } from "../../bridge/version.ts";
import { buildConsoleIfStale, launchChromium, signIn, watchFailures } from "../../scripts/console-browser.ts";
import { seedInstance, startConsoleWorld, type ConsoleWorld } from "../../scripts/console-seed.ts";
import { FakeDriver } from "../harness/fakeDriver.ts";
import { MOSQUITTO, startMosquitto, type RunningMosquitto } from "../harness/mosquitto.ts";

declare const window: unknown, document: unknown;

/** Generous for a loaded 2-core machine. */
const WAIT = 60_000;
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

let world: ConsoleWorld;
let browser: Browser;
let instanceId: string;
let admin: { username: string; password: string };
let tmp: string;
const bridges: RunningBridge[] = [];
const brokers: RunningMosquitto[] = [];
const contexts: BrowserContext[] = [];

async function newPage(opts: { dark?: boolean; bypassCSP?: boolean } = {}): Promise<{ page: Page; failures: string[] }> {
  // Pages stay open until afterAll: @sparticuz/chromium runs --single-process, where closing the last page can end the browser.
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: "en-US", colorScheme: opts.dark ? "dark" : "light", bypassCSP: !!opts.bypassCSP });
  contexts.push(context);
  const page = await context.newPage();
  return { page, failures: watchFailures(page) };
}

beforeAll(async () => {
  await buildConsoleIfStale();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-console-ops-"));
  [world, browser] = await Promise.all([startConsoleWorld("ops-edge"), launchChromium()]);
  admin = { username: "admin", password: world.adminPassword };
  instanceId = await seedInstance(world, "ops-agent");
}, 400_000);

afterAll(async () => {
  for (const b of bridges) await b.close().catch(() => {});
  for (const b of brokers) await b.close().catch(() => {});
  await browser?.close();
  await world?.close();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

describe("operations in a browser", () => {
  it("registers a cluster, shows its secret once and the bridge's command line; the row turns connected with the bridge's version when it runs, and disconnected when it stops", async () => {
    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, admin, WAIT);
    await page.getByRole("link", { name: "Clusters" }).click();
    await page.getByTestId("clusters-table").waitFor({ timeout: WAIT });
    await page.getByTestId("register-cluster").click();
    const form = page.getByTestId("register-form");
    await form.locator('input[name="name"]').fill("Not A DNS Label");
    await form.getByRole("button", { name: "Register" }).click();
    await form.locator("#err-name").waitFor({ timeout: WAIT });
    await form.locator('input[name="name"]').fill("edge-2");
    await form.locator('textarea[name="labels"]').fill("region=eu-north");
    await form.getByRole("button", { name: "Register" }).click();
    const secret = await page.getByTestId("cluster-secret-value").inputValue({ timeout: WAIT });
    expect(secret).toMatch(/^whsec_/);
    const row = page.locator('tr[data-cluster="edge-2"]');
    await row.waitFor({ timeout: WAIT });
    const clusterId = (await world.api.GET("/api/clusters", { params: { query: { limit: 200 } } })).data!.items.find((c) => c.name === "edge-2")!.id;
    expect(await page.getByTestId("bridge-command").textContent()).toContain(`--cluster ${clusterId} --api ${world.stack.apiUrl} --secret-file edge-2.secret`);
    await expect.poll(() => row.locator(".badge").first().textContent(), { timeout: WAIT }).toBe("registered");

    // What the person would do on the bridge's host, with the secret the page showed.
    const bridge = await startBridge({
      clusterId, api: world.stack.apiUrl, secret, driver: "process", mqttUrl: world.stack.mqttUrl,
      stateDir: path.join(tmp, "edge-2"), log: lineLogger(() => {}),
    });
    bridges.push(bridge);
    await expect.poll(() => row.locator(".badge").first().textContent(), { timeout: WAIT }).toBe("connected");
    await expect.poll(() => row.getByTestId("bridge-version").textContent(), { timeout: WAIT }).toBe(BRIDGE_VERSION);
    await page.getByRole("button", { name: "I have saved it" }).click();
    expect(await page.content()).not.toContain(secret);

    await bridge.close();
    await expect.poll(() => row.locator(".badge").first().textContent(), { timeout: WAIT }).toBe("disconnected");
    expect(failures).toEqual([]);
  }, 240_000);

  it.skipIf(!MOSQUITTO)("a bridge on a broker that drops an offline session's queue puts a warning on its cluster, live, in the API and on the page; restarted on a fixed broker it clears", async () => {
    // Mosquitto with its queue limit, as Debian ships it but smaller (docs/faults-host-restart.md): the bridge's start-up check finds it.
    const limited = await startMosquitto(100);
    brokers.push(limited);
    const cluster = (await world.api.POST("/api/clusters", { body: { name: "edge-mosq" } })).data!;
    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, admin, WAIT);
    await page.getByRole("link", { name: "Clusters" }).click();
    await page.locator('tr[data-cluster="edge-mosq"]').waitFor({ timeout: WAIT });
    const warning = page.locator('tr[data-cluster-warnings="edge-mosq"] [data-testid="cluster-warning"]');
    expect(await warning.count()).toBe(0);
    const startOn = async (mqttUrl: string) => {
      const bridge = await startBridge({
        clusterId: cluster.id, api: world.stack.apiUrl, secret: cluster.webhookSecret, driver: new FakeDriver(), mqttUrl,
        stateDir: path.join(tmp, "edge-mosq"), log: lineLogger(() => {}), drainMs: 300,
      });
      bridges.push(bridge);
      return bridge;
    };
    const warningsOf = async () => (await world.api.GET("/api/clusters/{id}", { params: { path: { id: cluster.id } } })).data!.warnings;

    const first = await startOn(limited.url);
    // Shown without a reload (`cluster:warnings` on /ws/fleet): the page was open before the check ended.
    await warning.waitFor({ timeout: WAIT }).catch(async (err) => { throw new Error(`${String(err).split("\n")[0]}; API: ${JSON.stringify(await warningsOf())}; page errors: ${JSON.stringify(failures)}`); });
    expect(await warning.textContent()).toContain("kept only 100 of 1200");
    expect(await warning.textContent()).toContain("max_queued_messages 0");
    const [shown] = await warningsOf();
    expect(shown).toMatchObject({ code: "broker_queue_limit", message: expect.stringContaining("kept only 100 of 1200") });
    const listed = (await world.api.GET("/api/clusters", { params: { query: { limit: 200 } } })).data!.items.find((c) => c.id === cluster.id)!;
    expect(listed.warnings).toEqual([shown]);

    // The operator fixes the broker (here: the stack's own, which has no limit) and restarts the bridge.
    await first.close();
    const fixed = await startOn(world.stack.mqttUrl);
    await expect.poll(warningsOf, { timeout: WAIT }).toEqual([]);
    await expect.poll(() => warning.count(), { timeout: WAIT }).toBe(0);
    expect(failures).toEqual([]);

    // Back on the limited broker, so the axe-core run below sees the Clusters page with a warning on it.
    await fixed.close();
    await startOn(limited.url);
    await expect.poll(async () => (await warningsOf()).length, { timeout: WAIT }).toBe(1);
  }, 240_000);

  it("scales with the API's message at the field, then restarts a real instance after confirming", async () => {
    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, admin, WAIT);
    const row = page.locator('tr[data-instance="ops-agent"]');
    await row.waitFor({ timeout: WAIT });
    await row.getByTestId("scale-instance").click();
    const dialog = page.getByTestId("scale-dialog");
    await dialog.locator('input[name="replicas"]').fill("101");
    await dialog.getByRole("button", { name: "Scale" }).click();
    await expect(dialog.locator("#err-replicas").textContent({ timeout: WAIT })).resolves.toMatch(/100|too big|at most/i);
    await dialog.locator('input[name="replicas"]').fill("1");
    await dialog.getByRole("button", { name: "Scale" }).click();
    await page.getByText("ops-agent: scale to 1 requested").waitFor({ timeout: WAIT }).catch(async (err) => {
      throw new Error(`${String(err).split("\n")[0]}; page errors: ${JSON.stringify(failures)}; shown: ${await page.locator(".error, .field-error, .notice").allTextContents()}`);
    });

    await row.getByTestId("restart-instance").click();
    await page.getByRole("dialog").getByRole("button", { name: "Restart" }).click();
    await page.getByText("ops-agent: restart requested").waitFor({ timeout: WAIT });
    const audit = await world.api.GET("/api/audit", { params: { query: { resourceType: "instance", resourceId: instanceId, action: "INSTANCE_RESTART_REQUESTED" } } });
    expect(audit.data!.items).toHaveLength(1);
    // The bridge stops and starts the real Node-RED; the row says running again, live.
    await expect.poll(async () => (await world.api.GET("/api/audit", { params: { query: { resourceType: "instance", resourceId: instanceId, limit: 50 } } })).data!.items.length, { timeout: WAIT }).toBeGreaterThan(0);
    await expect.poll(() => row.locator(".badge").first().textContent(), { timeout: 120_000 }).toBe("running");
    expect(failures).toEqual([]);
  }, 240_000);

  it("diffs two stored flow versions node by node", async () => {
    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, admin, WAIT);
    await page.goto(`${world.stack.apiUrl}/instances/${instanceId}`);
    const compare = page.getByTestId("version-compare");
    await compare.waitFor({ timeout: WAIT });
    const versions = (await world.api.GET("/api/deployments/versions", { params: { query: { instanceId } } })).data!.items;
    // The newest stored version (the seed's redeploy, with its debug node) against the first.
    const newest = versions[0]!;
    const oldest = versions.at(-1)!;
    await compare.getByTestId("compare-from").selectOption(newest.id);
    await compare.getByTestId("compare-to").selectOption(oldest.id);
    await compare.getByRole("button", { name: "Compare versions" }).click();
    // Picked newest first, shown oldest first: the redeploy added the seed's debug node.
    await expect(page.getByTestId("version-diff-label").textContent({ timeout: WAIT })).resolves.toBe(`v${oldest.version} → v${newest.version}`);
    const diff = page.getByTestId("flow-diff").first();
    await expect(diff.textContent()).resolves.toContain("+1 added");
    await expect(diff.textContent()).resolves.toContain("seed-debug");
    expect(failures).toEqual([]);
  }, 120_000);

  it("creates an alert rule with the API's threshold message at its field", async () => {
    const { page, failures } = await newPage();
    await signIn(page, world.stack.apiUrl, admin, WAIT);
    await page.getByRole("link", { name: "Alerts" }).click();
    await page.getByTestId("alert-rules").waitFor({ timeout: WAIT });
    await page.getByTestId("new-rule").click();
    const form = page.getByTestId("rule-form");
    await form.locator('input[name="name"]').fill("not-ready");
    await form.locator('select[name="kind"]').selectOption("instance_not_ready");
    await form.getByTestId("param-minutes").fill("0");
    await form.getByRole("button", { name: "Create rule" }).click();
    await expect(form.locator("#err-rule-minutes").textContent({ timeout: WAIT })).resolves.toMatch(/1|small/i);
    await form.getByTestId("param-minutes").fill("7");
    await form.getByRole("button", { name: "Create rule" }).click();
    await page.locator('tr[data-rule="not-ready"]').waitFor({ timeout: WAIT }).catch(async (err) => {
      throw new Error(`${String(err).split("\n")[0]}; page errors: ${JSON.stringify(failures)}; shown: ${await page.locator(".error, .field-error, .notice").allTextContents()}`);
    });
    const rules = (await world.api.GET("/api/alerts/rules")).data!.items;
    expect(rules.find((r) => r.name === "not-ready")).toMatchObject({ kind: "instance_not_ready", params: { minutes: 7 }, team: "default" });
    expect(failures).toEqual([]);
  }, 120_000);

  it("axe-core finds no serious or critical violation on the operations pages, light or dark", async () => {
    const pages = ["/clusters", "/alerts", `/instances/${instanceId}`, "/settings"];
    const problems: string[] = [];
    for (const dark of [false, true]) {
      // axe is injected as a script, which the console's CSP (rightly) refuses: this context bypasses CSP.
      const { page } = await newPage({ dark, bypassCSP: true });
      await signIn(page, world.stack.apiUrl, admin, WAIT);
      for (const where of pages) {
        await page.goto(`${world.stack.apiUrl}${where}`);
        await page.locator("main h1").first().waitFor({ timeout: WAIT });
        if (where === "/clusters") await page.getByTestId("register-cluster").click();
        if (where === "/alerts") await page.getByTestId("new-rule").click();
        await page.waitForTimeout(1000); // lists have answered
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
