/**
 * The RedForge node package (flows/node-package) as an npm tarball, the form
 * Node-RED installs offline: uploaded to POST /nodes (field `tarball`) or
 * `npm install`ed into a userDir before start.
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

export const NODE_PACKAGE_DIR = fileURLToPath(new URL("../flows/node-package/", import.meta.url));

/**
 * The package bundles its runtime dependencies (pg, unpdf: `bundleDependencies`) so an instance installs
 * it without a registry; a fresh clone has no flows/node-package/node_modules, so they are installed once
 * from its lockfile (the one step here that may reach the registry, or npm's cache) before packing.
 */
async function ensureBundled(packageDir: string): Promise<void> {
  const manifest = JSON.parse(await fs.readFile(path.join(packageDir, "package.json"), "utf8")) as { bundleDependencies?: string[] };
  const missing = [];
  for (const dep of manifest.bundleDependencies ?? []) {
    if (!(await fs.access(path.join(packageDir, "node_modules", dep, "package.json")).then(() => true, () => false))) missing.push(dep);
  }
  if (missing.length === 0) return;
  await run("npm", ["ci", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
    { cwd: packageDir, env: cleanNpmEnv(), timeout: 300_000, maxBuffer: 4 * 1024 * 1024 });
}

/** Packs the node package into `outDir` (its bundled dependencies installed first if missing); returns the tarball's absolute path. */
export async function packNodePackage(outDir: string, packageDir = NODE_PACKAGE_DIR): Promise<string> {
  await fs.mkdir(outDir, { recursive: true });
  await ensureBundled(packageDir);
  const { stdout } = await run(
    "npm",
    ["pack", packageDir, "--pack-destination", outDir, "--json", "--offline", "--ignore-scripts", "--loglevel=error"],
    // npm_config_* from an enclosing `npm run` (dry-run, workspaces, …) must not change what gets packed.
    { cwd: outDir, env: cleanNpmEnv(), timeout: 60_000, maxBuffer: 4 * 1024 * 1024 },
  );
  const filename = parsePackOutput(stdout);
  const tarball = path.resolve(outDir, filename);
  await fs.access(tarball);
  return tarball;
}

function parsePackOutput(stdout: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new Error(`npm pack printed something that is not JSON: ${stdout.slice(0, 200)}`);
  }
  const filename = Array.isArray(parsed) ? (parsed[0] as { filename?: unknown })?.filename : undefined;
  if (typeof filename !== "string") throw new Error("npm pack did not name the tarball it wrote");
  // Scoped packages are written as scope-name-version.tgz, while older npm printed @scope/name-version.tgz.
  return filename.replace(/^@/, "").replace(/\//, "-");
}

function cleanNpmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return env;
}
