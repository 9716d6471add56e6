/**
 * VERIFY's checks against green, and the post-switch analysis. Each check is
 * passed, failed or inconclusive (it could not decide, e.g. green did not
 * answer in time); Argo Rollouts' rule decides the whole: more failures than
 * the limit → failed; else any inconclusive (or a requested pause) → the
 * deployment waits for a human; else passed.
 */
import type { SmokeCheck, SmokeChecks, SmokeEntry, SmokeResult } from "../../protocol/commands.ts";
import type { AdminProbe, GateStatus } from "../drivers/nodeRedAdmin.ts";
import { flowAnswerViolation, isLegacyAnswer } from "../../protocol/agents/messageContract.ts";

export type CheckResult = SmokeCheck;
export type SmokeVerdict = Pick<SmokeResult, "verdict" | "checks">;

export interface SmokeTarget {
  base: string;
  probe(): Promise<AdminProbe>;
  rev(): Promise<string | undefined>;
  gate(): Promise<GateStatus>;
  mqttConfigured: boolean;
}

export async function runSmoke(target: SmokeTarget, checks: SmokeChecks, expectRev?: string): Promise<SmokeVerdict> {
  const results: CheckResult[] = [];
  const probe = await target.probe();
  results.push(probe.live && probe.ready && probe.missingNodeTypes.length === 0
    ? { name: "health", outcome: "passed", detail: "admin API and /healthz answer, no missing node types" }
    : { name: "health", outcome: "failed", detail: probe.error ?? (probe.missingNodeTypes.length ? `missing node types: ${probe.missingNodeTypes.join(", ")}` : `live=${probe.live} ready=${probe.ready}`) });
  if (expectRev) {
    const rev = await target.rev().catch(() => undefined);
    results.push(rev === expectRev
      ? { name: "revision", outcome: "passed", detail: `flows at rev ${rev}` }
      : { name: "revision", outcome: "failed", detail: `flows at rev ${rev ?? "unknown"}, expected ${expectRev}` });
  }
  if (checks.http) results.push(await sampleMessage(target.base, checks.http));
  // One at a time: green is cold and each entry runs a flow; the control plane caps the list.
  if (Array.isArray(checks.entries)) for (const entry of checks.entries) results.push(await smokeEntry(target.base, entry));
  if (checks.mqtt && target.mqttConfigured) {
    const gate = await target.gate().catch((err: Error) => err);
    results.push(gate instanceof Error
      ? { name: "mqtt", outcome: "inconclusive", detail: `gate status unavailable: ${gate.message}` }
      : gate.mqtt === "connected"
        ? { name: "mqtt", outcome: "passed", detail: "green's gate is connected to the cluster bus" }
        : { name: "mqtt", outcome: "failed", detail: `green's gate MQTT is ${gate.mqtt}` });
  }
  const failed = results.filter((r) => r.outcome === "failed").length;
  const verdict = failed > checks.failureLimit ? "failed"
    : results.some((r) => r.outcome === "inconclusive") || checks.pause ? "inconclusive" : "passed";
  if (checks.pause && verdict === "inconclusive" && !results.some((r) => r.outcome === "inconclusive")) {
    results.push({ name: "pause", outcome: "inconclusive", detail: "the deployment asked to pause here: promote or abort" });
  }
  return { verdict, checks: results };
}

async function sampleMessage(base: string, http: NonNullable<SmokeChecks["http"]>): Promise<CheckResult> {
  const name = `sample ${http.method} ${http.path}`;
  let res: Response;
  try {
    res = await fetch(`${base}${http.path}`, {
      method: http.method,
      headers: { "x-redforge-smoke": "1", ...(http.body !== undefined ? { "content-type": "application/json" } : {}), ...http.headers },
      ...(http.body !== undefined && http.method !== "GET" ? { body: JSON.stringify(http.body) } : {}),
      signal: AbortSignal.timeout(http.timeoutMs),
    });
  } catch (err) {
    return { name, outcome: "inconclusive", detail: `no answer within ${http.timeoutMs} ms: ${(err as Error).message}` };
  }
  const text = await res.text();
  if (res.status !== http.expectStatus) return { name, outcome: "failed", detail: `status ${res.status}, expected ${http.expectStatus}: ${text.slice(0, 200)}` };
  if (http.expectJson === undefined && !http.contract) return { name, outcome: "passed", detail: `status ${res.status}` };
  let body: unknown;
  try { body = JSON.parse(text); } catch { return { name, outcome: "failed", detail: `answer is not JSON: ${text.slice(0, 200)}` }; }
  if (http.expectJson !== undefined) {
    const miss = mismatch(http.expectJson, body, "$");
    if (miss) return { name, outcome: "failed", detail: `answer differs at ${miss}` };
  }
  if (http.contract) {
    const broken = contractViolation(body);
    if (broken) return { name, outcome: "failed", detail: `answer breaks the message contract: ${broken}` };
    // Flows not migrated to the seed's statuses still pass, with a hint (docs/agents.md "Migrating").
    if (isLegacyAnswer(body)) return { name, outcome: "passed", detail: `status ${res.status}, answer as expected (old message contract: migrate metadata.status to success|error|retrying)` };
  }
  return { name, outcome: "passed", detail: `status ${res.status}, answer as expected` };
}

/** Default entry timeout: the sample's (`http.timeoutMs` default). */
const ENTRY_TIMEOUT_MS = 5_000;

/**
 * A request through one gated `http in` entry (the control plane lists them from the new flows). It
 * proves green answers there: below 500 passes (a 4xx is the flow refusing an empty request, which
 * is an answer); 5xx fails; no answer in time cannot decide.
 */
export async function smokeEntry(base: string, entry: SmokeEntry): Promise<CheckResult> {
  const name = `entry ${entry.method} ${entry.path}`;
  const timeoutMs = entry.timeoutMs ?? ENTRY_TIMEOUT_MS;
  const body = entry.method === "GET" || entry.method === "DELETE" ? undefined : "{}";
  let res: Response;
  try {
    res = await fetch(`${base}${entry.path}`, {
      method: entry.method,
      headers: { "x-redforge-smoke": "1", ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    return { name, outcome: "inconclusive", detail: `no answer within ${timeoutMs} ms: ${(err as Error).message}` };
  }
  const text = await res.text().catch(() => "");
  return res.status < 500
    ? { name, outcome: "passed", detail: `status ${res.status}` }
    : { name, outcome: "failed", detail: `status ${res.status}: ${text.slice(0, 200)}` };
}

/** The first path where `actual` does not contain `expected` (deep subset), or undefined. */
export function mismatch(expected: unknown, actual: unknown, at: string): string | undefined {
  if (expected !== null && typeof expected === "object" && !Array.isArray(expected)) {
    if (actual === null || typeof actual !== "object") return at;
    for (const [k, v] of Object.entries(expected)) {
      const m = mismatch(v, (actual as Record<string, unknown>)[k], `${at}.${k}`);
      if (m) return m;
    }
    return undefined;
  }
  return JSON.stringify(expected) === JSON.stringify(actual) ? undefined : at;
}

/**
 * The seed's message contract (protocol/agents: msg_output), also accepting the
 * contract flows used before the seed's status enum (`legacy`), so a smoke
 * check does not fail a flow that has not migrated yet.
 */
export function contractViolation(body: unknown): string | undefined {
  return flowAnswerViolation(body, { legacy: true });
}
