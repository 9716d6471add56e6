/**
 * The quick actions on one instance (start, stop, restart, scale, delete),
 * shared by the fleet table and the instance page: each asks first when it
 * interrupts work (restart, scale to 0, delete) and reports the API's own
 * message. Scale is a small form whose field shows the API's error.
 */
import { createSignal, Show, type JSX } from "solid-js";
import { api, messageOf } from "../api/api.ts";
import { formErrors } from "../api/fieldErrors.ts";
import { FieldError, useConfirm } from "../ui/bits.tsx";
import type { InstanceSummary } from "./fleetEvents.ts";

export type QuickAction = "start" | "stop" | "restart" | "scale" | "delete";

type Target = Pick<InstanceSummary, "id" | "name" | "replicas" | "desiredState">;

export interface InstanceActions {
  run: (i: Target, what: QuickAction) => void;
  /** The confirmation and scale dialogs; render once on the page. */
  View: () => JSX.Element;
}

/** `done` hears each outcome: the message for a person and whether the API took it. */
export function useInstanceActions(done: (i: Target, message: string, ok: boolean, what: QuickAction) => void): InstanceActions {
  const [confirm, ConfirmView] = useConfirm();
  const [scaling, setScaling] = createSignal<Target | null>(null);

  const lifecycle = async (i: Target, what: "start" | "stop" | "restart") => {
    const path = ({ start: "/api/instances/{id}/start", stop: "/api/instances/{id}/stop", restart: "/api/instances/{id}/restart" } as const)[what];
    const { error, response } = await api.POST(path, { params: { path: { id: i.id } } });
    done(i, error ? `${i.name}: ${messageOf(error, response)}` : `${i.name}: ${what} requested`, !error, what);
  };

  const run = (i: Target, what: QuickAction) => {
    if (what === "start" || what === "stop") return void lifecycle(i, what);
    if (what === "scale") return void setScaling(i);
    if (what === "restart") {
      return confirm({
        title: `Restart ${i.name}?`,
        body: <p>Its Node-RED stops and starts again with the same flows and data. Messages in flight inside it may be cut; for a change without loss, deploy instead.</p>,
        action: "Restart",
        run: () => lifecycle(i, "restart"),
      });
    }
    confirm({
      title: `Delete ${i.name}?`,
      body: <p>The bridge removes its Node-RED runtime and the name becomes free again. Its flows and history stay in the audit trail. This cannot be undone.</p>,
      action: "Delete instance",
      run: async () => {
        const { error, response } = await api.DELETE("/api/instances/{id}", { params: { path: { id: i.id } } });
        done(i, error ? `${i.name}: ${messageOf(error, response)}` : `${i.name}: delete requested`, !error, "delete");
      },
    });
  };

  const View = () => (
    <>
      <ConfirmView />
      <Show when={scaling()}>
        {(i) => {
          // Read once: after setScaling(null) the <Show>'s accessor is stale and throws.
          const target = i();
          return <ScaleDialog target={target} onClose={() => setScaling(null)} onScaled={(replicas) => {
            setScaling(null);
            done(target, `${target.name}: scale to ${replicas} requested`, true, "scale");
          }} />;
        }}
      </Show>
    </>
  );
  return { run, View };
}

/** Replicas for one instance; 0 stops it (the API says so too), so the form says it before sending. */
function ScaleDialog(props: { target: Target; onClose: () => void; onScaled: (replicas: number) => void }) {
  const [replicas, setReplicas] = createSignal(String(props.target.replicas));
  const [error, setError] = createSignal<string | undefined>();
  const [formError, setFormError] = createSignal<string | undefined>();
  const [busy, setBusy] = createSignal(false);
  let dialog!: HTMLDialogElement;

  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const n = Number(replicas());
    setBusy(true);
    // What the person typed goes to the API as a number when it is one; the API's message is the validator.
    const { error: err, response } = await api.POST("/api/instances/{id}/scale", {
      params: { path: { id: props.target.id } },
      body: { replicas: replicas().trim() === "" || Number.isNaN(n) ? (replicas() as unknown as number) : n },
    });
    setBusy(false);
    if (err) {
      const fe = formErrors(err, ["replicas"]);
      setError(fe.fields.replicas);
      setFormError(fe.form ?? (fe.fields.replicas ? undefined : messageOf(err, response)));
      return;
    }
    dialog.close();
    props.onScaled(n);
  };

  return (
    <dialog ref={(el) => { dialog = el; queueMicrotask(() => el.showModal()); }} class="dialog" onClose={() => props.onClose()} aria-labelledby="scale-title" data-testid="scale-dialog">
      <form onSubmit={submit} novalidate>
        <h2 id="scale-title">Scale {props.target.name}</h2>
        <Show when={formError()}><p class="error" role="alert">{formError()}</p></Show>
        <label>Replicas
          <input name="replicas" type="number" inputmode="numeric" min="0" value={replicas()} onInput={(e) => setReplicas(e.currentTarget.value)}
            aria-invalid={!!error()} aria-describedby={error() ? "err-replicas" : "replicas-hint"} />
          <FieldError id="err-replicas" message={error()} />
        </label>
        <p class="muted small" id="replicas-hint">Now {props.target.replicas}. 0 stops the instance; the process driver runs 0 or 1.</p>
        <div class="actions">
          <button type="button" onClick={() => dialog.close()}>Cancel</button>
          <button type="submit" class={Number(replicas()) === 0 ? "danger" : "primary"} disabled={busy()}>{Number(replicas()) === 0 ? "Scale to 0 (stop)" : "Scale"}</button>
        </div>
      </form>
    </dialog>
  );
}

/** The buttons a row or page shows for the actions the signed-in person may take. */
export function ActionButtons(props: { instance: Target; canUpdate: boolean; canDelete: boolean; onAct: (what: QuickAction) => void }) {
  const running = () => props.instance.desiredState !== "stopped";
  return (
    <>
      <Show when={props.canUpdate}>
        <Show when={running()} fallback={<button type="button" onClick={() => props.onAct("start")}>Start</button>}>
          <button type="button" onClick={() => props.onAct("stop")}>Stop</button>
          <button type="button" onClick={() => props.onAct("restart")} data-testid="restart-instance">Restart</button>
        </Show>
        <button type="button" onClick={() => props.onAct("scale")} data-testid="scale-instance">Scale</button>
      </Show>
      <Show when={props.canDelete}>
        <button type="button" class="danger-quiet" onClick={() => props.onAct("delete")} data-testid="delete-instance">Delete</button>
      </Show>
    </>
  );
}
