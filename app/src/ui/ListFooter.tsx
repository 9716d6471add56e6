/** The bottom of a cursor-paged list: its error, "Load more" while the API has another page, and the empty state. */
import { Show, type JSX } from "solid-js";
import type { CursorListView } from "../api/useCursorList.ts";

export function ListFooter<T>(props: { list: CursorListView<T>; empty: JSX.Element }) {
  const s = () => props.list.state();
  return (
    <>
      <Show when={s().error}><p class="error" role="alert">{s().error}</p></Show>
      <Show when={s().loaded && !s().error && s().items.length === 0}>{props.empty}</Show>
      <Show when={s().next}>
        <div class="pager"><button type="button" disabled={s().loading} onClick={() => void props.list.more()}>{s().loading ? "Loading…" : "Load more"}</button>
          <span class="muted">{s().items.length} shown</span></div>
      </Show>
    </>
  );
}
