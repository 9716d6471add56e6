/** What every console browser run shares: a fresh app/dist, Chromium from @sparticuz/chromium, signing in, failure watching. */
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import chromium from "@sparticuz/chromium";
import { chromium as playwright, type Browser, type Page } from "playwright-core";
import { build } from "vite";

export const APP_DIR = fileURLToPath(new URL("../app/", import.meta.url));
const BUILT = path.join(APP_DIR, "dist", "index.html");

/** Rebuilds app/dist unless it is newer than every source (another suite may be serving it). */
export async function buildConsoleIfStale(): Promise<void> {
  const built = await fs.stat(BUILT).then((s) => s.mtimeMs, () => 0);
  const sources = await fs.readdir(APP_DIR, { recursive: true, withFileTypes: true });
  let stale = built === 0;
  for (const e of sources) {
    const where = path.join(e.parentPath, e.name);
    if (e.isFile() && !where.includes(`${path.sep}dist${path.sep}`) && (await fs.stat(where)).mtimeMs > built) stale = true;
  }
  if (stale) await build({ configFile: path.join(APP_DIR, "vite.config.ts"), logLevel: "warn" });
}

export async function launchChromium(): Promise<Browser> {
  try {
    const executablePath = await chromium.executablePath();
    return await playwright.launch({ executablePath, args: chromium.args, headless: true });
  } catch (err) {
    throw new Error(`cannot start Chromium from @sparticuz/chromium on this machine: ${(err as Error).message.split("\n")[0]}`);
  }
}

export async function signIn(page: Page, baseUrl: string, who: { username: string; password: string }, timeout = 45_000): Promise<void> {
  await page.goto(`${baseUrl}/`);
  await page.getByLabel("Username").fill(who.username);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Fleet" }).waitFor({ timeout });
}

/** Fails on page errors and CSP violations, as the console suites do. */
export function watchFailures(page: Page): string[] {
  const failures: string[] = [];
  page.on("pageerror", (e) => failures.push(e.message));
  page.on("console", (m) => { if (m.type() === "error" && /Content Security Policy/i.test(m.text())) failures.push(m.text()); });
  return failures;
}

