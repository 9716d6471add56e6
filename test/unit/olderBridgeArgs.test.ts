/**
 * Version skew: a bridge built before answers were routed by replyTo still
 * parses every command a deployment sends now. Each step of both hold orders,
 * and the rollback from each of them, is driven through transition() and its
 * arguments are parsed, as they travel (JSON), with that bridge's schemas.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { transition, type Effect, type Transition } from "../../durable/deploymentRun/transition.ts";
import type { Step } from "../../durable/deploymentRun/state.ts";
import { SEQUENCE } from "../../durable/deploymentRun/steps.ts";
import { commandArgs, smokeChecksSchema, type CommandType } from "../../protocol/commands.ts";
import type { DeploymentInit, HoldDuring } from "../../protocol/deployments.ts";

// ---- Fixture: the argument schemas of a bridge from before this change, copied from
// `git show 95d58eb:functions/protocol/commands.ts` (the commands a deployment sends).
// They are what runs on clusters that have not upgraded: never edit them to follow protocol/commands.ts.
const oldRuntimeId = z.string().min(1).max(80);
const oldDeploymentId = z.uuid();
const oldSmokeChecksSchema = z.object({
  http: z.object({
    path: z.string().startsWith("/").max(500),
    method: z.enum(["GET", "POST", "PUT"]).default("POST"),
    body: z.unknown().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    expectStatus: z.number().int().min(100).max(599).default(200),
    expectJson: z.unknown().optional(),
    contract: z.boolean().default(false),
    timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
  }).strict().optional(),
  mqtt: z.boolean().default(true),
  failureLimit: z.number().int().min(0).max(10).default(0),
  pause: z.boolean().default(false),
}).strict();
const OLD_BRIDGE_ARGS: Partial<Record<CommandType, z.ZodType>> = {
  "flows.deploy": z.object({ flows: z.array(z.unknown()), rev: z.string().optional(), runtime: oldRuntimeId.optional(), deploymentId: oldDeploymentId.optional() }),
  "gate.set": z.object({ mode: z.enum(["active", "drain"]), runtime: oldRuntimeId.optional(), deploymentId: oldDeploymentId.optional(), drainTimeoutMs: z.number().int().min(0).max(600_000).default(30_000) }),
  "smoke.run": z.object({
    runtime: oldRuntimeId, deploymentId: oldDeploymentId.optional(), kind: z.enum(["verify", "analysis"]).default("verify"),
    expectRev: z.string().optional(), checks: oldSmokeChecksSchema.default({ mqtt: true, failureLimit: 0, pause: false }),
    maxErrorRate: z.number().min(0).max(1).default(0.05),
  }),
  "route.switch": z.object({ to: oldRuntimeId, from: oldRuntimeId, deploymentId: oldDeploymentId.optional() }),
  "deployment.prepare": z.object({ deploymentId: oldDeploymentId }),
  "deployment.rollback": z.object({ deploymentId: oldDeploymentId, blue: oldRuntimeId, green: oldRuntimeId.optional(), switched: z.boolean() }),
  "deployment.cleanup": z.object({ deploymentId: oldDeploymentId, runtime: oldRuntimeId }),
};
// ---- end of fixture

const T0 = Date.parse("2026-12-01T10:00:00.000Z");

const init = (holdDuring: HoldDuring): DeploymentInit => ({
  id: crypto.randomUUID(), instanceId: crypto.randomUUID(), clusterId: crypto.randomUUID(), strategy: "blue-green",
  flows: [{ id: "t1", type: "tab" }], fromVersionId: crypto.randomUUID(), toVersionId: crypto.randomUUID(),
  // As the API stores it: parsed, defaults filled in (the old schema is strict about these keys).
  verify: smokeChecksSchema.parse({ http: { path: "/work", body: { seq: 1 }, expectJson: { ok: true }, contract: true } }),
  drainTimeoutMs: 30_000, analysisMs: 5_000, maxErrorRate: 0.05, rollbackWindowMs: 60_000, holdDuring,
  createdBy: null, createdAt: new Date(T0).toISOString(),
});

/** The smallest answers that parse: this test is about what is sent, not about what comes back. */
const ANSWERS: Partial<Record<CommandType, unknown>> = {
  "deployment.prepare": { blue: "blue-rt", green: "green-rt" },
  "gate.set": { inFlight: 0 },
  "flows.deploy": { rev: "rev-2" },
  "smoke.run": { verdict: "passed" },
  "route.switch": {},
  "deployment.cleanup": {},
  "deployment.rollback": {},
};

