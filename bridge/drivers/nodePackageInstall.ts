/**
 * Installs a node package tarball into a running Node-RED and makes sure the
 * tarball's version is the one loaded. POST /nodes loads a package that is
 * new to the instance at once; a newer version of a package it already
 * loaded is installed on disk but answered `pending_version` (and a package
 * found in node_modules from an earlier run of the same userDir stays loaded
 * in its old version), so Node-RED must restart before the new nodes exist.
 * The caller supplies the restart: only a runtime that serves no traffic yet
 * (a fresh instance, a blue-green green) should be restarted here.
 */
import { gunzipSync } from "node:zlib";
import fs from "node:fs/promises";
import { BridgeError } from "../errors.ts";
import type { AdminApi } from "./nodeRedAdmin.ts";

export interface TarballPackage {
  name: string;
  version: string;
}

/** name and version from `package/package.json` inside an npm tarball (gzip + ustar). */
export async function tarballPackage(tarball: string): Promise<TarballPackage> {
  const tar = gunzipSync(await fs.readFile(tarball));
  for (let at = 0; at + 512 <= tar.length;) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const name = cString(header.subarray(0, 100));
    const prefix = cString(header.subarray(345, 500));
    const size = parseInt(cString(header.subarray(124, 136)).trim() || "0", 8);
    const full = prefix ? `${prefix}/${name}` : name;
    if (full === "package/package.json") {
      const pkg = JSON.parse(tar.subarray(at + 512, at + 512 + size).toString("utf8")) as { name?: unknown; version?: unknown };
      if (typeof pkg.name !== "string" || typeof pkg.version !== "string") break;
      return { name: pkg.name, version: pkg.version };
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new BridgeError("invalid_args", `${tarball} is not an npm tarball with package/package.json`);
}

function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Buffer.from(end === -1 ? b : b.subarray(0, end)).toString("utf8");
}

/** The version of `module` Node-RED runs now, and the one waiting for a restart (GET /nodes). */
export async function loadedVersion(admin: AdminApi, base: string, module: string): Promise<{ version?: string; pending?: string }> {
  const sets = (await admin.nodeSets(base)) as Array<{ module?: string; version?: string; pending_version?: string }>;
  const mine = sets.find((s) => s.module === module);
  return { ...(mine?.version ? { version: mine.version } : {}), ...(mine?.pending_version ? { pending: mine.pending_version } : {}) };
}

/**
 * Upload, then: the tarball's version loaded → done; an older one → `restart()` once
 * and check again. Returns what happened, for the log.
 */
export async function installNodePackage(
  admin: AdminApi, base: () => string, tarball: string, restart: () => Promise<void>,
): Promise<"loaded" | "upgraded"> {
  const pkg = await tarballPackage(tarball);
  await admin.uploadNodePackage(base(), tarball);
  const before = await loadedVersion(admin, base(), pkg.name);
  if (before.version === pkg.version && !before.pending) return "loaded";
  await restart();
  const after = await loadedVersion(admin, base(), pkg.name);
  if (after.version !== pkg.version) {
    throw new BridgeError("node_red_error", `${pkg.name} ${pkg.version} was installed but Node-RED at ${base()} runs ${after.version ?? "none"} after a restart`);
  }
  return "upgraded";
}
