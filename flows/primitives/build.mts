/**
 * Writes the agent primitives (flows/primitives/<name>.json) from one
 * description, so every primitive has the same edges: HTTP in → redforge-gate
 * → redforge-message (read msg_input) → its work → redforge-message (build
 * msg_output) → redforge-exit → HTTP response, and every model call the same
 * retry / back-off / dead-letter block followed by redforge-ai-audit.
 * test/unit/agents-primitives.test.ts fails when a file is stale.
 *
 *   npx tsx flows/primitives/build.mts
 */
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { embeddingsWork } from "./work/embeddings.mts";
import { errorHandlingWork } from "./work/errorHandling.mts";
import { queryWork } from "./work/queryProcessing.mts";
import { responseWork } from "./work/responseGeneration.mts";
import { converterWork, memoryWork, storageWork } from "./work/storage.mts";
import { type FlowNode, type Work } from "./work/shared.mts";

export const PRIMITIVES_DIR = fileURLToPath(new URL(".", import.meta.url));

/** Every primitive answers on POST /agents/<name>. */
export const routeOf = (name: string) => `/agents/${name}`;

const chunkingWork: Work = (id) => ({
  nodes: [{ id: id("chunk"), type: "redforge-chunk", name: "chunk text", size: "${CHUNK_SIZE}", overlap: "${CHUNK_OVERLAP}", wires: [[id("out")]] }],
  first: id("chunk"),
  catchable: [id("chunk")],
});

/** `callsModel`: its HTTP calls go to a model (each followed by redforge-ai-audit); error-handling calls other primitives. */
export const PRIMITIVES: Record<string, { label: string; prefix: string; work: Work; callsModel: boolean }> = {
  "text-chunking": { label: "RedForge · text chunking", prefix: "rfchunk", work: chunkingWork, callsModel: false },
  embeddings: { label: "RedForge · embeddings", prefix: "rfembed", work: embeddingsWork, callsModel: true },
  "query-processing": { label: "RedForge · query processing", prefix: "rfquery", work: queryWork, callsModel: true },
  "response-generation": { label: "RedForge · response generation", prefix: "rfrespond", work: responseWork, callsModel: true },
  "error-handling": { label: "RedForge · error handling", prefix: "rferror", work: errorHandlingWork, callsModel: false },
  storage: { label: "RedForge · storage (vector store)", prefix: "rfstore", work: storageWork, callsModel: false },
  memory: { label: "RedForge · conversation memory", prefix: "rfmemory", work: memoryWork, callsModel: false },
  "file-converter": { label: "RedForge · file converter", prefix: "rfconvert", work: converterWork, callsModel: false },
};

/** One primitive as an importable flow: a tab with its nodes, ids prefixed so primitives import side by side. */
export function primitiveFlow(name: string): FlowNode[] {
  const p = PRIMITIVES[name];
  if (!p) throw new Error(`no primitive ${name}`);
  const id = (local: string) => `${p.prefix}-${local}`;
  const tab = id("tab");
  const work = p.work(id, name);
  const edges: FlowNode[] = [
    { id: id("http-in"), type: "http in", name: `POST ${routeOf(name)}`, url: routeOf(name), method: "post", upload: false, wires: [[id("gate")]] },
    { id: id("gate"), type: "redforge-gate", name: "entry", source: "input", ttl: 300, holdLimit: 1000, wires: [[id("in")]] },
    { id: id("in"), type: "redforge-message", name: "read msg_input", mode: "input", source: name, contentType: "json", outputs: 2, wires: [[work.first], [id("exit")]] },
    ...work.nodes,
    { id: id("out"), type: "redforge-message", name: "build msg_output", mode: "output", source: name, contentType: "json", outputs: 1, wires: [[id("exit")]] },
    { id: id("exit"), type: "redforge-exit", name: "exit", wires: [[id("http-out")]] },
    { id: id("http-out"), type: "http response", name: "answer", statusCode: "", headers: {}, wires: [] },
    // A node that throws would leave the HTTP caller waiting: answer with internal_error instead.
    { id: id("catch"), type: "catch", name: "unexpected failure", scope: work.catchable, uncaught: false, wires: [[id("failed")]] },
    {
      id: id("failed"), type: "function", name: "internal_error", outputs: 1, timeout: 0, noerr: 0, initialize: "", finalize: "", libs: [],
      func: `msg.agent = msg.agent || {};\nmsg.agent.error = { code: "internal_error", message: String((msg.error && msg.error.message) || "failed") };\nreturn msg;`,
      wires: [[id("out")]],
    },
  ];
  return [{ id: tab, type: "tab", label: p.label, disabled: false, info: `RedForge agent primitive: POST ${routeOf(name)} (docs/agents.md)` }, ...layout(edges.map((n) => ({ ...n, z: tab })))];
}

/** Positions in the editor: nodes in wiring order, left to right, wrapping rows. */
function layout(nodes: FlowNode[]): FlowNode[] {
  return nodes.map((n, i) => ({ ...n, x: 140 + (i % 6) * 200, y: 80 + Math.floor(i / 6) * 100 }));
}

export const renderPrimitive = (name: string) => `${JSON.stringify(primitiveFlow(name), null, 2)}\n`;
export const primitiveFile = (name: string) => path.join(PRIMITIVES_DIR, `${name}.json`);

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  for (const name of Object.keys(PRIMITIVES)) {
    await fs.writeFile(primitiveFile(name), renderPrimitive(name));
    process.stdout.write(`wrote ${path.relative(process.cwd(), primitiveFile(name))}\n`);
  }
}
