/**
 * The vector store's pgvector path: neither the embedded Postgres nor
 * Debian 12's apt sources on this machine ship pgvector, so this runs it on
 * PGlite with its pgvector extension, served over the Postgres wire protocol
 * (pglite-socket) to the same `pg` client the node uses. Needs the root dev
 * dependencies @electric-sql/pglite, @electric-sql/pglite-pgvector and
 * @electric-sql/pglite-socket; skipped with a message while they are absent.
 */
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { embed } from "../../dev/model-stand-in/answers.ts";
import { freePort } from "../../dev/ports.ts";

const require = createRequire(import.meta.url);
const { PostgresVectorStore } = require("../../flows/node-package/lib/vectorStore.js");
const { closePools } = require("../../flows/node-package/lib/pgPool.js");

const CHUNKS = [
  "The deploy gate holds MQTT work while a runtime drains.",
  "Held work is replayed to the new runtime after the switch.",
  "The bridge reports every AI decision to the control plane.",
];
const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));

let stop: (() => Promise<void>) | undefined;
let url: string | undefined;
let missing: string | undefined;

beforeAll(async () => {
  // Module names in variables: the type checker must not require these optional packages.
  const names = ["@electric-sql/pglite", "@electric-sql/pglite-pgvector", "@electric-sql/pglite-socket"];
  let mods: any[];
  try {
    mods = await Promise.all(names.map((n) => import(/* @vite-ignore */ n)));
  } catch (err) {
    missing = (err as Error).message;
    return;
  }
  const [{ PGlite }, { vector }, { PGLiteSocketServer }] = mods;
  const db = await PGlite.create({ extensions: { vector } });
  const port = await freePort();
  const server = new PGLiteSocketServer({ db, port, host: "127.0.0.1", maxConnections: 1 });
  await server.start();
  url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres?sslmode=disable`;
  stop = async () => {
    await closePools();
    await server.stop();
    await db.close();
  };
}, 60_000);

afterAll(async () => stop?.());

describe("vector store on Postgres with pgvector", () => {
  it("auto mode creates the extension and a vector column; search orders by <=> and scores 1 - cosine distance", async (ctx) => {
    if (missing) {
      console.log(`[agents-store-pgvector] SKIPPED: PGlite with pgvector is not installed (${missing.split("\n")[0]}); add the root dev dependencies @electric-sql/pglite, @electric-sql/pglite-pgvector, @electric-sql/pglite-socket`);
      return ctx.skip();
    }
    const store = new PostgresVectorStore({ url, table: "agents.vectors" });
    expect(await store.upsert("docs", CHUNKS.map((text, i) => ({ id: `c${i}`, text, embedding: embed(text), index: i })))).toMatchObject({ upserted: 3, backend: "postgres/pgvector" });
    const q = embed("What is replayed after the switch?");
    const found = await store.search("docs", q, { topK: 3 });
    const expected = CHUNKS.map((t, i) => ({ id: `c${i}`, score: cosine(embed(t), q) })).sort((a, b) => b.score - a.score);
    expect(found.results.map((r: { id: string }) => r.id)).toEqual(expected.map((e) => e.id));
    expect(found.results[0]).toMatchObject({ id: "c1", metadata: { index: 1 } });
    found.results.forEach((r: { score: number }, i: number) => expect(r.score).toBeCloseTo(expected[i]!.score, 5));
    expect(await store.search("docs", [1, 0], {}).catch((e: { code: string }) => e.code)).toBe("invalid_input");
    expect(await store.remove("docs", ["c0"])).toEqual({ collection: "docs", deleted: 1 });
  });
});
