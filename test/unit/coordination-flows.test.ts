/**
 * The coordination flows (flows/primitives/coordination.mts): the files are
 * what the builder writes, the participant has exactly one MQTT gate (the
 * gate hands an instance's MQTT work to its first one), its reply leaves
 * after the exit, and every node type is one the node package registers or
 * Node-RED ships.
 */
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { COORDINATION_FLOWS, coordinationFile, coordinationFlow, renderCoordination } from "../../flows/primitives/coordination.mts";

const pkg = JSON.parse(fs.readFileSync(new URL("../../flows/node-package/package.json", import.meta.url), "utf8"));
const CORE = new Set(["tab", "http in", "http response", "http request", "function", "delay", "catch"]);

describe("coordination flows", () => {
  it.each(COORDINATION_FLOWS)("%s.json is up to date (npx tsx flows/primitives/coordination.mts)", (name) => {
    expect(fs.readFileSync(coordinationFile(name), "utf8")).toBe(renderCoordination(name));
  });

  it("use only node types Node-RED ships or the node package registers", () => {
    const sources = Object.values(pkg["node-red"].nodes as Record<string, string>).map((f) => fs.readFileSync(new URL(`../../flows/node-package/${f}`, import.meta.url), "utf8"));
    const registered = new Set(sources.flatMap((s) => [...s.matchAll(/registerType\("([^"]+)"/g)].map((m) => m[1]!)));
    for (const name of COORDINATION_FLOWS) {
      for (const n of coordinationFlow(name)) expect(CORE.has(n.type) || registered.has(n.type), `${name}: ${n.type}`).toBe(true);
    }
  });

  it("the participant is entered by one MQTT gate, keeps the reply route first and replies after the exit", () => {
    const flow = coordinationFlow("coordination-participant");
    const byId = new Map(flow.map((n) => [n.id, n]));
    const gates = flow.filter((n) => n.type === "redforge-gate");
    expect(gates).toEqual([expect.objectContaining({ source: "mqtt" })]);
    const next = (n: any) => byId.get(n.wires[0][0]) as any;
    expect(next(gates[0])).toMatchObject({ type: "redforge-coordination-reply", mode: "capture" });
    const exit = flow.find((n) => n.type === "redforge-exit")!;
    expect(next(exit)).toMatchObject({ type: "redforge-coordination-reply", mode: "reply", wires: [] });
    expect(flow.filter((n) => n.type === "redforge-ai-audit").length).toBeGreaterThanOrEqual(1);
  });

  it("voting and refinement read their participants from the environment", () => {
    expect(coordinationFlow("voting").find((n) => n.type === "redforge-coordinator")).toMatchObject({ pattern: "voting", participants: "${VOTING_PARTICIPANTS}", rule: "${VOTING_RULE}" });
    expect(coordinationFlow("refinement").find((n) => n.type === "redforge-coordinator")).toMatchObject({ pattern: "refinement", generator: "${REFINE_GENERATOR}", critic: "${REFINE_CRITIC}" });
  });
});
