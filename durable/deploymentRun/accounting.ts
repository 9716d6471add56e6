/**
 * What a deployment cost, from the bridge's own counters: messages held and
 * never handed on (lost), handed on twice (duplicated), refused, stopped in
 * flight, expired. Counted per hand-over of a hold (the switch, a rollback),
 * because one hand-over's duplicates must not hide another's losses. Pure:
 * the step table calls these with each answer; docs/deployments.md ("What a
 * deployment cost") says what is counted and what cannot be seen.
 */
import type { CommandResult, SmokeResult } from "../../protocol/commands.ts";
import { emptyAccounting, type Accounting } from "../../protocol/deployments.ts";
import type { RunState } from "./state.ts";

type Handover = CommandResult<"route.switch"> | CommandResult<"deployment.rollback">;

/** States stored before accounting existed start counting from their next answer. */
function ledger(s: RunState): Accounting {
  s.metrics.accounting ??= emptyAccounting();
  return s.metrics.accounting;
}

function unseen(a: Accounting, what: string): void {
  a.exact = false;
  if (!a.unseen.includes(what)) a.unseen.push(what);
}

/** Blue drained: a hold is open until a hand-over replays it. Its counts so far are lower bounds (work keeps arriving). */
export function drained(s: RunState, r: CommandResult<"gate.set">): void {
  const a = ledger(s);
  s.openHold = { mqtt: r.heldMqtt, http: r.heldHttp };
  a.httpRefused += r.httpRefused ?? 0;
  if (r.httpRefused === undefined) unseen(a, "HTTP requests refused during the drain (the bridge did not report them)");
}

/** A hand-over (the switch, or a rollback's switch back): held work against what was replayed and released. */
export function handedOver(s: RunState, r: Handover, kind: "switch" | "rollback"): void {
  const a = ledger(s);
  const open = s.openHold ?? null;
  // Without the bridge's count at the hand-over: the drain's (a lower bound) for blue's hold; after the
  // switch a rollback drains green inside its own command, and only the bridge could say what that held.
  let heldMqtt = r.heldMqtt;
  if (heldMqtt === undefined) {
    heldMqtt = open ? open.mqtt : (kind === "rollback" && s.switched ? r.replayed : 0);
    if (open || (kind === "rollback" && s.switched)) unseen(a, `MQTT work held at the ${kind} (the bridge reported only ${open ? "the drain's count, a lower bound" : "what it replayed"}): duplicates cannot be seen`);
  }
  const heldHttp = r.httpHeld ?? (open ? open.http : 0);
  if (r.httpHeld === undefined && open) unseen(a, `HTTP requests held until the ${kind} (the drain's count, a lower bound)`);
  const released = r.httpReleased + r.heldHttpReleasedOnBlue;
  a.mqttHeld += heldMqtt;
  a.mqttReplayed += r.replayed;
  a.mqttLost += Math.max(0, heldMqtt - r.replayed);
  // Only against an exact count: replayed above a lower bound is work held after the drain answered, not a duplicate.
  if (r.heldMqtt !== undefined) a.mqttDuplicated += Math.max(0, r.replayed - r.heldMqtt);
  a.httpHeld += heldHttp;
  a.httpReleased += released;
  // Plus what the front saw and never answered during the hold (a client that gave up, a cut connection).
  // Held past the bound and refused 503 were held and never released, but their clients were told: refused, not lost.
  a.httpLost += Math.max(0, heldHttp - released - (r.httpHeldRefused ?? 0)) + (r.httpUnanswered ?? 0);
  a.httpRefused += r.httpRefused ?? 0;
  s.openHold = null;
}

/** A runtime was stopped with this much still in flight (green at a rollback, blue at cleanup): presumed lost. */
export function stopped(s: RunState, inFlight: number): void {
  ledger(s).stoppedInFlight += inFlight;
}

/** The post-switch analysis: in-flight entries green's gate dropped after their TTL since the switch (the latest reading). */
export function analysed(s: RunState, result: SmokeResult): void {
  if (result.expired !== undefined) ledger(s).expired = result.expired;
}

/** A counter the bridge could not give (a result that did not parse). */
export function unreadable(s: RunState, what: string): void {
  unseen(ledger(s), what);
}

/**
 * The deployment ended: a hold still open was never handed over (a rollback given up), so what it held is
 * stranded, and counted lost; then the totals the view shows.
 */
export function settle(s: RunState, ended: boolean): void {
  const a = ledger(s);
  if (ended && s.openHold) {
    a.stranded += s.openHold.mqtt + s.openHold.http;
    unseen(a, "work held after the drain answered, never handed over: only the drain's count is known");
    s.openHold = null;
  }
  s.metrics.messagesLost = a.mqttLost + a.httpLost + a.stoppedInFlight + a.expired + a.stranded;
  s.metrics.messagesDuplicated = a.mqttDuplicated;
}
