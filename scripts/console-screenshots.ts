/**
 * `npm run console:screenshots`: a PNG of every console page, in docs/console/.
 * Starts the local stack on free ports with a seeded world (scripts/console-seed.ts:
 * a real Node-RED instance with two flow versions and health history, AI decisions,
 * users, keys, policies, a report), signs in as the dev admin in Chromium and
 * takes each page at 1400×900, light, plus the fleet and instance pages dark.
 * Fleet delivery: the instance is labelled env=staging and rolled out to (its
 * stored version, one wave), a pipeline waits for a second person's approval on
 * prod, and a CI hook targets env=staging.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { buildConsoleIfStale, launchChromium, signIn, watchFailures } from "./console-browser.ts";
import type { ApiBody } from "../protocol/api/client.ts";
import type { ApiClient } from "../test/harness/adminClient.ts";
import { seedAiDecisions, seedGovernance, seedInstance, startConsoleWorld } from "./console-seed.ts";

const OUT = fileURLToPath(new URL("../docs/console/", import.meta.url));
const WAIT = 45_000;

/** `before` runs before the page is opened (seeding what it shows); `open` after it is ready (a form opened for the picture). */
interface Shot { name: string; path: string; ready: (page: Page) => Promise<unknown>; before?: (page: Page) => Promise<unknown>; open?: (page: Page) => Promise<unknown> }

async function main(): Promise<void> {
  await fs.mkdir(OUT, { recursive: true });
  await buildConsoleIfStale();
  console.log("starting the stack and seeding (a real Node-RED, one deployment): about a minute…");
  const [world, browser] = await Promise.all([startConsoleWorld(), launchChromium()]);
  try {
    const instanceId = await seedInstance(world);
    await Promise.all([seedAiDecisions(world, instanceId), seedGovernance(world)]);
    const deployments = (await world.api.GET("/api/deployments", { params: { query: { instanceId, limit: 1 } } })).data!.items;
    const delivery = await seedDelivery(world.api, instanceId);
    const base = world.stack.apiUrl;
    const admin = { username: "admin", password: world.adminPassword };

    const shots: Shot[] = [
      { name: "fleet", path: "/fleet", ready: (p) => p.locator('tr[data-instance="support-agent"] [data-status="running"]').waitFor({ timeout: WAIT }) },
      { name: "instance", path: `/instances/${instanceId}`, ready: (p) => p.getByTestId("health-chart").waitFor({ timeout: WAIT }) },
      { name: "clusters", path: "/clusters", ready: (p) => p.getByTestId("clusters-table").waitFor({ timeout: WAIT }) },
      { name: "deployments", path: "/deployments", ready: (p) => p.getByTestId("deployments-table").waitFor({ timeout: WAIT }) },
      { name: "deployment", path: `/deployments/${deployments[0]!.id}`, ready: (p) => p.getByTestId("timeline").waitFor({ timeout: WAIT }) },
      { name: "rollouts", path: "/rollouts", ready: (p) => p.getByTestId("rollouts-table").waitFor({ timeout: WAIT }), open: async (p) => {
        await p.getByTestId("start-rollout").locator("summary").click();
        await p.getByTestId("rollout-selector").fill("env=staging");
        await p.getByTestId("rollout-selector-count").filter({ hasText: "match" }).waitFor({ timeout: WAIT });
      } },
      { name: "rollout", path: `/rollouts/${delivery.rolloutId}`, ready: (p) => p.locator('[data-testid="rollout-wave"][data-status="completed"]').first().waitFor({ timeout: 180_000 }) },
      { name: "pipeline", path: `/pipelines/${delivery.pipelineId}`, ready: (p) => p.locator('[data-testid="promotions"] tr[data-status="awaiting_approval"]').waitFor({ timeout: WAIT }) },
      { name: "ci-hooks", path: "/ci-hooks", ready: (p) => p.getByTestId("hooks-table").waitFor({ timeout: WAIT }) },
      { name: "ai", path: "/ai", ready: (p) => p.getByTestId("ai-decisions").waitFor({ timeout: WAIT }) },
      { name: "governance-users", path: "/governance/users", ready: (p) => p.getByTestId("users-table").waitFor({ timeout: WAIT }) },
      { name: "governance-roles", path: "/governance/roles", ready: (p) => p.getByTestId("roles-table").waitFor({ timeout: WAIT }), before: async (p) => {
        await p.goto(`${base}/governance/roles`); await p.getByTestId("roles-table").waitFor({ timeout: WAIT });
      } },
      { name: "governance-api-keys", path: "/governance/api-keys", ready: (p) => p.getByTestId("keys-table").waitFor({ timeout: WAIT }) },
      { name: "governance-quotas", path: "/governance/quotas", ready: (p) => p.locator('[data-testid="quotas-table"] meter').first().waitFor({ timeout: WAIT }) },
      { name: "governance-policies", path: "/governance/policies", ready: (p) => p.getByTestId("policies-table").waitFor({ timeout: WAIT }) },
      { name: "governance-audit", path: "/governance/audit", ready: async (p) => { await p.getByTestId("audit-table").waitFor({ timeout: WAIT }); await p.getByTestId("audit-verify").click(); await p.getByTestId("audit-verification").waitFor({ timeout: WAIT }); } },
      { name: "governance-reports", path: "/governance/reports", ready: (p) => p.getByTestId("reports-table").waitFor({ timeout: WAIT }) },
      { name: "governance-schedules", path: "/governance/schedules", ready: (p) => p.getByTestId("schedules-form").waitFor({ timeout: WAIT }) },
      { name: "alerts", path: "/alerts", ready: (p) => p.getByTestId("alert-rules").waitFor({ timeout: WAIT }), before: async () => {
        await world.api.POST("/api/alerts/rules", { body: { team: "default", name: "instances-down", kind: "instance_down", severity: "critical" } });
        await world.api.POST("/api/alerts/rules", { body: { team: "default", name: "not-ready-5m", kind: "instance_not_ready", params: { minutes: 5 } } });
      } },
      { name: "settings", path: "/settings", ready: (p) => p.getByTestId("control-plane-health").waitFor({ timeout: WAIT }) },
    ];

    for (const scheme of ["light", "dark"] as const) {
      const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: scheme, locale: "en-US" })).newPage();
      const failures = watchFailures(page);
      if (scheme === "light") {
        await page.goto(`${base}/`);
        await page.getByLabel("Username").waitFor({ timeout: WAIT });
        await page.screenshot({ path: `${OUT}login.png` });
      }
      await signIn(page, base, admin);
      for (const shot of scheme === "light" ? shots : shots.filter((s) => s.name === "fleet" || s.name === "instance")) {
        if (scheme === "light") await shot.before?.(page);
        await page.goto(`${base}${shot.path}`);
        try {
          await shot.ready(page);
          await shot.open?.(page);
        } catch (err) {
          const where = path.join(os.tmpdir(), `console-shot-${shot.name}-failed.png`);
          await page.screenshot({ path: where, fullPage: true });
          failures.push(`${shot.name}: ${(err as Error).message.split("\n")[0]} (the page as it was: ${where})`);
          continue;
        }
        await page.waitForTimeout(400); // charts and fonts settle
        const file = `${OUT}${shot.name}${scheme === "dark" ? "-dark" : ""}.png`;
        await page.screenshot({ path: file, fullPage: true });
        console.log(`  ${file}`);
      }
      if (failures.length > 0) throw new Error(`failures:\n${failures.join("\n")}`);
    }
  } finally {
    await browser.close();
    await world.close();
  }
}

