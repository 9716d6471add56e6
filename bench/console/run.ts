/**
 * `npm run bench:console`: what the console costs a browser, beside a baseline
 * measured in the same run, in the same Chromium (@sparticuz/chromium):
 *   - JS shipped for the first page (/fleet), gzip (level 6, as a CDN would send it);
 *   - navigation → the fleet table painted with BENCH_INSTANCES (1,000) instances
 *     (the whole list read from the API by its cursors, 200 a page), median of BENCH_RUNS;
 *   - a /ws/fleet `instance:status` frame sent → its row painted with the new status, median
 *     and p95 of BENCH_EVENTS (the frame goes from this process to the page through playwright's
 *     socket route, a hop the baseline pays too; both clocks are this machine's).
 * The baseline is a static page with the same 1,000 rows rendered on the server and a
 * 10-line script applying the frames: the floor any console could reach.
 * The API and the socket are answered in the browser (playwright routes) from a fixture,
 * so the figures are the console's own, not Postgres's on a shared 2-core machine.
 * "Painted" = the DOM holds the rows / the new status, then one animation frame and a task.
 */
import http from "node:http";
import nodePath from "node:path";
import fs from "node:fs/promises";
import zlib from "node:zlib";
import type { Browser, BrowserContext, WebSocketRoute } from "playwright-core";
import { APP_DIR, buildConsoleIfStale, launchChromium } from "../../scripts/console-browser.ts";
import { BASELINE_JS, baselineHtml, CLUSTER, fleet, instancesPage } from "./fleetFixture.ts";

// The functions handed to addInitScript / page.evaluate run in the page; this Node program has no DOM types.
/* eslint-disable @typescript-eslint/no-explicit-any */
declare const window: any, document: any, location: any, MutationObserver: any;
declare function requestAnimationFrame(cb: () => void): number;

const N = Number(process.env.BENCH_INSTANCES ?? 1000);
/** Another build of the console (e.g. the one before a change, `cp -r app/dist /tmp/before`) measured in the same run. */
const BEFORE_DIST = process.env.BENCH_BEFORE_DIST;
/** Chromium's CPU throttling (CDP Emulation.setCPUThrottlingRate): 4 makes a quiet machine behave like a loaded one. */
const CPU_SLOWDOWN = Number(process.env.BENCH_CPU_SLOWDOWN ?? 1);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 20);
const DIST = nodePath.join(APP_DIR, "dist");
const USER = { id: "00000000-0000-4000-8000-00000000a001", username: "bench", role: "admin" };
const TYPES: Record<string, string> = { ".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml" };

const instances = fleet(N);

function serveStatic(dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/baseline.html") { res.writeHead(200, { "content-type": "text/html" }); res.end(baselineHtml(instances)); return; }
    if (url.pathname === "/baseline.js") { res.writeHead(200, { "content-type": "text/javascript" }); res.end(BASELINE_JS); return; }
    const file = nodePath.join(dir, nodePath.normalize(url.pathname).replace(/^(\.\.[/\\])+/, ""));
    const body = await fs.readFile(file).catch(() => null);
    if (body && !url.pathname.endsWith("/")) { res.writeHead(200, { "content-type": TYPES[nodePath.extname(file)] ?? "application/octet-stream" }); res.end(body); return; }
    res.writeHead(200, { "content-type": "text/html" }); // single-page app: every other path is the console
    res.end(await fs.readFile(nodePath.join(dir, "index.html")));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as { port: number };
    resolve({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) });
  }));
}

/** Runs in the page before anything else: records when the first rows, and then the full table, are painted. */
function instrument(expected: number): void {
  const w = window as unknown as { __bench: { tablePainted?: number; firstRows?: number } };
  w.__bench = {};
  const anyRow = () => document.querySelector('[data-testid="fleet-table"] tbody tr[data-instance]');
  const done = () => document.querySelector('[data-testid="fleet-count"]')?.textContent?.startsWith(`${expected} instances`) && anyRow();
  const painted = (key: "tablePainted" | "firstRows") => {
    w.__bench[key] = -1;
    requestAnimationFrame(() => setTimeout(() => { w.__bench[key] = performance.now(); }, 0));
  };
  const check = () => {
    if (w.__bench.firstRows === undefined && anyRow()) painted("firstRows");
    if (w.__bench.tablePainted !== undefined || !done()) return;
    observer.disconnect();
    painted("tablePainted");
  };
  const observer = new MutationObserver(check);
  // A server-rendered table is complete when the document is parsed; a rendered one appears later.
  document.addEventListener("DOMContentLoaded", () => { observer.observe(document.body, { childList: true, subtree: true, characterData: true }); check(); });
}

