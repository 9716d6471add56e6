/**
 * What each command type means in Driver calls. A handler returns the
 * command's result (typed by protocol/commands.ts `commandResults`, which the
 * control plane parses) or throws; the executor turns either into the one
 * `command.result` report the command gets.
 */
import { commandArgs, type Command, type CommandArgs, type CommandResult, type CommandType } from "../protocol/commands.ts";
import { BlueGreen, type BlueGreenOptions } from "./deploy/blueGreen.ts";
import { isBlueGreen, type Driver } from "./drivers/driver.ts";
import { chunk, collectHealth, MAX_INSTANCES_PER_REPORT } from "./health.ts";
import type { InstanceRegistry } from "./instances.ts";
import type { Logger } from "./log.ts";
import type { Reporter } from "./reporter.ts";
import { BridgeError } from "./errors.ts";

export interface HandlerContext {
  driver: Driver;
  instances: InstanceRegistry;
  reporter: Reporter;
  /** Whether the cluster has an MQTT bus (gates and the MQTT front use it). */
  mqttUrl?: string;
  /** How long a deployment's hold may stay open without a command (blueGreen.ts DEFAULT_MAX_HOLD_MS; 0: unbounded). */
  maxHoldMs?: number;
  /** How long a hold stays open once the link to the control plane is down (blueGreen.ts DEFAULT_HOLD_LEASE_MS; 0: no lease). */
  holdLeaseMs?: number;
  log?: Logger;
}

const blueGreens = new WeakMap<Driver, BlueGreen>();

/** The driver's blue-green machinery, or a clear error for a driver without it. */
function blueGreen(ctx: HandlerContext, cmd: Command): BlueGreen {
  const { driver } = ctx;
  if (!isBlueGreen(driver)) throw new BridgeError("not_implemented", `${cmd.type}: blue-green deployments are not implemented by the ${driver.kind} driver yet`);
  let bg = blueGreens.get(driver);
  if (!bg) blueGreens.set(driver, (bg = new BlueGreen(driver, driver.adminApi, Boolean(ctx.mqttUrl ?? driver.mqttUrl), holdOptions(ctx))));
  return bg;
}

/** A hold the bridge released on its own is said in the log and reported as the instance's status. */
function holdOptions(ctx: HandlerContext): BlueGreenOptions {
  return {
    ...(ctx.maxHoldMs !== undefined ? { maxHoldMs: ctx.maxHoldMs } : {}),
    ...(ctx.holdLeaseMs !== undefined ? { leaseMs: ctx.holdLeaseMs } : {}),
    log: (line) => ctx.log?.warn(line),
    onHoldReleased: (instanceId, reason) => void ctx.reporter.send({ type: "instance.status", instanceId, state: "running", reason: reason.slice(0, 2000) }, { orderKey: instanceId }),
  };
}

/**
 * The link to the control plane went down (false) or was welcomed again (true): open deployment holds go on
 * their short lease, or back to waiting for the control plane. Only a driver that holds (a BlueGreen exists once
 * a deployment command ran) has anything to do.
 */
export function controllerPresent(driver: Driver, present: boolean): void {
  const bg = blueGreens.get(driver);
  if (present) bg?.controllerBack();
  else bg?.controllerGone();
}

type Handlers = { [T in CommandType]: (ctx: HandlerContext, cmd: Command, args: CommandArgs<T>) => Promise<CommandResult<T>> };

function target(cmd: Command): string {
  if (!cmd.instanceId) throw new BridgeError("invalid_args", `${cmd.type} needs an instanceId`);
  return cmd.instanceId;
}

