/**
 * The bridge's command ledger on a real filesystem: outcomes survive a
 * reopen, a line torn by a crash costs only that line, and the file stays
 * bounded however many commands pass through.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CommandLedger } from "../../bridge/dedupe.ts";

let dir: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-ledger-"));
});

afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe("command ledger", () => {
  it("remembers started and finished commands across a reopen", async () => {
    const ledger = await CommandLedger.open(dir);
    await ledger.begin("cmd_a", "instance.create");
    await ledger.finish("cmd_a", { status: "ok", result: { state: "running" } });
    await ledger.begin("cmd_b", "instance.start");
    await ledger.close();

    const again = await CommandLedger.open(dir);
    expect(again.get("cmd_a")).toMatchObject({ type: "instance.create", outcome: { status: "ok", result: { state: "running" } } });
    expect(again.get("cmd_b")).toMatchObject({ type: "instance.start" });
    expect(again.get("cmd_b")!.outcome).toBeUndefined();
    await again.close();
  });

  it("loses only the line a crash tore, and appends cleanly after it", async () => {
    const ledger = await CommandLedger.open(dir);
    await ledger.begin("cmd_a", "instance.stop");
    await ledger.finish("cmd_a", { status: "ok" });
    await ledger.close();
    await fs.appendFile(path.join(dir, "commands.jsonl"), '{"id":"cmd_b","type":"inst');

    const again = await CommandLedger.open(dir);
    expect(again.get("cmd_a")!.outcome).toEqual({ status: "ok" });
    expect(again.get("cmd_b")).toBeUndefined();
    await again.begin("cmd_c", "instance.scale");
    await again.close();
    const third = await CommandLedger.open(dir);
    expect(third.get("cmd_c")).toMatchObject({ type: "instance.scale" });
    await third.close();
  });

  it("keeps only the newest ids, in a file that stays bounded", async () => {
    const ledger = await CommandLedger.open(dir, { maxEntries: 5 });
    for (let i = 0; i < 40; i++) {
      await ledger.begin(`cmd_${i}`, "health.report");
      await ledger.finish(`cmd_${i}`, { status: "ok" });
    }
    expect(ledger.size).toBe(5);
    expect(ledger.get("cmd_34")).toBeUndefined();
    expect(ledger.get("cmd_35")).toBeDefined();
    const lines = (await fs.readFile(path.join(dir, "commands.jsonl"), "utf8")).trim().split("\n");
    expect(lines.length).toBeLessThanOrEqual(10);
    await ledger.close();

    const again = await CommandLedger.open(dir, { maxEntries: 5 });
    expect(again.get("cmd_39")!.outcome).toEqual({ status: "ok" });
    expect(again.size).toBe(5);
    await again.close();
  });
});