async function newContext(browser: Browser, base: string, sockets: WebSocketRoute[], counts: { instancePages: number }): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale: "en-US" });
  // tsx (esbuild, keepNames) wraps named functions in __name(); functions sent to the page need it defined there.
  await context.addInitScript({ content: "globalThis.__name = (f) => f;" });
  await context.addInitScript(({ user }) => {
    if (location.protocol === "http:") sessionStorage.setItem("redforge.session", JSON.stringify({ token: "bench", expiresAt: new Date(Date.now() + 3_600_000).toISOString(), user }));
  }, { user: USER });
  await context.addInitScript(instrument, N);
  await context.route(`${base}/api/**`, async (route) => {
    const url = new URL(route.request().url());
    const json = (body: unknown, status = 200) => route.fulfill({ status, contentType: "application/json", body: JSON.stringify(body) });
    if (url.pathname === "/api/auth/me") return json({ ...USER, team: "default", via: "token", permissions: [{ resource: "*", action: "*" }] });
    if (url.pathname === "/api/instances") { counts.instancePages++; return json(instancesPage(instances, url)); }
    if (url.pathname.startsWith("/api/instances/")) return json(instances.find((i) => url.pathname.endsWith(i.id)) ?? {});
    if (url.pathname === "/api/clusters") return json({ items: [CLUSTER], nextCursor: null });
    return json({ error: { code: "not_found", message: "not in the bench fixture" } }, 404);
  });
  await context.routeWebSocket(/\/ws\/fleet/, (ws) => { sockets.push(ws); ws.onMessage((m) => { if (m === "ping") ws.send("pong"); }); });
  return context;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]!; };
const p95 = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(s.length * 0.95) - 1)]!; };

interface Figures { jsGzip: number; jsRaw: number; cssGzip: number; paint: number[]; firstRows: number[]; event: number[]; pagesRead: number[] }

const newFigures = (): Figures => ({ jsGzip: 0, jsRaw: 0, cssGzip: 0, paint: [], firstRows: [], event: [], pagesRead: [] });