/**
 * Fleet delivery with something in it: the seeded instance labelled env=staging and rolled out to (its newest stored
 * version, one wave, so the page shows a completed wave), a pipeline whose prod promotion waits for approval, a CI hook.
 */
async function seedDelivery(api: ApiClient, instanceId: string): Promise<{ rolloutId: string; pipelineId: string }> {
  const must = <T>(what: string, a: { data?: T; error?: unknown; response: Response }): T => {
    if (!a.data) throw new Error(`${what}: ${a.response.status} ${JSON.stringify(a.error)}`);
    return a.data;
  };
  must("labels", await api.PATCH("/api/instances/{id}", { params: { path: { id: instanceId } }, body: { labels: { env: "staging", region: "eu-west" } } }));
  const version = must("versions", await api.GET("/api/deployments/versions", { params: { query: { instanceId } } })).items[0]!;
  const rollout = must("rollout", await api.POST("/api/rollouts", { body: {
    selector: "env=staging", versionId: version.id, waves: ["100%"], description: "support-agent v2 to staging",
    deployment: { analysisSeconds: 1, rollbackWindowSeconds: 0 },
  } as unknown as ApiBody<"/api/rollouts", "post"> }));
  const pipeline = must("pipeline", await api.POST("/api/pipelines", { body: { name: "support", stages: [
    { name: "staging", selector: "env=staging" },
    { name: "prod", selector: "env=prod", requiresApproval: true },
  ] } as ApiBody<"/api/pipelines", "post"> }));
  must("promotion", await api.POST("/api/pipelines/{id}/stages/{stage}/promote", { params: { path: { id: pipeline.id, stage: "prod" } }, body: { versionId: version.id, description: "v2 to prod" } }));
  must("hook", await api.POST("/api/webhooks/ci", { body: { name: "support-main", action: { kind: "rollout", selector: "env=staging", rollout: { waves: [1, "100%"] } } } as ApiBody<"/api/webhooks/ci", "post"> }));
  return { rolloutId: rollout.id, pipelineId: pipeline.id };
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
