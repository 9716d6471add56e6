/** A deployment's phases as rows, updated in place as time and frames move (Index: no row is rebuilt per tick), and its smoke checks. */
import { For, Index } from "solid-js";
import { formatMs, timeline, type Deployment } from "../deployments/timeline.ts";
import { StatusBadge } from "../ui/bits.tsx";

const PHASE_TONE: Record<string, string> = { done: "ok", running: "busy", paused: "idle", failed: "bad", waiting: "unknown", skipped: "unknown" };
const CHECK_TONE: Record<string, string> = { passed: "ok", failed: "bad", inconclusive: "unknown" };

export function Timeline(props: { deployment: Deployment; now: number }) {
  return (
    <ol class="timeline" data-testid="timeline">
      <Index each={timeline(props.deployment, props.now)}>{(row) => (
        <li class={`phase phase-${row().state}`} data-phase={row().phase}>
          <span class="phase-name">{row().phase.replace("_", " ")}</span>
          <StatusBadge status={row().state} tone={PHASE_TONE[row().state] ?? "unknown"} />
          <span class="phase-ms">{formatMs(row().durationMs)}</span>
          <span class="muted phase-detail">{row().detail ?? ""}</span>
        </li>
      )}</Index>
    </ol>
  );
}

export function SmokeChecks(props: { smoke: NonNullable<Deployment["metrics"]["smoke"]> }) {
  return (
    <div class="panel">
      <h2>Smoke checks: {props.smoke.verdict}</h2>
      <ul class="checks">
        <For each={props.smoke.checks}>{(c) => (
          <li><StatusBadge status={c.outcome} tone={CHECK_TONE[c.outcome] ?? "unknown"} /> {c.name} <span class="muted">{c.detail}</span></li>
        )}</For>
      </ul>
    </div>
  );
}
