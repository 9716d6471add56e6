/** A CursorList as Solid signals, for as long as the page that asked for it lives. */
import { createSignal } from "solid-js";
import { CursorList, initialCursorState, type CursorListState, type FetchPage } from "./cursorList.ts";

export interface CursorListView<T> {
  state: () => CursorListState<T>;
  items: () => T[];
  reload: () => Promise<void>;
  more: () => Promise<void>;
  update: (fn: (items: T[]) => T[]) => void;
}

export function useCursorList<T>(fetchPage: FetchPage<T>, opts: { immediate?: boolean } = {}): CursorListView<T> {
  const [state, setState] = createSignal<CursorListState<T>>(initialCursorState<T>());
  const list = new CursorList(fetchPage, setState);
  if (opts.immediate !== false) void list.reload();
  return { state, items: () => state().items, reload: () => list.reload(), more: () => list.more(), update: (fn) => list.update(fn) };
}
