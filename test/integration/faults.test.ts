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
import { connectAsync } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAULTS, runFault, SHORT_HOLD_SECONDS, startFaultCluster, type FaultCluster, type FaultKey, type FaultRun } from "../harness/faultStack.ts";
import { startTestStack, type TestStack } from "../harness/testStack.ts";
import { losses, RESULTS_TOPIC } from "../harness/zeroLoss.ts";

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
 * - "exact" (f, h): every MQTT message answered once, every HTTP request answered.
 * - "refusals" (i, j: the control plane away): held HTTP requests past the front's 30 s bound are refused
 *   with 503 + Retry-After (honest, the client may retry); none hangs and none is cut.
 * - "hostRestart" (g): the kill takes every process that holds an HTTP connection (the data plane,
 *   Node-RED), so requests in flight then are reset and those sent while nothing listens are refused.
 *   Asserted: no MQTT message lost (at least once: a Node-RED killed mid-work redoes it, so duplicates
 *   are printed, not asserted) and the product's MQTT loss figure equals the measured one; the product's
 *   HTTP loss equals the requests the kill cut (the killed front's journal; refused connections reached
 *   no process: printed apart); every HTTP request *ends*
 *   (answered, refused or reset; none hangs, none fails any other way); and the instance serves again
 *   on both paths (below).
 * The HTTP figures are printed either way and documented (docs/deployments.md "Faults").
 */
function expectNothingNoticed(run: FaultRun, promise: "exact" | "refusals" | "hostRestart"): void {
  const why = `${FAULTS[run.key].title}\n  ${run.notes.join("\n  ")}`;
  const r = losses(run.report);
  const f = run.report.httpFailures;
  const first = (seqs: number[]) => (seqs.length ? ` (first ${seqs.slice(0, 8).join(", ")})` : "");
  const seen = { lostMqtt: r.lostMqtt.length, duplicatedMqtt: r.duplicatedMqtt.length, httpUnanswered: r.httpUnanswered, httpErrors: r.httpErrors, httpHung: f.timeout, httpOtherFailures: f.other };
  console.log(`${FAULTS[run.key].title}: MQTT lost ${seen.lostMqtt}, duplicated ${seen.duplicatedMqtt}; HTTP error answers ${r.httpErrors}, without an answer ${r.httpUnanswered} (${f.refused} refused, ${f.reset} reset, ${f.timeout} hung, ${f.other} other)`);
  // hostRestart: session 7's bench lost 95,267 MQTT messages here (the restarted data plane crashed on
  // its session backlog and nothing resumed) while this row asserted only that no request hung.
  const expected = promise === "exact" ? { lostMqtt: 0, duplicatedMqtt: 0, httpUnanswered: 0, httpErrors: 0, httpHung: 0 }
    : promise === "refusals" ? { lostMqtt: 0, duplicatedMqtt: 0, httpUnanswered: 0, httpHung: 0 }
    : { lostMqtt: 0, httpHung: 0, httpOtherFailures: 0 };
  const actual = Object.fromEntries(Object.keys(expected).map((k) => [k, seen[k as keyof typeof seen]]));
  expect.soft(actual, `${why}\n  lost${first(r.lostMqtt)}, duplicated${first(r.duplicatedMqtt)}`).toEqual(expected);
  expect.soft(run.finalStatus, why).toMatch(/^(completed|rolled_back)$/);
  if (promise !== "hostRestart") expect.soft(run.reportedLost, `metrics.messagesLost vs measured: ${why}`).toBe(run.measuredLost);
  else {
    // What the product can see it must count. MQTT: all of it. HTTP: the requests the killed data plane
    // had accepted (its request journal, read by the front that came back) are the hold's unanswered, so
    // accounting.httpLost counts them. Here those are every reset request: the kill strikes 200 ms into
    // the hold, when each load loop's request is held at the front (read, journaled) and no loop sends
    // another until answered. Connections refused while nothing listened reached no process: printed
    // apart, not counted by the product (docs/faults-host-restart.md).
    const accounting = run.deployment?.metrics?.accounting;
    expect.soft(accounting?.mqttLost, `metrics.accounting.mqttLost vs measured: ${why}`).toBe(r.lostMqtt.length);
    expect.soft(accounting?.httpLost, `metrics.accounting.httpLost vs the requests the kill cut (reset): ${why}`).toBe(f.reset);
    console.log(`${FAULTS[run.key].title}: HTTP cut by the kill (reset) ${f.reset}, counted by the product (accounting.httpLost) ${accounting?.httpLost}; refused while nothing listened ${f.refused} (no process runs to count these); metrics.messagesLost ${run.reportedLost} (accounting ${JSON.stringify(accounting ?? null)}) vs measured ${r.lostMqtt.length} MQTT + ${r.httpUnanswered} HTTP without an answer`);
  }
  expect.soft(run.frontAfter, `the instance answers after the run: ${why}`).toMatch(/^200 /);
}

/**
 * One message through the instance's MQTT entry after the run, answered on the results topic: the
 * MQTT half of "the instance serves again" (frontAfter is the HTTP half). Undefined when no answer
 * came within `timeoutMs`; the version that answered otherwise.
 */
