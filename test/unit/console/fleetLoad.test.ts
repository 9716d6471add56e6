/**
 * Reading the whole fleet by its cursors for the first paint: each page is shown as it
 * arrives, the next page is already asked for when a page is painted, and nothing partial
 * is shown once the whole list is back.
 */
import { describe, expect, it } from "vitest";
import { loadAllPages, type PageAnswer } from "../../../app/src/api/cursorList.ts";

const ok = <T>(items: T[], nextCursor: string | null): PageAnswer<T> => ({ data: { items, nextCursor }, response: new Response(null, { status: 200 }) });

describe("loadAllPages for the fleet's first paint", () => {
  it("asks for the next page before the page before it is painted, and paints each page in order", async () => {
    const log: string[] = [];
    const pages: Record<string, PageAnswer<number>> = { first: ok([1, 2], "b"), b: ok([3, 4], "c"), c: ok([5], null) };
    const gates = new Map<string, () => void>();
    const fetchPage = (cursor: string | undefined) => {
      const key = cursor ?? "first";
      log.push(`ask ${key}`);
      return new Promise<PageAnswer<number>>((resolve) => gates.set(key, () => resolve(pages[key]!)));
    };
    const result = loadAllPages<number>(fetchPage, 100, (sofar) => log.push(`paint ${sofar.join(",")}`));
    const release = async (key: string) => { await new Promise((r) => setTimeout(r, 0)); gates.get(key)!(); await new Promise((r) => setTimeout(r, 5)); };
    await release("first");
    await release("b");
    await release("c");
    expect(await result).toEqual({ items: [1, 2, 3, 4, 5], truncated: false, error: null });
    expect(log).toEqual(["ask first", "ask b", "paint 1,2", "ask c", "paint 1,2,3,4"]);
  });

  it("does not paint a partial list after the whole one is back", async () => {
    const painted: number[][] = [];
    const answers = [ok([1], "b"), ok([2], null)];
    let i = 0;
    const all = await loadAllPages<number>(async () => answers[i++]!, 100, (s) => painted.push(s));
    await new Promise((r) => setTimeout(r, 5));
    expect(all.items).toEqual([1, 2]);
    // The only page before the last would have been painted after the whole list arrived: it is dropped.
    expect(painted).toEqual([]);
  });

  it("a thrown or rejected read keeps what came before and says why", async () => {
    let n = 0;
    const all = await loadAllPages<number>((() => { if (n++ === 0) return Promise.resolve(ok([1], "b")); throw new Error("offline"); }), 100);
    expect(all).toEqual({ items: [1], truncated: false, error: "the control plane did not answer: offline" });
  });
});
