/**
 * The RAG pipeline end to end across four real Node-RED instances created
 * through the API from the `rag-pipeline/<role>` blueprints (wrangler dev, a
 * bridge with the process driver, the MQTT broker, the model stand-in as
 * Ollama, a real Postgres for the vector store): documents (text and a PDF)
 * are converted, chunked, embedded and stored; questions are answered from
 * what was retrieved. Stages are chained over HTTP by flows/primitives/ragClient.mts,
 * and over the cluster's MQTT bus by the same instances' rag-stage-<role> flows
 * (flows/primitives/ragMqttClient.mts starts a route; each instance publishes to
 * the next one's redforge/ingest/{instance}, through the bridge's MQTT front).
 *
 * The stand-in answers extractively (dev/model-stand-in/answers.ts): the
 * context sentence sharing the most words with the question. So an answer
 * equal to a document's sentence came from that document, and the same
 * question against a collection without it does not get that sentence.
 */
import fs from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startModelStandIn, type ModelStandIn } from "../../dev/model-stand-in/index.ts";
import { ingest, query, type RagFronts } from "../../flows/primitives/ragClient.mts";
import { RagMqttClient, RagPipelineError, type RagInstances } from "../../flows/primitives/ragMqttClient.mts";
import { agentsPostgres, type AgentsPostgres } from "../harness/agentsPostgres.ts";
import { eventually } from "../harness/eventually.ts";
import { startFleetStack, type FleetStack } from "../harness/fleetStack.ts";

const REACTOR = "The Zephyr reactor is cooled by liquid sodium. Its core runs at five hundred degrees.";
const FERRY = "The harbour ferry leaves every forty minutes. Tickets are sold on the pier.";

let fleet: FleetStack;
let model: ModelStandIn;
let db: AgentsPostgres;
const fronts: RagFronts = { ingest: "", embed: [], store: "", answer: "" };
const ids: Record<string, string> = {};
let bus: RagMqttClient | undefined;

