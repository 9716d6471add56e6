/**
 * A stopped Node-RED's process group is emptied: what it started (an `npm install` for POST /nodes)
 * does not outlive it and keep writing to its userDir (a clean-clone CI found one running 90 s later).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { reapGroup } from "../../bridge/drivers/process/runtimeRecord.ts";
import { until } from "../harness/eventually.ts";

/** Running: a zombie (killed, its new parent not yet reaping it: this container's PID 1 may never) is gone. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

describe("reapGroup", () => {
  it("kills what a detached runtime left in its group after the runtime itself exited", async () => {
    // The leader starts a child that ignores SIGTERM (as an npm install may), prints its pid and exits.
    const leader = spawn("sh", ["-c", "trap '' TERM; sleep 300 & echo $!"], { detached: true, stdio: ["ignore", "pipe", "ignore"] });
    const exited = new Promise((r) => leader.once("exit", r));
    const childPid = Number(await new Promise<string>((resolve) => leader.stdout!.once("data", (d) => resolve(String(d).trim()))));
    await exited;
    expect(alive(childPid), "the orphan survives its leader").toBe(true);

    reapGroup(leader.pid!);
    await until("the orphan to be gone", () => !alive(childPid), { timeoutMs: 10_000 });
    reapGroup(leader.pid!); // an empty group: nothing to do, nothing thrown
  });
});
