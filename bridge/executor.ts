/**
 * Executes commands exactly once and answers every delivery of them. The
 * control plane redelivers a command until it sees a `command.result`, so:
 * a command already finished is answered again from the ledger; one still
 * running here is left to finish (its answer is on the way); one that was
 * running when the bridge died is run again if it is a deployment step
 * (written to converge when repeated), and otherwise answered `interrupted`
 * rather than run a second time, since nobody knows how far it got (the rule
 * and its bound are in dedupe.ts).
 *
 * Driver status events (a crash noticed by the driver, a recovery) become
 * `instance.status` reports, in order with the instance's command results.
 */
import type { Command } from "../protocol/commands.ts";
import { MAX_STARTS, rerunsWhenInterrupted, type CommandOutcome, type CommandLedger } from "./dedupe.ts";
import type { Driver } from "./drivers/driver.ts";
import { BridgeError, type BridgeErrorCode } from "./errors.ts";
import { commandInstance, runCommand } from "./handlers.ts";
import type { InstanceRegistry } from "./instances.ts";
import type { CommandSink } from "./link.ts";
import { errorMessage, type Logger } from "./log.ts";
import type { Reporter } from "./reporter.ts";

export interface ExecutorOptions {
  driver: Driver;
  ledger: CommandLedger;
  reporter: Reporter;
  instances: InstanceRegistry;
  log: Logger;
  mqttUrl?: string;
  /** A deployment's hold released by the bridge after this long without a command (handlers.ts). */
  maxHoldMs?: number;
  /** A deployment's hold released this long after the link to the control plane went down (handlers.ts). */
  holdLeaseMs?: number;
}

interface Job {
  id: string;
  type: string;
  instanceId?: string;
  work: () => Promise<CommandOutcome>;
}

export class CommandExecutor implements CommandSink {
  private readonly running = new Map<string, Promise<void>>();

  constructor(private readonly opts: ExecutorOptions) {
    opts.driver.onStatus((instanceId, state, reason) => {
      opts.log.info(`instance ${instanceId}: ${state}${reason ? ` (${reason})` : ""}`);
      void opts.reporter.send(
        { type: "instance.status", instanceId, state, ...(reason ? { reason: reason.slice(0, 2000) } : {}) },
        { orderKey: instanceId },
      );
    });
  }

  command(cmd: Command): void {
    void this.handle({ id: cmd.id, type: cmd.type, instanceId: commandInstance(cmd), work: () => this.execute(cmd) });
  }

  invalidCommand(commandId: string, problem: string): void {
    const outcome: CommandOutcome = { status: "error", error: { code: "invalid_command", message: `command does not match the protocol: ${problem}` } };
    void this.handle({ id: commandId, type: "invalid", work: async () => outcome });
  }

  /** Resolves when every command started so far has been answered (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()]);
  }

  /** Decides between run, re-answer and wait; the checks and the claim happen in one synchronous step. */
  private handle(job: Job): Promise<void> {
    const inFlight = this.running.get(job.id);
    if (inFlight) {
      this.opts.log.info(`command ${job.id} (${job.type}) redelivered while still running; its result will follow`);
      return inFlight;
    }
    const run = this.process(job).finally(() => this.running.delete(job.id));
    this.running.set(job.id, run);
    return run;
  }

  private async process(job: Job): Promise<void> {
    const known = this.opts.ledger.get(job.id);
    if (known?.outcome) {
      this.opts.log.info(`command ${job.id} (${known.type}) was already executed; answering again with its stored result`);
      return this.answer(job, known.outcome);
    }
    let outcome: CommandOutcome;
    if (known && !rerunsWhenInterrupted(known)) {
      const why = (known.starts ?? 1) >= MAX_STARTS ? ` (cut off ${known.starts} times: it is not run again)` : "";
      this.opts.log.warn(`command ${job.id} (${known.type}) was cut off by a bridge stop${why}; answering "interrupted", not running it again`);
      outcome = fail("interrupted", `the bridge stopped while executing this ${known.type} command (started ${known.startedAt})${why}; it was not run again, its effect is unknown`);
    } else {
      if (known) this.opts.log.warn(`command ${job.id} (${known.type}) was cut off by a bridge stop (started ${known.startedAt}); a deployment step converges when repeated, so it runs again`);
      const recorded = await this.opts.ledger.begin(job.id, job.type).then(() => true, (err: unknown) => err);
      outcome = recorded === true
        ? await job.work()
        : fail("bridge_state_error", `cannot record the command in the bridge's state dir, so it was not run: ${errorMessage(recorded)}`);
    }
    await this.opts.ledger.finish(job.id, outcome).catch((err: unknown) => {
      this.opts.log.error(`command ${job.id}: cannot record its outcome (${errorMessage(err)}); a redelivery will be answered "interrupted"`);
    });
    return this.answer(job, outcome);
  }

  private async execute(cmd: Command): Promise<CommandOutcome> {
    const started = Date.now();
    try {
      const result = await runCommand(this.opts, cmd);
      this.opts.log.info(`command ${cmd.id} ${cmd.type}${on(commandInstance(cmd))}: ok in ${Date.now() - started} ms`);
      return { status: "ok", result };
    } catch (err) {
      const outcome = fail(errorCodeOf(err), errorMessage(err));
      this.opts.log.warn(`command ${cmd.id} ${cmd.type}${on(commandInstance(cmd))}: ${outcome.error!.code}: ${outcome.error!.message}`);
      return outcome;
    }
  }

  private async answer(job: Job, outcome: CommandOutcome): Promise<void> {
    await this.opts.reporter.send(
      { type: "command.result", commandId: job.id, ...outcome, ...(outcome.error ? { error: { ...outcome.error, message: outcome.error.message.slice(0, 4000) } } : {}) },
      job.instanceId ? { orderKey: job.instanceId } : {},
    );
  }
}

function fail(code: BridgeErrorCode, message: string): CommandOutcome {
  return { status: "error", error: { code, message } };
}

/**
 * A BridgeError keeps its code; anything else is a failure nobody named
 * (a bug, an unexpected library error): `internal`, with its message. A code
 * that only some library sets (ECONNREFUSED, a Node-RED reply) never reaches
 * the operator as if it were one of ours.
 */
function errorCodeOf(err: unknown): BridgeErrorCode {
  return err instanceof BridgeError ? err.code : "internal";
}

function on(instanceId: string | undefined): string {
  return instanceId ? ` on ${instanceId}` : "";
}
