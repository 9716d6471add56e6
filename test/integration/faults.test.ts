/**
 * The zero-loss promise under faults (issue 12): a blue-green deployment of
 * real Node-RED under a numbered MQTT + HTTP load (200 msg/s through the
 * instance's front), with the bridge running as its own CLI process, while
 * something breaks. Whatever breaks, a user must notice nothing: no message
 * lost or processed twice, every HTTP request answered, the deployment ends
 * completed or rolled back (never `failed` with work held), the loss it
 * reports is the loss there was, and the instance answers afterwards.
 * Each fault is its own describe (test/harness/faultStack.ts says what each does).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAULTS, runFault, startFaultCluster, type FaultCluster, type FaultKey, type FaultRun } from "../harness/faultStack.ts";
import { startTestStack, type TestStack } from "../harness/testStack.ts";
import { losses } from "../harness/zeroLoss.ts";

let stack: TestStack;
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "redforge-faults-"));
  stack = await startTestStack({ worker: "wrangler" });
}, 180_000);

// Bridge logs stay in `dir` for diagnosis (each failure message names its file); state dirs go with each cluster.
afterAll(async () => stack?.stop(), 60_000);

/**
 * What a user would notice after `run`, each as its own soft assertion so one run shows every broken promise.
 * `mqttOnly`: a host restart kills every process that holds an HTTP connection (the data plane, Node-RED),
 * so requests in flight at that instant and those sent while nothing listens cannot be answered; what is
 * promised there is the MQTT stream (broker sessions + the hold spool), the deployment's outcome and an
 * instance that answers again. The HTTP figures are printed and documented (docs/deployments.md "Faults").
 */
function expectNothingNoticed(run: FaultRun, opts: { mqttOnly?: boolean } = {}): void {
  const why = `${FAULTS[run.key].title}\n  ${run.notes.join("\n  ")}`;
  const r = losses(run.report);
  const first = (seqs: number[]) => (seqs.length ? ` (first ${seqs.slice(0, 8).join(", ")})` : "");
  const seen = { lostMqtt: r.lostMqtt.length, duplicatedMqtt: r.duplicatedMqtt.length, httpUnanswered: r.httpUnanswered, httpErrors: r.httpErrors };
  if (opts.mqttOnly) console.log(`${FAULTS[run.key].title}: HTTP unanswered ${r.httpUnanswered}, errors ${r.httpErrors} (not asserted: connections the kill cut)`);
  expect.soft(
    opts.mqttOnly ? { lostMqtt: seen.lostMqtt, duplicatedMqtt: seen.duplicatedMqtt } : seen,
    `${why}\n  lost${first(r.lostMqtt)}, duplicated${first(r.duplicatedMqtt)}`,
  ).toEqual(opts.mqttOnly ? { lostMqtt: 0, duplicatedMqtt: 0 } : { lostMqtt: 0, duplicatedMqtt: 0, httpUnanswered: 0, httpErrors: 0 });
  expect.soft(run.finalStatus, why).toMatch(/^(completed|rolled_back)$/);
  expect.soft(run.reportedLost, `metrics.messagesLost vs measured: ${why}`).toBe(opts.mqttOnly ? r.lostMqtt.length : run.measuredLost);
  expect.soft(run.frontAfter, `the instance answers after the run: ${why}`).toMatch(/^200 /);
}

function faultSuite(key: FaultKey): void {
  describe(FAULTS[key].title, () => {
    let cluster: FaultCluster;
    beforeAll(async () => {
      cluster = await startFaultCluster(stack, `faults-${key}`, path.join(dir, key));
    }, 180_000);
    afterAll(async () => cluster?.close(), 90_000);

    it("loses nothing, duplicates nothing, answers every request, and reports what it cost", async () => {
      // HTTP waits up to 60 s: a request held through a restart and answered late is slow, not lost (the bench's 15 s counts it).
      // (i) holds work for as long as the Worker is away, which on a loaded machine passed 60 s (the
      // bridge does not bound a hold on its own yet: docs/deployments.md "Faults"), so it waits longer.
      const httpTimeoutMs = key === "i" ? 240_000 : 60_000;
      const run = await runFault(cluster, key, { rate: 200, beforeMs: 1500, afterMs: 1500, holdDuring: "deploy", httpTimeoutMs, deploymentTimeoutMs: 300_000 });
      // The harness's own precondition: the fault struck while blue drained (not before, not never).
      if (key !== "h") expect(run.injectedAt, run.notes.join("\n")).toBeDefined();
      expect(run.report.sent.mqtt).toBeGreaterThan(300);
      expectNothingNoticed(run, { mqttOnly: key === "g" });
    }, 600_000);
  });
}

faultSuite("f");
faultSuite("g");
faultSuite("h");
faultSuite("i");