async function call(method: string, p: string, body?: unknown) {
  const res = await fetch(`${fleet.stack.apiUrl}${p}`, {
    method, headers: { authorization: `Bearer ${fleet.token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as any };
}

async function running(id: string): Promise<string> {
  let last: unknown;
  return eventually(async () => {
    const inst = (last = (await call("GET", `/api/instances/${id}`)).body);
    return inst?.status === "running" && inst.endpoints?.front ? inst.endpoints.front as string : undefined;
  }, 180_000).catch((err: Error) => { throw new Error(`${err.message}: instance ${id} is ${JSON.stringify(last)}`); });
}

/** A primitive's route answers once the node package is loaded and the flows started. */
const live = (url: string) => eventually(async () => {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }).catch(() => undefined);
  return res?.status === 400 || undefined;
}, 120_000);

beforeAll(async () => {
  fleet = await startFleetStack("rag");
  model = await startModelStandIn();
  db = await agentsPostgres("redforge_rag_it");
  const model_ = { MODEL_MAX_ATTEMPTS: "2", MODEL_BACKOFF_MS: "100", MODEL_TIMEOUT_MS: "20000" };
  const embed = { EMBED_API: "ollama", EMBED_URL: model.url, EMBED_MODEL: "nomic-embed-text", ...model_ };
  const roles: Record<string, Record<string, string>> = {
    ingest: { CHUNK_SIZE: "120", CHUNK_OVERLAP: "0" },
    embed,
    // STORE_POSTGRES_URL is a secret parameter: it goes to the instance's secrets, not its env.
    store: { ...embed, STORE_POSTGRES_URL: db.url, STORE_TABLE: "rag.vectors", QUERY_TOP_K: "1" },
    answer: { CHAT_API: "ollama", CHAT_URL: model.url, CHAT_MODEL: "llama3.2", ...model_ },
  };
  for (const [role, blueprintParams] of Object.entries(roles)) {
    const created = await call("POST", "/api/instances", { name: `rag-${role}`, clusterId: fleet.clusterId, blueprint: `rag-pipeline/${role}`, blueprintParams });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    if (role === "store") {
      expect(created.body.secretNames).toEqual(["STORE_POSTGRES_URL"]);
      expect(created.body.env.STORE_POSTGRES_URL).toBeUndefined();
    }
    ids[role] = created.body.id;
  }
  fronts.ingest = await running(ids.ingest!);
  fronts.embed = [await running(ids.embed!)];
  fronts.store = await running(ids.store!);
  fronts.answer = await running(ids.answer!);
  await Promise.all([
    live(`${fronts.ingest}/agents/file-converter`), live(`${fronts.ingest}/agents/text-chunking`), live(`${fronts.embed[0]}/agents/embeddings`),
    live(`${fronts.store}/agents/storage`), live(`${fronts.store}/agents/query-processing`), live(`${fronts.answer}/agents/response-generation`),
  ]);
}, 420_000);

afterAll(async () => {
  await bus?.close();
  await fleet?.close();
  await model?.close();
  await db?.stop();
});

describe("RAG pipeline across four Node-RED instances created from blueprints", () => {
  it("ingests text and a PDF, then answers questions from the ingested documents", async () => {
    const collection = `docs_${crypto.randomUUID().slice(0, 8)}`;
    const reactor = await ingest(fronts, { text: REACTOR }, collection);
    expect(reactor.stored).toMatchObject({ collection, upserted: 1 });
    expect((await ingest(fronts, { text: FERRY }, collection)).stored.upserted).toBe(1);
    const pdf = await fs.readFile(new URL("../fixtures/agents/sample.pdf", import.meta.url));
    expect((await ingest(fronts, { base64: pdf.toString("base64") }, collection)).stored.upserted).toBeGreaterThanOrEqual(1);

    const cooled = await query(fronts, "How is the Zephyr reactor cooled?", collection);
    expect(cooled.results).toHaveLength(1);
    expect(cooled.results[0]!.text).toBe(REACTOR);
    expect(cooled.answer).toMatchObject({ answer: "The Zephyr reactor is cooled by liquid sodium.", model: "llama3.2" });

    const ferry = await query(fronts, "How often does the harbour ferry leave?", collection);
    expect(ferry.answer.answer).toBe("The harbour ferry leaves every forty minutes.");

    // From the PDF, converted by the ingest instance's file converter.
    const replayed = await query(fronts, "When is held work replayed?", collection);
    expect(replayed.answer.answer).toBe("Held work is replayed after the switch.");
  });

  it("a collection without the document does not give its answer", async () => {
    const other = `docs_${crypto.randomUUID().slice(0, 8)}`;
    await ingest(fronts, { text: FERRY }, other);
    const got = await query(fronts, "How is the Zephyr reactor cooled?", other);
    expect(got.results[0]!.text).toBe(FERRY);
    expect(got.answer.answer).not.toContain("sodium");
  });

  it("each instance's model calls are in the AI decision log under that instance", async () => {
    const models = async (id: string) => ((await call("GET", `/api/ai/decisions?instanceId=${id}&limit=50`)).body?.items ?? []).map((d: any) => d.model);
    await eventually(async () => (await models(ids.answer!)).includes("llama3.2") || undefined, 60_000);
    await eventually(async () => (await models(ids.embed!)).includes("nomic-embed-text") || undefined, 60_000);
    expect(await models(ids.ingest!)).toEqual([]);
  });
});

describe("RAG pipeline over the cluster's MQTT bus (the same four instances, rag-stage-<role> flows)", () => {
  const instances = (): RagInstances => ({ ingest: ids.ingest!, embed: [ids.embed!], store: ids.store!, answer: ids.answer! });

  it("each stage publishes to the next instance's ingest topic; the answer comes back on the caller's reply topic", async () => {
    bus ??= await RagMqttClient.connect(`mqtt://${fleet.broker.host}:${fleet.broker.port}`);
    const collection = `mqtt_${crypto.randomUUID().slice(0, 8)}`;
    const reactor = await bus.ingest(instances(), { text: REACTOR }, collection);
    expect(reactor.stored).toMatchObject({ collection, upserted: 1 });
    // The trail: every hop ran on the instance its role says, in order.
    expect(reactor.trail.map((h) => [h.stage, h.instance])).toEqual([
      ["convert", ids.ingest], ["chunk", ids.ingest], ["embed", ids.embed], ["store", ids.store],
    ]);
    expect(reactor.output.metadata).toMatchObject({ flowId: reactor.flowId, source: "storage", status: "success" });
    await bus.ingest(instances(), { text: FERRY }, collection);
    const pdf = await fs.readFile(new URL("../fixtures/agents/sample.pdf", import.meta.url));
    expect((await bus.ingest(instances(), { base64: pdf.toString("base64") }, collection)).stored.upserted).toBeGreaterThanOrEqual(1);

    const cooled = await bus.query(instances(), "How is the Zephyr reactor cooled?", collection);
    expect(cooled.answer).toMatchObject({ answer: "The Zephyr reactor is cooled by liquid sodium.", model: "llama3.2" });
    expect(cooled.trail.map((h) => [h.stage, h.instance])).toEqual([["retrieve", ids.store], ["respond", ids.answer]]);
    expect((await bus.query(instances(), "When is held work replayed?", collection)).answer.answer).toBe("Held work is replayed after the switch.");
    // Several documents at once: each reply finds its own caller's promise by flowId.
    const many = await Promise.all(["alpha", "beta", "gamma", "delta"].map((w) => bus!.ingest(instances(), { text: `The ${w} valve is painted ${w} blue.` }, collection)));
    expect(many.map((m) => m.stored.upserted)).toEqual([1, 1, 1, 1]);
    expect((await bus.query(instances(), "What colour is the gamma valve painted?", collection)).answer.answer).toBe("The gamma valve is painted gamma blue.");
  });

  it("a failing stage answers the caller with its error: a stage the instance does not run, a bad payload", async () => {
    bus ??= await RagMqttClient.connect(`mqtt://${fleet.broker.host}:${fleet.broker.port}`);
    const wrongRole = await bus.run({ stage: "respond", instance: ids.store! }, [], "hello", "text").catch((e: RagPipelineError) => e);
    expect(wrongRole).toBeInstanceOf(RagPipelineError);
    expect((wrongRole as RagPipelineError).reply.output).toMatchObject({ metadata: { status: "error", source: "rag-stage-store" }, error: { code: "invalid_input", message: expect.stringMatching(/runs stages store, retrieve/) } });
    // text-chunking refuses a number; the reply names the stage and instance that failed, and the later hops never ran.
    const bad = await bus.run({ stage: "chunk", instance: ids.ingest! }, [{ stage: "embed", instance: ids.embed! }], 42, "json").catch((e: RagPipelineError) => e);
    expect((bad as RagPipelineError).reply.output).toMatchObject({ metadata: { status: "error", pipeline: { stage: "chunk", instance: ids.ingest } }, error: { code: "invalid_input" } });
    expect((bad as RagPipelineError).reply.trail.map((h) => h.stage)).toEqual(["chunk"]);
  });
});
