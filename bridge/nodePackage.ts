/**
 * The RedForge node package (flows/node-package) as an npm tarball, the form
 * Node-RED installs offline: uploaded to POST /nodes (field `tarball`) or
 * `npm install`ed into a userDir before start.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
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

/** Beside the tarball: which package content it was packed from ({ key, filename }). */
const PACK_KEY_FILE = "pack-key.json";

/**
 * Packs the node package into `outDir` (its bundled dependencies installed first if missing); returns the
 * tarball's absolute path. A tarball this function packed earlier from the same content (every file's
 * path and bytes, `contentKey`) is reused: `npm pack` took 1.1–2.0 s of a loaded host's restart, before
 * the bridge could start any Node-RED (a systemd install packs at every start: it passes no
 * `--node-package`).
 */
export async function packNodePackage(outDir: string, packageDir = NODE_PACKAGE_DIR): Promise<string> {
  await fs.mkdir(outDir, { recursive: true });
  await ensureBundled(packageDir);
  const key = await contentKey(packageDir);
  const keyFile = path.join(outDir, PACK_KEY_FILE);
  const packed = await fs.readFile(keyFile, "utf8").then((t) => JSON.parse(t) as { key?: unknown; filename?: unknown }, () => undefined);
  if (packed?.key === key && typeof packed.filename === "string" && !packed.filename.includes("/")) {
    const tarball = path.resolve(outDir, packed.filename);
    if (await fs.access(tarball).then(() => true, () => false)) return tarball;
  }
  const tarball = await npmPack(outDir, packageDir);
  // Written after the tarball, by rename: a crash in between packs again next time, never reuses a torn file.
  await fs.writeFile(`${keyFile}.tmp`, JSON.stringify({ key, filename: path.basename(tarball) }));
  await fs.rename(`${keyFile}.tmp`, keyFile);
  return tarball;
}

/** sha256 over every file under `dir` (sorted relative path, size, bytes): any edit, addition or removal changes it. */
export async function contentKey(dir: string): Promise<string> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))).sort();
  const hash = createHash("sha256");
  for (const rel of files) {
    const bytes = await fs.readFile(path.join(dir, rel));
    hash.update(`${rel}\0${bytes.length}\0`).update(bytes);
  }
  return hash.digest("hex");
}

async function npmPack(outDir: string, packageDir: string): Promise<string> {
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
