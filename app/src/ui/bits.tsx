/** Small pieces every page uses: status badges, the live indicator, confirmation, relative times. */
import { createSignal, onCleanup, Show, type JSX } from "solid-js";
import { statusTone } from "../fleet/fleetEvents.ts";
import type { LiveState } from "../live/liveSocket.ts";

export function StatusBadge(props: { status: string; tone?: string; title?: string | null }) {
  return <span class={`badge tone-${props.tone ?? statusTone(props.status)}`} title={props.title ?? undefined} data-status={props.status}>{props.status}</span>;
}

const LIVE_WORDS: Record<LiveState, string> = { connecting: "connecting…", open: "live", reconnecting: "reconnecting…", closed: "offline" };

export function LiveBadge(props: { state: LiveState }) {
  return <span class={`live live-${props.state}`} role="status" data-testid="live">{LIVE_WORDS[props.state]}</span>;
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return new Date(iso).toLocaleDateString();
}

/** A ticking clock so "3s ago" and running durations move without a re-read. */
export function useNow(everyMs = 1000): () => number {
  const [now, setNow] = createSignal(Date.now());
  const t = setInterval(() => setNow(Date.now()), everyMs);
  onCleanup(() => clearInterval(t));
  return now;
}

export interface ConfirmRequest { title: string; body: JSX.Element; action: string; run: () => Promise<void> | void }

/** A modal <dialog> asking before anything destructive; Escape or Cancel keeps things as they are. */
export function useConfirm(): [(r: ConfirmRequest) => void, () => JSX.Element] {
  const [req, setReq] = createSignal<ConfirmRequest | null>(null);
  let dialog: HTMLDialogElement | undefined;
  const ask = (r: ConfirmRequest) => { setReq(r); dialog?.showModal(); };
  const close = () => { dialog?.close(); setReq(null); };
  const view = () => (
    <dialog ref={dialog} class="dialog" onClose={() => setReq(null)} aria-labelledby="confirm-title">
      <Show when={req()}>
        {(r) => (
          <form method="dialog" onSubmit={async (e) => { e.preventDefault(); const run = r().run; close(); await run(); }}>
            <h2 id="confirm-title">{r().title}</h2>
            <div class="dialog-body">{r().body}</div>
            <div class="actions">
              <button type="button" onClick={close}>Cancel</button>
              <button type="submit" class="danger">{r().action}</button>
            </div>
          </form>
        )}
      </Show>
    </dialog>
  );
  return [ask, view];
}

export function FieldError(props: { message?: string | undefined; id: string }) {
  return <Show when={props.message}><span class="field-error" id={props.id} role="alert">{props.message}</span></Show>;
}
