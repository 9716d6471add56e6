/**
 * The bridge's half of replaying a dead letter (POST /api/dead-letters/:id/replay):
 * every `pollMs` it collects its cluster's pending replays (signed POST
 * bridgePaths.deadLetterReplays, reporting the outcomes of the previous ones
 * in the same call) and sends each letter's `input` again, one at a time:
 * - `http`: POST to the primitive's route on the instance's front door, so the
 *   gate applies as for any request; ok when it answers 2xx. A msg_output
 *   error in the answer is reported (e.g. the store is still down).
 * - `mqtt`: publish on the instance's ingest at QoS 1; ok once the broker acknowledges.
 * A replay this process already sent is not sent again while it waits to be
 * reported. Outcomes not reported because the control plane was away are
 * kept and reported at the next call; a bridge that dies before reporting
 * gets the replay again from the control plane after 180 s.
 */
import type { MqttClient } from "mqtt";
import { bridgePaths } from "../protocol/paths.ts";
import { deadLetterReplayCollectAnswerSchema, type DeadLetterReplay, type DeadLetterReplayResult } from "../protocol/deadLetters.ts";
import { sleep } from "./backoff.ts";
import type { ControlPlaneClient } from "./controlPlaneClient.ts";
import { errorMessage, type Logger } from "./log.ts";

export interface DeadLetterReplayerOptions {
  clusterId: string;
  cp: ControlPlaneClient;
  /** The forwarder's MQTT connection (for `mqtt` targets). */
  mqtt: () => MqttClient | undefined;
  log: Logger;
  signal: AbortSignal;
  /** Between collections when nothing was pending (default 2 s). */
  pollMs?: number;
  /** Per HTTP replay (default 120 s; the control plane hands a replay out again after 180 s). */
  timeoutMs?: number;
}

export class DeadLetterReplayer {
  readonly stats = { sent: 0, succeeded: 0, failed: 0 };
  private unreported: DeadLetterReplayResult[] = [];
  private readonly sent = new Set<number>();
  private failures = 0;

  constructor(private readonly opts: DeadLetterReplayerOptions) {}

  async run(): Promise<void> {
    const { signal } = this.opts;
    while (!signal.aborted) {
      let more = false;
      try {
        more = await this.round();
        this.failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        // Throttled: a control plane that is away for an hour must not fill the log.
        if (++this.failures === 1 || this.failures % 30 === 0) this.opts.log.warn(`dead letters: replays not collected (${errorMessage(err)}); ${this.unreported.length} outcome(s) kept for the next call`);
      }
      if (!more) await sleep(this.failures ? 5_000 : this.opts.pollMs ?? 2_000, signal).catch(() => undefined);
    }
  }

  /** One collection; true when replays came (collect again at once). */
  private async round(): Promise<boolean> {
    const reporting = this.unreported.splice(0);
    let answer;
    try {
      const res = await this.opts.cp.post(bridgePaths.deadLetterReplays(this.opts.clusterId), JSON.stringify({ results: reporting }), {
        retry: { baseMs: 250, capMs: 2_000, attempts: 2 }, signal: this.opts.signal,
      });
      answer = deadLetterReplayCollectAnswerSchema.parse(JSON.parse(res.text));
    } catch (err) {
      this.unreported.unshift(...reporting);
      throw err;
    }
    for (const r of reporting) this.sent.delete(r.id);
    for (const replay of answer.replays) {
      if (this.opts.signal.aborted) break;
      if (this.sent.has(replay.id)) continue;
      this.sent.add(replay.id);
      const result = await this.deliver(replay);
      this.stats.sent++;
      if (result.ok) this.stats.succeeded++; else this.stats.failed++;
      this.opts.log.info(`dead letters: replayed ${replay.id} to ${replay.target.kind === "http" ? replay.target.url : replay.target.topic}: ${result.ok ? "ok" : `failed (${result.code ?? result.status})`}`);
      this.unreported.push(result);
    }
    return answer.replays.length > 0;
  }

  private async deliver(replay: DeadLetterReplay): Promise<DeadLetterReplayResult> {
    const body = JSON.stringify(replay.input);
    if (replay.target.kind === "mqtt") {
      const client = this.opts.mqtt();
      if (!client?.connected) return { id: replay.id, ok: false, code: "replay_unreachable", message: "the bridge is not connected to the cluster's MQTT bus" };
      try {
        await client.publishAsync(replay.target.topic, body, { qos: 1 });
        return { id: replay.id, ok: true };
      } catch (err) {
        return { id: replay.id, ok: false, code: "replay_unreachable", message: errorMessage(err).slice(0, 2000) };
      }
    }
    try {
      const res = await fetch(replay.target.url, {
        method: "POST", body,
        headers: { "content-type": "application/json", "x-redforge-replay": String(replay.id) },
        signal: AbortSignal.any([this.opts.signal, AbortSignal.timeout(this.opts.timeoutMs ?? 120_000)]),
      });
      const text = await res.text();
      const error = answerError(text);
      return { id: replay.id, ok: res.ok, status: res.status, ...(error ?? (res.ok ? {} : { message: text.slice(0, 500) })) };
    } catch (err) {
      return { id: replay.id, ok: false, code: "replay_unreachable", message: errorMessage(err).slice(0, 2000) };
    }
  }
}

/** A msg_output's error (code, message), if the answer is one. */
function answerError(text: string): { code: string; message: string } | undefined {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } | null };
    const e = body?.error;
    if (e && typeof e.code === "string") return { code: e.code.slice(0, 100), message: String(e.message ?? "").slice(0, 2000) };
  } catch { /* not JSON: the status says enough */ }
  return undefined;
}
