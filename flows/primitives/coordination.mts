/**
 * The coordination flows (docs/agents.md, "Coordination"), written from one
 * description like the primitives (build.mts):
 * - coordination-participant.json: an agent entered over MQTT (the
 *   instance's one `source: mqtt` gate) that answers a coordinator's query
 *   with its chat model (response generation's work) and replies to it.
 *   One per instance: the gate hands an instance's MQTT work to its first
 *   MQTT gate only.
 * - voting.json (POST /agents/voting) and refinement.json (POST
 *   /agents/refinement): a redforge-coordinator between the usual edges.
 * test/unit/coordination-flows.test.ts fails when a file is stale.
 *
 *   npx tsx flows/primitives/coordination.mts
 */
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { responseWork } from "./work/responseGeneration.mts";
import type { FlowNode } from "./work/shared.mts";

const DIR = fileURLToPath(new URL(".", import.meta.url));

/** The coordinator's settings per pattern, each from an environment variable (empty: the node's default). */
const COORDINATORS = {
  voting: {
    label: "RedForge · voting", prefix: "rfvote",
    settings: { pattern: "voting", participants: "${VOTING_PARTICIPANTS}", rule: "${VOTING_RULE}", quorum: "${VOTING_QUORUM}", deadline: "${VOTING_DEADLINE_MS}", judge: "${VOTING_JUDGE}", judgeDeadline: "${VOTING_JUDGE_DEADLINE_MS}" },
  },
  refinement: {
    label: "RedForge · refinement", prefix: "rfrefine",
    settings: { pattern: "refinement", generator: "${REFINE_GENERATOR}", critic: "${REFINE_CRITIC}", maxRounds: "${REFINE_MAX_ROUNDS}", stopPhrase: "${REFINE_STOP_PHRASE}", stepTimeout: "${REFINE_STEP_TIMEOUT_MS}" },
  },
} as const;

export type CoordinationFlow = "coordination-participant" | keyof typeof COORDINATORS;
export const COORDINATION_FLOWS: CoordinationFlow[] = ["coordination-participant", "voting", "refinement"];

function catchAll(id: (l: string) => string, scope: string[]): FlowNode[] {
  return [
    // A node that throws would leave the caller waiting: answer internal_error instead.
    { id: id("catch"), type: "catch", name: "unexpected failure", scope, uncaught: false, wires: [[id("failed")]] },
    {
      id: id("failed"), type: "function", name: "internal_error", outputs: 1, timeout: 0, noerr: 0, initialize: "", finalize: "", libs: [],
      func: `msg.agent = msg.agent || {};\nmsg.agent.error = { code: "internal_error", message: String((msg.error && msg.error.message) || "failed") };\nreturn msg;`,
      wires: [[id("out")]],
    },
  ];
}

function participant(): { label: string; info: string; nodes: FlowNode[] } {
  const id = (l: string) => `rfpeer-${l}`;
  const work = responseWork(id, "coordination-participant");
  return {
    label: "RedForge · coordination participant",
    info: "RedForge coordination participant: answers a coordinator's query (MQTT, redforge/ingest/{instance}) with CHAT_* and replies to it (docs/agents.md)",
    nodes: [
      { id: id("gate"), type: "redforge-gate", name: "entry (MQTT)", source: "mqtt", ttl: 300, holdLimit: 1000, wires: [[id("route")]] },
      { id: id("route"), type: "redforge-coordination-reply", name: "keep reply route", mode: "capture", wires: [[id("in")]] },
      { id: id("in"), type: "redforge-message", name: "read msg_input", mode: "input", source: "coordination-participant", contentType: "json", outputs: 2, wires: [[work.first], [id("exit")]] },
      ...work.nodes,
      { id: id("out"), type: "redforge-message", name: "build msg_output", mode: "output", source: "coordination-participant", contentType: "json", outputs: 1, wires: [[id("exit")]] },
      { id: id("exit"), type: "redforge-exit", name: "exit", wires: [[id("reply")]] },
      { id: id("reply"), type: "redforge-coordination-reply", name: "reply to coordinator", mode: "reply", wires: [] },
      ...catchAll(id, [id("route"), ...work.catchable]),
    ],
  };
}

function coordinator(name: keyof typeof COORDINATORS): { label: string; info: string; nodes: FlowNode[] } {
  const c = COORDINATORS[name];
  const id = (l: string) => `${c.prefix}-${l}`;
  const route = `/agents/${name}`;
  return {
    label: c.label,
    info: `RedForge coordination: POST ${route} runs a ${name} session across agent instances (docs/agents.md)`,
    nodes: [
      { id: id("http-in"), type: "http in", name: `POST ${route}`, url: route, method: "post", upload: false, wires: [[id("gate")]] },
      { id: id("gate"), type: "redforge-gate", name: "entry", source: "input", ttl: 300, holdLimit: 1000, wires: [[id("in")]] },
      { id: id("in"), type: "redforge-message", name: "read msg_input", mode: "input", source: name, contentType: "json", outputs: 2, wires: [[id("coordinate")], [id("exit")]] },
      { id: id("coordinate"), type: "redforge-coordinator", name, ...c.settings, wires: [[id("out")]] },
      { id: id("out"), type: "redforge-message", name: "build msg_output", mode: "output", source: name, contentType: "json", outputs: 1, wires: [[id("exit")]] },
      { id: id("exit"), type: "redforge-exit", name: "exit", wires: [[id("http-out")]] },
      { id: id("http-out"), type: "http response", name: "answer", statusCode: "", headers: {}, wires: [] },
      ...catchAll(id, [id("coordinate")]),
    ],
  };
}

/** One coordination flow as an importable tab. */
export function coordinationFlow(name: CoordinationFlow): FlowNode[] {
  const f = name === "coordination-participant" ? participant() : coordinator(name);
  const tab = f.nodes[0]!.id.replace(/-[^-]+$/, "-tab");
  return [
    { id: tab, type: "tab", label: f.label, disabled: false, info: f.info },
    ...f.nodes.map((n, i) => ({ ...n, z: tab, x: 140 + (i % 6) * 200, y: 80 + Math.floor(i / 6) * 100 })),
  ];
}

export const coordinationFile = (name: CoordinationFlow) => path.join(DIR, `${name}.json`);
export const renderCoordination = (name: CoordinationFlow) => `${JSON.stringify(coordinationFlow(name), null, 2)}\n`;

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  for (const name of COORDINATION_FLOWS) {
    await fs.writeFile(coordinationFile(name), renderCoordination(name));
    process.stdout.write(`wrote ${path.relative(process.cwd(), coordinationFile(name))}\n`);
  }
}
