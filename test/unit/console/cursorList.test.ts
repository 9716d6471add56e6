import { describe, expect, it } from "vitest";
import { CursorList, loadAllPages, type CursorListState, type PageAnswer } from "../../../app/src/api/cursorList.ts";

const ok = <T>(items: T[], nextCursor: string | null): PageAnswer<T> => ({ data: { items, nextCursor }, response: new Response(null, { status: 200 }) });

/** A fetchPage whose answers the test releases by hand, in any order. */
function controlledPages<T>() {
  const calls: { cursor: string | undefined; answer: (a: PageAnswer<T>) => void }[] = [];
  const fetchPage = (cursor: string | undefined) => new Promise<PageAnswer<T>>((resolve) => calls.push({ cursor, answer: resolve }));
  return { calls, fetchPage };
}

describe("the shared cursor-list loader", () => {
  it("loads the first page, then appends each next page with the cursor the API gave", async () => {
    const pages: Record<string, PageAnswer<number>> = { first: ok([1, 2], "c2"), c2: ok([3, 4], "c3"), c3: ok([5], null) };
    const seen: (string | undefined)[] = [];
    const states: CursorListState<number>[] = [];
    const list = new CursorList<number>(async (cursor) => { seen.push(cursor); return pages[cursor ?? "first"]!; }, (s) => states.push(s));
    await list.reload();
    expect(list.current).toMatchObject({ items: [1, 2], next: "c2", loaded: true, loading: false, error: null });
    await list.more();
    await list.more();
    expect(list.current.items).toEqual([1, 2, 3, 4, 5]);
    expect(list.current.next).toBeNull();
    await list.more(); // at the end: nothing asked
    expect(seen).toEqual([undefined, "c2", "c3"]);
    expect(states.some((s) => s.loading)).toBe(true);
  });

  it("a reload starts over and drops the answer of an older load that arrives late", async () => {
    const { calls, fetchPage } = controlledPages<string>();
    const list = new CursorList<string>(fetchPage, () => {});
    const first = list.reload();
    const second = list.reload(); // a filter changed while the first page was on its way
    calls[1]!.answer(ok(["filtered"], null));
    await second;
    calls[0]!.answer(ok(["stale"], "x"));
    await first;
    expect(list.current.items).toEqual(["filtered"]);
    expect(list.current.next).toBeNull();
  });

  it("shows the API's error message and keeps what was loaded; a later success clears it", async () => {
    let fail = false;
    const list = new CursorList<number>(async () => (fail
      ? { error: { error: { code: "invalid_cursor", message: "the cursor is not valid" } }, response: new Response(null, { status: 400 }) }
      : ok([1], "n")), () => {});
    await list.reload();
    fail = true;
    await list.more();
    expect(list.current).toMatchObject({ items: [1], error: "the cursor is not valid", loading: false });
    fail = false;
    await list.reload();
    expect(list.current.error).toBeNull();
  });

  it("says the status line when the API sent no error body, and the cause when the call threw", async () => {
    const list = new CursorList<number>(async () => ({ response: new Response(null, { status: 503, statusText: "Service Unavailable" }) }), () => {});
    await list.reload();
    expect(list.current.error).toBe("the control plane answered 503 Service Unavailable");
    const broken = new CursorList<number>(async () => { throw new TypeError("Failed to fetch"); }, () => {});
    await broken.reload();
    expect(broken.current.error).toBe("the control plane did not answer: Failed to fetch");
  });

  it("does not ask for the next page twice while one is loading", async () => {
    const { calls, fetchPage } = controlledPages<number>();
    const list = new CursorList<number>(fetchPage, () => {});
    const r = list.reload();
    calls[0]!.answer(ok([1], "c2"));
    await r;
    void list.more();
    void list.more();
    expect(calls.length).toBe(2);
  });

  it("updates loaded items in place (a live event) without a read", async () => {
    const list = new CursorList<{ id: number; s: string }>(async () => ok([{ id: 1, s: "a" }, { id: 2, s: "b" }], null), () => {});
    await list.reload();
    list.update((items) => items.map((x) => (x.id === 2 ? { ...x, s: "c" } : x)));
    expect(list.current.items.map((x) => x.s)).toEqual(["a", "c"]);
  });
});

describe("reading every page (the fleet table)", () => {
  it("follows the cursors to the end", async () => {
    const pages: Record<string, PageAnswer<number>> = { first: ok([1, 2], "b"), b: ok([3, 4], "c"), c: ok([5], null) };
    expect(await loadAllPages<number>(async (c) => pages[c ?? "first"]!, 100)).toEqual({ items: [1, 2, 3, 4, 5], truncated: false, error: null });
  });

  it("stops at the cap and says the list was cut", async () => {
    let n = 0;
    const endless = async () => { n++; return ok([n * 2 - 1, n * 2], `p${n}`); };
    expect(await loadAllPages<number>(endless, 5)).toEqual({ items: [1, 2, 3, 4, 5], truncated: true, error: null });
  });

  it("keeps the pages read before a failure and says why", async () => {
    const answers = [ok([1], "x"), { error: { error: { code: "rate_limited", message: "slow down" } }, response: new Response(null, { status: 429 }) }];
    let i = 0;
    expect(await loadAllPages<number>(async () => answers[i++]!, 100)).toEqual({ items: [1], truncated: false, error: "slow down" });
  });
});