/** One run (navigation, paint; on run 0 also the bytes and the events) added to `out`. */
async function measure(browser: Browser, base: string, path: string, run: number, out: Figures): Promise<void> {
  {
    const sockets: WebSocketRoute[] = [];
    const counts = { instancePages: 0 };
    const context = await newContext(browser, base, sockets, counts);
    const page = await context.newPage();
    if (CPU_SLOWDOWN > 1) await (await context.newCDPSession(page)).send("Emulation.setCPUThrottlingRate", { rate: CPU_SLOWDOWN });
    const bodies: Promise<void>[] = [];
    if (run === 0) {
      page.on("response", (r) => {
        const type = r.headers()["content-type"] ?? "";
        if (!/javascript|css/.test(type)) return;
        bodies.push(r.body().then((b) => {
          const gz = zlib.gzipSync(b, { level: 6 }).length;
          if (type.includes("css")) out.cssGzip += gz; else { out.jsGzip += gz; out.jsRaw += b.length; }
        }));
      });
    }
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${base}${path}`);
    await page.waitForFunction(() => ((window as unknown as { __bench: { tablePainted?: number } }).__bench.tablePainted ?? -1) > 0, null, { timeout: 60_000 }).catch(async (err) => {
      const seen = await page.locator('[data-testid="fleet-count"]').textContent({ timeout: 1000 }).catch(() => "no count");
      throw new Error(`${path}: the table never showed ${N} rows (count: ${seen}; page errors: ${errors.join("; ") || "none"}): ${(err as Error).message.split("\n")[0]}`);
    });
    const marks = await page.evaluate(() => (window as unknown as { __bench: { tablePainted: number; firstRows: number } }).__bench);
    out.paint.push(marks.tablePainted);
    out.firstRows.push(marks.firstRows > 0 ? marks.firstRows : marks.tablePainted);
    out.pagesRead.push(counts.instancePages);
    if (process.env.BENCH_TRACE && path !== "/baseline.html") {
      // Where the time went: each script, style and API read (start → end, ms from navigation), then the paint.
      const entries = await page.evaluate(() => (performance.getEntriesByType("resource") as unknown as { name: string; startTime: number; responseEnd: number }[])
        .map((e) => `${Math.round(e.startTime)}→${Math.round(e.responseEnd)} ${e.name.replace(location.origin, "")}`));
      console.log(`${base}${path} run ${run}: ${entries.join(" | ")} | painted ${Math.round(out.paint.at(-1)!)}`);
    }
    await Promise.all(bodies);

    if (run === 0 && process.env.BENCH_SHOT) {
      await page.mouse.wheel(0, 15_000);
      await page.waitForTimeout(500);
      await page.screenshot({ path: `${process.env.BENCH_SHOT}-${path.replace(/\W/g, "")}.png` });
      await page.mouse.wheel(0, -15_000);
      await page.waitForTimeout(500);
    }
    if (run === 0) {
      await page.waitForFunction(() => document.querySelector('[data-testid="live"]')?.textContent !== "connecting…" || !document.querySelector('[data-testid="live"]'), null, { timeout: 30_000 });
      const target = instances[0]!;
      for (let e = 0; e < EVENTS; e++) {
        const status = e % 2 === 0 ? "stopped" : "running";
        // Watch for the row first, then send: the promise resolves once the new status is painted.
        await page.evaluate(({ name, status }) => {
          const w = window as unknown as { __wait: Promise<number> };
          w.__wait = new Promise((resolve) => {
            const hit = () => document.querySelector(`tr[data-instance="${name}"] [data-status="${status}"]`);
            const paint = () => requestAnimationFrame(() => setTimeout(() => resolve(performance.timeOrigin + performance.now()), 0));
            if (hit()) return paint();
            const o = new MutationObserver(() => { if (hit()) { o.disconnect(); paint(); } });
            o.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
          });
        }, { name: target.name, status });
        const ws = sockets.at(-1);
        if (!ws) throw new Error("the page opened no /ws/fleet socket");
        const sent = Date.now();
        ws.send(JSON.stringify({ event: "instance:status", data: { instanceId: target.id, clusterId: CLUSTER.id, status, desiredState: "running", reason: null, timestamp: new Date().toISOString() } }));
        const painted = await page.evaluate(() => (window as unknown as { __wait: Promise<number> }).__wait);
        out.event.push(painted - sent);
      }
    }
    await page.goto("about:blank"); // frees the table; the context stays (see main)
  }
}

async function main(): Promise<void> {
  await buildConsoleIfStale();
  const [server, before, browser] = await Promise.all([serveStatic(DIST), BEFORE_DIST ? serveStatic(BEFORE_DIST) : null, launchChromium()]);
  try {
    // Warm Chromium itself up once so the first measured run is not its cold start.
    // @sparticuz/chromium runs --single-process: closing the last page takes the browser down, so pages stay open.
    const warm = await browser.newPage(); await warm.goto(`${server.url}/baseline.html`);
    const baseline = newFigures(), consoleFigures = newFigures(), beforeFigures = before ? newFigures() : null;
    // Interleaved, so a change in the machine's load falls on every variant alike.
    for (let run = 0; run < RUNS; run++) {
      await measure(browser, server.url, "/baseline.html", run, baseline);
      await measure(browser, server.url, "/fleet", run, consoleFigures);
      if (before && beforeFigures) await measure(browser, before.url, "/fleet", run, beforeFigures);
    }
    const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
    const ms = (x: number) => `${Math.round(x)} ms`;
    const paintRow = (f: Figures) => `${ms(median(f.paint))} (${f.paint.map(ms).join(", ")})`;
    const rows: [string, string, string, string][] = [
      ["JS for the first page, gzip (raw)", `${kb(consoleFigures.jsGzip)} (${kb(consoleFigures.jsRaw)})`, `${kb(baseline.jsGzip)} (${kb(baseline.jsRaw)})`, "< 150 KB"],
      ["CSS for the first page, gzip", kb(consoleFigures.cssGzip), kb(baseline.cssGzip), ""],
      [`navigation → ${N.toLocaleString("en-US")}-row fleet table painted, median of ${RUNS} (all)`, `${ms(median(consoleFigures.paint))} (${consoleFigures.paint.map(ms).join(", ")})`, `${ms(median(baseline.paint))} (${baseline.paint.map(ms).join(", ")})`, "< 1 s"],
      [`/ws/fleet event → row painted, median / p95 of ${EVENTS}`, `${ms(median(consoleFigures.event))} / ${ms(p95(consoleFigures.event))}`, `${ms(median(baseline.event))} / ${ms(p95(baseline.event))}`, "< 100 ms"],
      [`navigation → first rows painted, median of ${RUNS} (all)`, `${ms(median(consoleFigures.firstRows))} (${consoleFigures.firstRows.map(ms).join(", ")})`, `${ms(median(baseline.firstRows))}`, ""],
      ["`GET /api/instances` pages read by the time it is painted, per run", consoleFigures.pagesRead.join(", "), "0", ""],
    ];
    if (beforeFigures) {
      rows.push(
        [`before (${BEFORE_DIST}): JS gzip (raw)`, `${kb(beforeFigures.jsGzip)} (${kb(beforeFigures.jsRaw)})`, "", ""],
        [`before: navigation → ${N.toLocaleString("en-US")}-row table painted, median of ${RUNS} (all)`, paintRow(beforeFigures), "", "< 1 s"],
        [`before: navigation → first rows painted, median of ${RUNS} (all)`, `${ms(median(beforeFigures.firstRows))} (${beforeFigures.firstRows.map(ms).join(", ")})`, "", ""],
        [`before: /ws/fleet event → row painted, median / p95`, `${ms(median(beforeFigures.event))} / ${ms(p95(beforeFigures.event))}`, "", "< 100 ms"],
        ["before: `GET /api/instances` pages read by the time it is painted", beforeFigures.pagesRead.join(", "), "", ""],
      );
    }
    const load = (await fs.readFile("/proc/loadavg", "utf8").catch(() => "?")).split(" ").slice(0, 3).join(" ");
    console.log(`\nbench:console: ${N} instances, Chromium ${browser.version()}, CPU slowdown ×${CPU_SLOWDOWN}, load average ${load}, ${new Date().toISOString()}\n`);
    console.log("| measurement | console | baseline (static page) | target |\n|---|---|---|---|");
    for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  } finally {
    await browser.close();
    await server.close();
    await before?.close();
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