async function probeMqtt(mqttUrl: string, instanceId: string, timeoutMs = 60_000): Promise<string | undefined> {
  const seq = `probe-mqtt-${Date.now().toString(36)}`;
  const client = await connectAsync(mqttUrl, { protocolVersion: 4, clean: true });
  try {
    const answered = new Promise<string>((resolve) => {
      client.on("message", (_t, payload) => {
        const body = JSON.parse(payload.toString()) as { payload?: { seq?: string; version?: string } };
        if (body.payload?.seq === seq) resolve(body.payload.version ?? "?");
      });
    });
    await client.subscribeAsync(RESULTS_TOPIC, { qos: 1 });
    await client.publishAsync(`redforge/ingest/${instanceId}`, JSON.stringify({ seq }), { qos: 1 });
    return await Promise.race([answered, new Promise<undefined>((r) => setTimeout(() => r(undefined), timeoutMs))]);
  } finally {
    await client.endAsync();
  }
}

/** The longest time the bridge's link stayed down (from "connection closed" to the next "connected"), from its log. */
function longestLinkGapMs(log: string): number {
  let downSince: number | undefined;
  let longest = 0;
  for (const line of log.split("\n")) {
    const at = Date.parse(line.slice(0, 24));
    if (Number.isNaN(at)) continue;
    if (/ link: connection closed/.test(line)) downSince ??= at;
    else if (/ link: connected to /.test(line) && downSince !== undefined) {
      longest = Math.max(longest, at - downSince);
      downSince = undefined;
    }
  }
  return longest;
}

function faultSuite(key: FaultKey): void {
  describe(FAULTS[key].title, () => {
    let cluster: FaultCluster;
    beforeAll(async () => {
      cluster = await startFaultCluster(stack, `faults-${key}`, path.join(dir, key), key === "j" ? { maxHoldSeconds: SHORT_HOLD_SECONDS } : {});
    }, 180_000);
    afterAll(async () => cluster?.close(), 90_000);

    it("loses nothing, duplicates nothing, answers every request, and reports what it cost", async () => {
      // HTTP waits up to 60 s, twice the front's bound on a held request (30 s, then 503): a request
      // still waiting at 60 s hung, whatever the machine's load.
      const run = await runFault(cluster, key, { rate: 200, beforeMs: 1500, afterMs: 1500, holdDuring: "deploy", httpTimeoutMs: 60_000, deploymentTimeoutMs: 300_000 });
      // The harness's own precondition: the fault struck while blue drained (not before, not never).
      if (key !== "h") expect(run.injectedAt, run.notes.join("\n")).toBeDefined();
      expect(run.report.sent.mqtt).toBeGreaterThan(300);
      expectNothingNoticed(run, key === "g" ? "hostRestart" : key === "i" || key === "j" ? "refusals" : "exact");
      if (key === "g") {
        // The restarted bridge resumed the instance: its MQTT entry answers too (the bridge's log says what it resumed).
        const resumed = cluster.bridge.log().split("\n").filter((l) => /resumed after restart|not resumed|resumed on retry/.test(l)).join("\n  ");
        expect.soft(await probeMqtt(stack.mqttUrl, run.deployment?.instanceId), `an MQTT message after the run is answered; the bridge said:\n  ${resumed}`).toMatch(/^v\d$/);
      }
      if (key === "f") {
        // The data plane lost its bridge while blue drained: after its lease it released the hold to blue by itself
        // (held work answered by blue, not held until the new bridge), and the new bridge took that release into the
        // deployment's count and drained again before its switch (never a switch without a hold).
        const dataPlaneLog = await fs.readFile(path.join(cluster.stateDir, "process", "dataplane.log"), "utf8").catch(() => "");
        expect.soft(dataPlaneLog, `the data plane released the hold without a bridge; bridge log ${cluster.bridge.o.logFile}`).toMatch(/while a hold is open: releasing it to/);
        expect.soft(dataPlaneLog).toMatch(/hold released without a bridge in \d+ ms/);
        expect.soft(cluster.bridge.log(), "the restarted bridge took the data plane's release").toMatch(/deployment hold released by the data plane/);
      }
      if (key === "j") {
        // The link to the control plane closed with the Worker's kill: the bridge knew its controller was gone and
        // released the hold to blue after its short lease (not after the 10 s bound, not when the Worker came back),
        // and the switch that followed drained blue again first.
        const log = cluster.bridge.log();
        console.log(`(j): the bridge's link was down ${longestLinkGapMs(log)} ms`);
        expect.soft(log, "the bridge released the hold on its lease").toMatch(/the link to the control plane is down \(lease \d+ ms\): releasing it to/);
        if (run.finalStatus === "completed") expect.soft(log, "and drained again before the switch").toMatch(/no open hold known here \(released while the control plane was away\); draining .* again first/);
      }
    }, 600_000);
  });
}

faultSuite("f");
faultSuite("g");
faultSuite("h");
faultSuite("i");
faultSuite("j");
