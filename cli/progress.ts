/**
 * --wait: poll until the work is final or --timeout passes, printing each
 * phase, wave and status change once (a CI log reads as a timeline, not as a
 * screenful of identical lines every two seconds).
 */
import type { components } from "../protocol/api/client.ts";

type Deployment = components["schemas"]["Deployment"];
type Rollout = components["schemas"]["Rollout"];
type Promotion = components["schemas"]["Promotion"];

/** Lines a state shows; each is printed the first time it appears. */
export function deploymentLines(d: Pick<Deployment, "id" | "status" | "phase" | "error">): string[] {
  const lines = [`deployment ${d.id}: ${d.status}${d.phase ? ` (phase ${d.phase})` : ""}`];
  if (d.error) lines.push(`deployment ${d.id}: ${d.error.code}: ${d.error.message}`);
  return lines;
}

export function rolloutLines(r: Pick<Rollout, "id" | "status" | "waves" | "failure" | "summary">): string[] {
  const lines = [`rollout ${r.id}: ${r.status}`];
  for (const w of r.waves) {
    lines.push(`rollout ${r.id}: wave ${w.index + 1}/${r.waves.length} (${w.instances.length} instance${w.instances.length === 1 ? "" : "s"}) ${w.status}`);
    for (const i of w.instances) {
      if (i.status === "failed" || i.status === "rolled_back") lines.push(`rollout ${r.id}: instance ${i.instanceId} ${i.status}${i.code ? ` (${i.code})` : ""}${i.reason ? `: ${i.reason}` : ""}`);
    }
  }
  if (r.failure) lines.push(`rollout ${r.id}: ${r.failure.code}: ${r.failure.message}`);
  return lines;
}

export function promotionLines(p: Pick<Promotion, "id" | "stage" | "status" | "rolloutId" | "failure">): string[] {
  const lines = [`promotion ${p.id} (stage ${p.stage}): ${p.status}${p.status === "awaiting_approval" ? " — a second person with deployments:approve approves it" : ""}`];
  if (p.rolloutId) lines.push(`promotion ${p.id}: rollout ${p.rolloutId}`);
  if (p.failure) lines.push(`promotion ${p.id}: ${p.failure.code}: ${p.failure.message}`);
  return lines;
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs: number;
  progress: (line: string) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export type WaitResult<T> = { state: T; timedOut: boolean };

/**
 * Reads the state until `final` says so. `read` throws on an API error (the
 * caller's exit 4); a timeout returns the last state with timedOut.
 */
export async function waitUntilFinal<T>(
  read: () => Promise<T>, lines: (s: T) => Promise<string[]> | string[], final: (s: T) => boolean, opts: WaitOptions,
): Promise<WaitResult<T>> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const printed = new Set<string>();
  const deadline = now() + opts.timeoutMs;
  for (;;) {
    const state = await read();
    for (const line of await lines(state)) {
      if (printed.has(line)) continue;
      printed.add(line);
      opts.progress(line);
    }
    if (final(state)) return { state, timedOut: false };
    const left = deadline - now();
    if (left <= 0) return { state, timedOut: true };
    await sleep(Math.min(opts.intervalMs, left));
  }
}
