/**
 * The checkpoint journal (flows/node-package/lib/checkpointJournal.js) on a
 * real file: what survives a restart (the latest record per workflow, the
 * records the broker never acknowledged), a torn last line, compaction, and
 * what a restarted runtime does with each kind of last record.
 */
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { stateOfPhase, checkpointRecordSchema } from "../../protocol/workflows.ts";

const require = createRequire(import.meta.url);
interface Rec { checkpointId: string; workflowId: string; kind: string; step: string; phase: string; completed: string[]; state?: unknown }
const { CheckpointJournal, JOURNAL_FILE, hashOf, resumeAction } = require("../../flows/node-package/lib/checkpointJournal.js") as {
  CheckpointJournal: new (dir: string) => { latest: Map<string, Rec>; unacked: Map<string, Rec>; append(r: Rec): void; ack(id: string): void; file: string };
  JOURNAL_FILE: string;
  hashOf(v: unknown): string;
  resumeAction(rec: Rec | undefined, repeatable: boolean): string;
};

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "ckpt-journal-")); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

let n = 0;
const rec = (workflowId: string, step: string, phase: string, completed: string[] = []): Rec =>
  ({ checkpointId: `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}`, workflowId, kind: "k", step, phase, completed, state: { step } });

describe("checkpoint journal", () => {
  it("a new process on the same userDir knows each workflow's last record and what was never acknowledged", () => {
    const j = new CheckpointJournal(dir);
    const a1 = rec("a", "s1", "started");
    const a2 = rec("a", "s1", "completed", ["s1"]);
    const b1 = rec("b", "s1", "started");
    j.append(a1);
    j.append(a2);
    j.append(b1);
    j.ack(a1.checkpointId);
    j.ack(a2.checkpointId);
    const again = new CheckpointJournal(dir);
    expect(again.latest.get("a")).toMatchObject({ step: "s1", phase: "completed", completed: ["s1"] });
    expect(again.latest.get("b")).toMatchObject({ phase: "started" });
    expect([...again.unacked.keys()]).toEqual([b1.checkpointId]);
  });

  it("a torn last line (killed mid-write) is ignored, the rest kept", () => {
    const j = new CheckpointJournal(dir);
    j.append(rec("a", "s1", "completed", ["s1"]));
    fs.appendFileSync(path.join(dir, JOURNAL_FILE), '{"checkpointId":"x","workflowId":"a","ph');
    const again = new CheckpointJournal(dir);
    expect(again.latest.get("a")).toMatchObject({ phase: "completed" });
  });

  it("compaction at start keeps unfinished workflows and unacknowledged records only", () => {
    const j = new CheckpointJournal(dir);
    const done = rec("done", "s2", "finished", ["s1", "s2"]);
    const open = rec("open", "s1", "completed", ["s1"]);
    const pending = rec("pending", "s1", "cancelled");
    for (const r of [rec("done", "s1", "started"), done, open, pending]) j.append(r);
    j.ack(done.checkpointId);
    const again = new CheckpointJournal(dir);
    expect([...again.latest.keys()].sort()).toEqual(["open", "pending"]);
    const lines = fs.readFileSync(path.join(dir, JOURNAL_FILE), "utf8").trim().split("\n");
    // done's acknowledged last record is gone; its first record was never acknowledged, so it stays to be sent.
    expect(lines.map((l) => `${JSON.parse(l).workflowId}:${JSON.parse(l).phase}`).sort()).toEqual(["done:started", "open:completed", "pending:cancelled"]);
  });

  it("a journal that cannot be written throws (the node fails the step instead of going on)", () => {
    const j = new CheckpointJournal(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(() => j.append(rec("a", "s1", "started"))).toThrow();
  });
});

describe("what a restarted runtime does with a workflow's last record", () => {
  it("continues after a completed step, reruns only a repeatable interrupted step, leaves final ones alone", () => {
    expect(resumeAction(rec("a", "s2", "completed"), false)).toBe("continue");
    expect(resumeAction(rec("a", "s2", "started"), false)).toBe("interrupted");
    expect(resumeAction(rec("a", "s2", "started"), true)).toBe("rerun");
    for (const phase of ["finished", "failed", "cancelled", "handed_over"]) expect(resumeAction(rec("a", "s2", phase), true)).toBe("none");
    expect(resumeAction(undefined, true)).toBe("none");
  });

  it("the input hash is stable for equal input and differs for different input", () => {
    expect(hashOf({ a: 1 })).toBe(hashOf({ a: 1 }));
    expect(hashOf({ a: 1 })).not.toBe(hashOf({ a: 2 }));
    expect(hashOf(undefined)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("the control plane reads phases as run states and accepts the node's record shape", () => {
    expect(["started", "completed", "handed_over", "finished", "failed", "cancelled"].map((p) => stateOfPhase(p as never)))
      .toEqual(["running", "running", "running", "completed", "failed", "cancelled"]);
    const wire = { ...rec("a", "s1", "started"), checkpointId: crypto.randomUUID(), instanceId: crypto.randomUUID(), runtimeId: "x.b", at: new Date().toISOString(), inputHash: hashOf(1) };
    expect(checkpointRecordSchema.safeParse(wire).success).toBe(true);
    expect(checkpointRecordSchema.safeParse({ ...wire, phase: "paused" }).success).toBe(false);
  });
});
