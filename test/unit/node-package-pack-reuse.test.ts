/**
 * bridge/nodePackage.ts packNodePackage: a tarball packed earlier from the same package content is
 * reused (a bridge start, e.g. after a host restart, does not wait for `npm pack` again), and any change
 * to the package's files packs again. Real `npm pack` on a small package in a temp dir.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { contentKey, packNodePackage } from "../../bridge/nodePackage.ts";

const dirs: string[] = [];
afterAll(async () => { for (const d of dirs) await fs.rm(d, { recursive: true, force: true }); });

async function tinyPackage(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-pack-src-"));
  dirs.push(dir);
  await fs.writeFile(path.join(dir, "package.json"), JSON.stringify({ name: "redforge-pack-probe", version: "1.0.0", files: ["lib/"] }));
  await fs.mkdir(path.join(dir, "lib"));
  await fs.writeFile(path.join(dir, "lib", "a.js"), "module.exports = 1;\n");
  return dir;
}

describe("packNodePackage", () => {
  it("reuses the tarball packed from the same content, and packs again after any file changes", async () => {
    const pkg = await tinyPackage();
    const out = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-pack-out-"));
    dirs.push(out);

    const first = await packNodePackage(out, pkg);
    const packedAt = (await fs.stat(first)).mtimeMs;
    // Marked so a repack (which rewrites the file) is told apart from a reuse.
    await fs.utimes(first, new Date(0), new Date(0));
    const again = await packNodePackage(out, pkg);
    expect(again).toBe(first);
    expect((await fs.stat(again)).mtimeMs).toBe(0);
    expect(packedAt).toBeGreaterThan(0);

    // Same size, other bytes: packed again, and the tarball holds the new file.
    await fs.writeFile(path.join(pkg, "lib", "a.js"), "module.exports = 2;\n");
    const edited = await packNodePackage(out, pkg);
    expect(edited).toBe(first);
    expect((await fs.stat(edited)).mtimeMs).toBeGreaterThan(0);

    // A file added: another key.
    const before = await contentKey(pkg);
    await fs.writeFile(path.join(pkg, "lib", "b.js"), "");
    expect(await contentKey(pkg)).not.toBe(before);

    // The tarball removed by hand: packed again, not a path to nothing.
    await fs.rm(edited);
    const restored = await packNodePackage(out, pkg);
    await expect(fs.access(restored)).resolves.toBeUndefined();
  }, 120_000);
});
