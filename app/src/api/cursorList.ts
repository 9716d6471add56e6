/**
 * One loader for every list the API pages with cursors ({items, nextCursor}).
 * "Load more" appends the next page; a reload (a filter changed) starts over,
 * and an answer that arrives after a newer reload started is dropped, so a slow
 * first page never overwrites the filtered one. Framework-free (the Solid hook is
 * api/useCursorList.ts), so it is unit-tested in plain Node.
 */
import type { ApiError } from "../../../protocol/api/client.ts";

export interface CursorPage<T> { items: T[]; nextCursor: string | null }
export interface PageAnswer<T> { data?: CursorPage<T> | undefined; error?: ApiError | undefined; response: Response }
export type FetchPage<T> = (cursor: string | undefined) => Promise<PageAnswer<T>>;

export interface CursorListState<T> {
  items: T[];
  /** The cursor of the page after the last one loaded; null at the end. */
  next: string | null;
  /** At least one answer (page or error) has arrived since the last reload. */
  loaded: boolean;
  loading: boolean;
  error: string | null;
}

export const initialCursorState = <T>(): CursorListState<T> => ({ items: [], next: null, loaded: false, loading: false, error: null });

/** The API's own message, or the status line when it sent none. */
export function answerMessage(error: ApiError | undefined, response: Response): string {
  return error?.error?.message ?? `the control plane answered ${response.status} ${response.statusText}`.trim();
}

export class CursorList<T> {
  private state: CursorListState<T> = initialCursorState<T>();
  private generation = 0;

  constructor(private readonly fetchPage: FetchPage<T>, private readonly onChange: (s: CursorListState<T>) => void) {}

  get current(): CursorListState<T> { return this.state; }

  /** Starts over from the first page (after a filter change, or to refresh). */
  reload(): Promise<void> { return this.fetch(undefined, ++this.generation); }

  /** Appends the next page; nothing when at the end or while a page is loading. */
  more(): Promise<void> {
    if (!this.state.next || this.state.loading) return Promise.resolve();
    return this.fetch(this.state.next, this.generation);
  }

  /** Changes loaded items in place (a live event, an edit answered by the API). */
  update(fn: (items: T[]) => T[]): void { this.set({ items: fn(this.state.items) }); }

  private async fetch(cursor: string | undefined, generation: number): Promise<void> {
    this.set({ loading: true });
    let answer: PageAnswer<T>;
    try {
      answer = await this.fetchPage(cursor);
    } catch (err) {
      if (generation === this.generation) this.set({ loading: false, loaded: true, error: `the control plane did not answer: ${(err as Error).message}` });
      return;
    }
    if (generation !== this.generation) return;
    const { data, error, response } = answer;
    if (!data) return this.set({ loading: false, loaded: true, error: answerMessage(error, response) });
    this.set({
      loading: false, loaded: true, error: null, next: data.nextCursor,
      items: cursor === undefined ? data.items : [...this.state.items, ...data.items],
    });
  }

  private set(patch: Partial<CursorListState<T>>): void {
    this.state = { ...this.state, ...patch };
    this.onChange(this.state);
  }
}

export interface AllPages<T> { items: T[]; truncated: boolean; error: string | null }

/**
 * Every page, following the cursors, up to `max` items (a table that shows the
 * whole fleet at once). A failed page keeps what came before it and says why.
 * `onPage` sees what has arrived while more pages follow, so a table can paint
 * its first rows before the last page is read.
 */
export async function loadAllPages<T>(fetchPage: FetchPage<T>, max: number, onPage?: (itemsSoFar: T[]) => void): Promise<AllPages<T>> {
  const items: T[] = [];
  const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));
  const ask = (cursor: string | undefined): Promise<PageAnswer<T> | Error> => {
    try { return fetchPage(cursor).catch(asError); } catch (err) { return Promise.resolve(asError(err)); }
  };
  let finished = false;
  const done = (r: AllPages<T>) => { finished = true; return r; };
  let pending = ask(undefined);
  for (;;) {
    const answer = await pending;
    if (answer instanceof Error) return done({ items, truncated: false, error: `the control plane did not answer: ${answer.message}` });
    if (!answer.data) return done({ items, truncated: false, error: answerMessage(answer.error, answer.response) });
    items.push(...answer.data.items);
    if (!answer.data.nextCursor) return done({ items, truncated: false, error: null });
    if (items.length >= max) return done({ items: items.slice(0, max), truncated: true, error: null });
    // Ask for the next page, and paint this one in a later task: the client's middleware awaits before it calls
    // fetch(), so painting now would hold the request back until the rows are rendered.
    pending = ask(answer.data.nextCursor);
    if (onPage) {
      const sofar = items.slice();
      setTimeout(() => { if (!finished) onPage(sofar); }, 0);
    }
  }
}