const handlers: Handlers = {
  "instance.create": async ({ driver, instances }, cmd, { spec }) => {
    if (cmd.instanceId && cmd.instanceId !== spec.id) {
      throw new BridgeError("invalid_args", `instanceId ${cmd.instanceId} does not match spec.id ${spec.id}`);
    }
    // Known before the driver starts: a half-created instance still shows up in health sweeps.
    await instances.add(spec.id);
    const { endpoints, stack } = await driver.create(spec);
    return { state: "running", endpoints, ...(stack ? { stack } : {}) };
  },
  "instance.start": async ({ driver, instances }, cmd) => {
    const id = target(cmd);
    await driver.start(id);
    await instances.add(id);
    return { state: "running" };
  },
  "instance.restart": async ({ driver, instances }, cmd) => {
    const id = target(cmd);
    await driver.stop(id);
    await driver.start(id);
    await instances.add(id);
    return { state: "running" };
  },
  "instance.stop": async ({ driver }, cmd) => {
    await driver.stop(target(cmd));
    return { state: "stopped" };
  },
  "instance.destroy": async ({ driver, instances }, cmd, { deleteData }) => {
    const id = target(cmd);
    await driver.destroy(id, { deleteData });
    await instances.remove(id);
    return { state: "destroyed", deleteData };
  },
  "instance.scale": async ({ driver }, cmd, { replicas }) => {
    await driver.scale(target(cmd), replicas);
    return { replicas, state: replicas === 0 ? "stopped" : "running" };
  },
  "flows.deploy": async (ctx, cmd, { flows, rev, runtime }) => {
    if (runtime) return blueGreen(ctx, cmd).deployFlows(runtime, flows, rev);
    const deployed = await ctx.driver.deployFlows(target(cmd), flows, rev === undefined ? {} : { rev });
    return { rev: deployed.rev };
  },
  "health.report": async ({ driver, instances, reporter }, cmd, { instanceIds }) => {
    const healths = await collectHealth(driver, instanceIds ?? instances.ids());
    for (const part of chunk(healths, MAX_INSTANCES_PER_REPORT)) {
      const delivered = await reporter.send({ type: "health.report", commandId: cmd.id, instances: part });
      if (!delivered) throw new BridgeError("report_undelivered", "the health report could not be delivered to the control plane");
    }
    return { instances: healths.length };
  },
  "gate.set": (ctx, cmd, args) => blueGreen(ctx, cmd).setGate(target(cmd), args),
  "gate.replay": (ctx, cmd, args) => blueGreen(ctx, cmd).replay(target(cmd), args),
  "smoke.run": (ctx, cmd, args) => blueGreen(ctx, cmd).smoke(target(cmd), args),
  "route.switch": (ctx, cmd, { from, to }) => blueGreen(ctx, cmd).switchRoute(target(cmd), from, to),
  "deployment.prepare": (ctx, cmd, args) => blueGreen(ctx, cmd).prepare(target(cmd), args),
  "deployment.rollback": (ctx, cmd, args) => blueGreen(ctx, cmd).rollback(target(cmd), args),
  "deployment.cleanup": (ctx, cmd, { runtime }) => blueGreen(ctx, cmd).cleanup(runtime, cmd.instanceId ?? undefined),
};

/** Runs one command; throws BridgeError for bad args, or whatever the driver threw. */
export async function runCommand(ctx: HandlerContext, cmd: Command): Promise<Record<string, unknown>> {
  const parsed = commandArgs[cmd.type].safeParse(cmd.args);
  if (!parsed.success) {
    throw new BridgeError("invalid_args", parsed.error.issues.map((i) => `${i.path.join(".") || "args"}: ${i.message}`).join("; "));
  }
  // The table is exhaustive and typed per command; here the type is only known at run time.
  const handler = handlers[cmd.type] as (ctx: HandlerContext, cmd: Command, args: unknown) => Promise<Record<string, unknown>>;
  return handler(ctx, cmd, parsed.data);
}

/** The instance a command is about, also for instance.create (whose id is in the spec). */
export function commandInstance(cmd: Command): string | undefined {
  if (cmd.instanceId) return cmd.instanceId;
  const spec = cmd.args.spec as { id?: unknown } | undefined;
  return typeof spec?.id === "string" ? spec.id : undefined;
}
