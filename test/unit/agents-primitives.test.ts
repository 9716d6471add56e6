/**
 * The primitive flow files (flows/primitives/*.json): current with their
 * builder, wired gate → msg_input … msg_output → exit, every model call
 * followed by redforge-ai-audit and backed by retries and a dead letter,
 * every function node's code valid JavaScript, importable side by side.
 */
import fs from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { primitiveFile, PRIMITIVES, renderPrimitive, routeOf } from "../../flows/primitives/build.mts";

type Node = { id: string; type: string; wires?: string[][] } & Record<string, any>;
const load = async (name: string) => JSON.parse(await fs.readFile(primitiveFile(name), "utf8")) as Node[];
const names = Object.keys(PRIMITIVES);

/** Ids reachable from `from` along wires. */
function downstream(flow: Node[], from: string): Set<string> {
  const byId = new Map(flow.map((n) => [n.id, n]));
  const seen = new Set<string>();
  const walk = (id: string) => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const out of byId.get(id)?.wires ?? []) for (const next of out) walk(next);
  };
  walk(from);
  return seen;
}

describe("agent primitive flows", () => {
  it.each(names)("%s.json is what flows/primitives/build.mts writes", async (name) => {
    expect(await fs.readFile(primitiveFile(name), "utf8"), "stale: npx tsx flows/primitives/build.mts").toBe(renderPrimitive(name));
  });

  it.each(names)("%s: HTTP in → gate → read msg_input, and every path to the HTTP answer passes build msg_output and the exit", async (name) => {
    const flow = await load(name);
    const byType = (t: string) => flow.filter((n) => n.type === t);
    const httpIn = byType("http in");
    expect(httpIn).toHaveLength(1);
    expect(httpIn[0]).toMatchObject({ url: routeOf(name), method: "post" });
    const gate = flow.find((n) => n.id === httpIn[0]!.wires![0]![0])!;
    expect(gate.type).toBe("redforge-gate");
    expect(flow.find((n) => n.id === gate.wires![0]![0])).toMatchObject({ type: "redforge-message", mode: "input" });
    const exit = byType("redforge-exit");
    expect(exit).toHaveLength(1);
    expect(flow.find((n) => n.id === exit[0]!.wires![0]![0])!.type).toBe("http response");
    // Only the exit leads to the HTTP answer, so nothing is answered without leaving the gate's count.
    for (const n of flow) if (n.wires?.flat().some((id) => byType("http response").some((r) => r.id === id))) expect(n.type).toBe("redforge-exit");
    for (const n of flow.filter((x) => x.wires?.flat().includes(exit[0]!.id))) expect(n.type).toBe("redforge-message");
  });

  it.each(names)("%s: every model call is followed by the AI audit node, every call backed by retries and a dead letter", async (name) => {
    const flow = await load(name);
    const calls = flow.filter((n) => n.type === "http request");
    if (PRIMITIVES[name]!.callsModel) expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      const after = downstream(flow, call.id);
      const types = new Set([...after].map((id) => flow.find((n) => n.id === id)!.type));
      expect(types.has("redforge-ai-audit"), `${call.id} → ai audit`).toBe(PRIMITIVES[name]!.callsModel);
      expect(types.has("redforge-dlq"), `${call.id} → dead letter`).toBe(true);
      expect(types.has("delay"), `${call.id} → back off`).toBe(true);
    }
  });

  it("every function node's code is valid JavaScript, and ids never collide across primitives", async () => {
    const ids = new Set<string>();
    for (const name of names) {
      for (const n of await load(name)) {
        expect(ids.has(n.id), n.id).toBe(false);
        ids.add(n.id);
        // Node-RED runs function code as an async function body; compile it the same way.
        if (n.type === "function") expect(() => new Function("msg", "env", "node", `return (async () => {${n.func}\n})()`), `${n.id}`).not.toThrow();
      }
    }
  });
});
