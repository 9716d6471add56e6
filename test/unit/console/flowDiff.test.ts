import { describe, expect, it } from "vitest";
import { canonical, diffFlows, tabNames } from "../../../app/src/instances/flowDiff.ts";

const tab = { id: "t1", type: "tab", label: "Support" };
const inject = { id: "n1", type: "inject", z: "t1", name: "tick", x: 100, y: 80, repeat: "5", wires: [["n2"]] };
const fn = { id: "n2", type: "function", z: "t1", name: "answer", x: 300, y: 80, func: "return msg;", wires: [[]] };

describe("node-level flow diff", () => {
  it("reports added, removed and changed nodes by id, with the properties that changed", () => {
    const before = [tab, inject, fn];
    const after = [tab, { ...inject, repeat: "10" }, { id: "n3", type: "debug", z: "t1", name: "out", x: 500, y: 80 }];
    const d = diffFlows(before, after);
    expect(d.added.map((n) => n.id)).toEqual(["n3"]);
    expect(d.removed).toEqual([{ id: "n2", type: "function", label: "answer", tab: "t1" }]);
    expect(d.changed).toEqual([{ id: "n1", type: "inject", label: "tick", tab: "t1", fields: ["repeat"] }]);
    expect(d.unchanged).toBe(1);
  });

  it("counts a node only dragged on the canvas as moved, not changed", () => {
    const d = diffFlows([inject], [{ ...inject, x: 140, y: 200 }]);
    expect(d.changed).toEqual([]);
    expect(d.moved.map((n) => n.id)).toEqual(["n1"]);
  });

  it("lists only the non-position properties of a node that moved and changed", () => {
    const d = diffFlows([fn], [{ ...fn, x: 10, func: "msg.payload = 1; return msg;" }]);
    expect(d.changed[0]?.fields).toEqual(["func"]);
  });

  it("ignores key order and compares nested values (wires, rules) deeply", () => {
    const reordered = Object.fromEntries(Object.entries(fn).reverse());
    expect(diffFlows([fn], [reordered]).unchanged).toBe(1);
    expect(diffFlows([fn], [{ ...fn, wires: [["n1"]] }]).changed[0]?.fields).toEqual(["wires"]);
    expect(canonical({ b: [1, { d: 2, c: 3 }], a: null })).toBe(canonical({ a: null, b: [1, { c: 3, d: 2 }] }));
  });

  it("sees a property removed or added as a change of that property", () => {
    const { name: _name, ...unnamed } = fn;
    expect(diffFlows([fn], [unnamed]).changed[0]?.fields).toEqual(["name"]);
  });

  it("counts entries that are not nodes instead of failing on them", () => {
    const d = diffFlows([fn, null, 3, { type: "no-id" }], [fn, "x"]);
    expect(d.ignored).toBe(4);
    expect(d.unchanged).toBe(1);
  });

  it("compares empty and identical exports as no change", () => {
    expect(diffFlows([], [])).toEqual({ added: [], removed: [], changed: [], moved: [], unchanged: 0, ignored: 0 });
    const same = diffFlows([tab, inject, fn], [tab, inject, fn]);
    expect(same.unchanged).toBe(3);
  });

  it("names tabs and subflows by label so a node's flow can be shown", () => {
    expect(tabNames([tab, { id: "s1", type: "subflow", name: "retry" }, fn])).toEqual(new Map([["t1", "Support"], ["s1", "retry"]]));
  });
});