type Send = Extract<Effect, { type: "send" }>;

/** Every command one deployment sends, answered until it ends; at `missAt` the bridge stays silent past the deadline (a rollback follows). */
function commandsSent(holdDuring: HoldDuring, missAt?: Step): Send[] {
  const sent: Send[] = [];
  let t: Transition = transition(null, { type: "start", init: init(holdDuring) }, T0);
  for (let i = 0; i < 50 && t.state && t.state.step !== "done"; i++) {
    sent.push(...t.effects.filter((e): e is Send => e.type === "send"));
    const s = t.state;
    const awaited = sent.find((c) => c.commandId === s.awaiting?.commandId);
    if (s.step === "audit") t = transition(s, { type: "promoted" }, T0);
    // A check that keeps missing its deadline pauses for a person (inconclusive, not failed): the person aborts.
    else if (s.status === "paused") t = transition(s, { type: "abort", by: null }, T0);
    else if (awaited && s.step === missAt) t = transition(s, { type: "alarm" }, s.awaiting!.deadline);
    else if (awaited) t = transition(s, { type: "result", commandId: awaited.commandId, ok: true, result: ANSWERS[awaited.command] }, T0);
    else if (s.waitUntil !== null) t = transition(s, { type: "alarm" }, s.waitUntil);
    else throw new Error(`stuck at ${s.step} (${s.status})`);
  }
  expect(t.state?.step).toBe("done");
  return sent;
}

const commandSteps = (holdDuring: HoldDuring) => SEQUENCE[holdDuring].filter((step) => step !== "audit");
const rollbackSteps = (holdDuring: HoldDuring) => commandSteps(holdDuring).filter((step) => step !== "cleanup");

describe.each<HoldDuring>(["deploy", "switch"])("holdDuring \"%s\": a bridge from before replyTo", (holdDuring) => {
  const runs = [
    { what: "every step to completed", sent: commandsSent(holdDuring) },
    // A cleanup that misses its deadline is retried and never rolls a promoted green back.
    ...rollbackSteps(holdDuring).map((step) => ({ what: `a rollback after ${step} missed its deadline`, sent: commandsSent(holdDuring, step) })),
  ];

  it("is sent every step and, from each step, the rollback", () => {
    expect(runs[0]!.sent.map((c) => c.command)).toHaveLength(commandSteps(holdDuring).length);
    const rollbacks = runs.slice(1).map((r) => r.sent.at(-1)!);
    expect(rollbacks.map((c) => c.command)).toEqual(rollbackSteps(holdDuring).map(() => "deployment.rollback"));
    expect(new Set(rollbacks.map((c) => c.args.switched))).toEqual(new Set([false, true]));
  });

  it.each(runs)("parses every command of $what with its old schemas", ({ sent }) => {
    for (const cmd of sent) {
      const schema = OLD_BRIDGE_ARGS[cmd.command];
      expect(schema, `${cmd.command} is not a command the old bridge knows`).toBeDefined();
      const wire = JSON.parse(JSON.stringify(cmd.args));
      const parsed = schema!.safeParse(wire);
      expect(parsed.success, `${cmd.commandId} ${cmd.command} ${JSON.stringify(wire)}: ${parsed.error?.message}`).toBe(true);
    }
  });

  it.each(runs)("and today's bridge parses the same commands of $what (what the old one needs costs it nothing)", ({ sent }) => {
    for (const cmd of sent) {
      const parsed = commandArgs[cmd.command].safeParse(JSON.parse(JSON.stringify(cmd.args)));
      expect(parsed.success, `${cmd.commandId} ${cmd.command}: ${parsed.error?.message}`).toBe(true);
    }
  });
});
