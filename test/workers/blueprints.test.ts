/**
 * Blueprints through the API: the catalog lists every primitive flow under
 * flows/primitives/ and the RAG pipeline with the variables each reads; an
 * instance and a deployment are created from one (flows, env, secrets filled
 * in); unknown blueprints, missing and unknown parameters are 4xx naming them;
 * and RBAC. test/unit/blueprints-catalog.test.ts checks the catalog is current.
 */
import { eq } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { auditLogs, flowVersions, instances } from "../../db/schema.ts";
import { webhookHeaders } from "../../protocol/webhooks.ts";
import { api, createCluster, createUser, expectErrorShape, unique, withDb, type TestUser } from "./helpers.ts";
import embeddingsFlow from "../../flows/primitives/embeddings.json";
import votingFlow from "../../flows/primitives/voting.json";
import chunkingFlow from "../../flows/primitives/text-chunking.json";
import converterFlow from "../../flows/primitives/file-converter.json";
import ingestStageFlow from "../../flows/primitives/rag-stage-ingest.json";

let admin: TestUser;
let viewer: TestUser;
let cluster: { id: string; webhookSecret: string };

beforeAll(async () => {
  admin = await createUser("admin");
  viewer = await createUser("viewer");
  cluster = await createCluster(admin.token);
});

const PRIMITIVES = ["embeddings", "error-handling", "file-converter", "memory", "query-processing", "response-generation", "storage", "text-chunking"];

describe("blueprints", () => {
  it("lists the eight primitives, the coordination flows and the RAG pipeline, with their parameters and no flow JSON", async () => {
    const res = await api("GET", "/api/blueprints", { token: viewer.token });
    expect(res.status).toBe(200);
    const ids = res.body.items.map((b: any) => b.id);
    expect(ids).toEqual(expect.arrayContaining([...PRIMITIVES, "voting", "refinement", "coordination-participant", "rag-pipeline"]));
    const embeddings = res.body.items.find((b: any) => b.id === "embeddings");
    expect(embeddings).toMatchObject({ kind: "flow", entry: ["POST /agents/embeddings"] });
    expect(embeddings.flows).toBeUndefined();
    expect(embeddings.params.map((p: any) => p.name)).toEqual(expect.arrayContaining(["EMBED_API", "EMBED_URL", "EMBED_MODEL", "EMBED_API_KEY", "MODEL_MAX_ATTEMPTS"]));
    expect(embeddings.params.find((p: any) => p.name === "EMBED_API_KEY")).toMatchObject({ secret: true, required: false });
    expect(embeddings.params.find((p: any) => p.name === "MODEL_MAX_ATTEMPTS")).toMatchObject({ default: "3", secret: false });
    const chunking = res.body.items.find((b: any) => b.id === "text-chunking");
    expect(chunking.params).toEqual([
      expect.objectContaining({ name: "CHUNK_OVERLAP", default: "200" }),
      expect.objectContaining({ name: "CHUNK_SIZE", default: "1000" }),
    ]);
    const rag = res.body.items.find((b: any) => b.id === "rag-pipeline");
    expect(rag.kind).toBe("pipeline");
    expect(rag.instances.map((i: any) => i.role)).toEqual(["ingest", "embed", "store", "answer"]);
    expect(rag.params.find((p: any) => p.name === "EMBED_URL").roles).toEqual(["embed", "store"]);
  });

  it("one blueprint comes with its flow JSON; a pipeline with its stages; an unknown one is 404 blueprint_not_found", async () => {
    const one = await api("GET", "/api/blueprints/embeddings", { token: viewer.token });
    expect(one.status).toBe(200);
    expect(one.body.flows).toEqual(embeddingsFlow);
    const rag = await api("GET", "/api/blueprints/rag-pipeline", { token: viewer.token });
    expect(rag.status).toBe(200);
    expect(rag.body.stages.query.map((s: any) => s.path)).toEqual(["/agents/query-processing", "/agents/response-generation"]);
    const missing = await api("GET", "/api/blueprints/no-such-thing", { token: viewer.token });
    expect(missing.status).toBe(404);
    expectErrorShape(missing.body, "blueprint_not_found");
  });

  it("needs a session: 401 without a token", async () => {
    expect((await api("GET", "/api/blueprints")).status).toBe(401);
    expect((await api("GET", "/api/blueprints/embeddings")).status).toBe(401);
  });

  it("an instance from a blueprint gets its flows, plain parameters as env and secret ones as secrets", async () => {
    const res = await api("POST", "/api/instances", {
      token: admin.token,
      body: {
        name: unique("bp"), clusterId: cluster.id, blueprint: "embeddings",
        blueprintParams: { EMBED_API: "openai", EMBED_URL: "http://127.0.0.1:9", EMBED_API_KEY: "sk-test-not-returned" },
        env: { EMBED_MODEL: "mini" },
      },
    });
    expect(res.status).toBe(201);
    expect(res.body.flows).toEqual(embeddingsFlow);
    expect(res.body.env).toEqual({ EMBED_API: "openai", EMBED_URL: "http://127.0.0.1:9", EMBED_MODEL: "mini" });
    expect(res.body.secretNames).toEqual(["EMBED_API_KEY"]);
    expect(JSON.stringify(res.body)).not.toContain("sk-test-not-returned");
    const [version] = await withDb((db) => db.select().from(flowVersions).where(eq(flowVersions.instanceId, res.body.id)));
    expect(version!.flows).toEqual(embeddingsFlow);
    const audit = await withDb((db) => db.select().from(auditLogs).where(eq(auditLogs.resourceId, res.body.id)));
    expect(audit.find((a) => a.action === "INSTANCE_CREATED")!.details).toMatchObject({ blueprint: "embeddings" });
  });

  it("a pipeline's role gets the flows of every blueprint that role runs", async () => {
    const res = await api("POST", "/api/instances", { token: admin.token, body: { name: unique("bp"), clusterId: cluster.id, blueprint: "rag-pipeline/ingest", blueprintParams: { CHUNK_SIZE: "400" } } });
    expect(res.status).toBe(201);
    expect(res.body.flows).toEqual([...converterFlow, ...chunkingFlow, ...ingestStageFlow]);
    expect(res.body.env).toEqual({ CHUNK_SIZE: "400" });
    const whole = await api("POST", "/api/instances", { token: admin.token, body: { name: unique("bp"), clusterId: cluster.id, blueprint: "rag-pipeline" } });
    expect(whole.status).toBe(400);
    expectErrorShape(whole.body, "blueprint_role_required");
    const badRole = await api("POST", "/api/instances", { token: admin.token, body: { name: unique("bp"), clusterId: cluster.id, blueprint: "rag-pipeline/nope" } });
    expect(badRole.status).toBe(404);
    expectErrorShape(badRole.body, "blueprint_not_found");
  });

  it("refuses an unknown blueprint (404), a missing required or unknown parameter (400, named), and flows with a blueprint", async () => {
    const name = unique("bp");
    const unknown = await api("POST", "/api/instances", { token: admin.token, body: { name, clusterId: cluster.id, blueprint: "nope" } });
    expect(unknown.status).toBe(404);
    expectErrorShape(unknown.body, "blueprint_not_found");
    const missing = await api("POST", "/api/instances", { token: admin.token, body: { name, clusterId: cluster.id, blueprint: "voting" } });
    expect(missing.status).toBe(400);
    expectErrorShape(missing.body, "blueprint_param_missing");
    expect(missing.body.error.message).toContain("VOTING_PARTICIPANTS");
    expect(missing.body.error.details).toEqual({ missing: ["VOTING_PARTICIPANTS"] });
    const extra = await api("POST", "/api/instances", { token: admin.token, body: { name, clusterId: cluster.id, blueprint: "text-chunking", blueprintParams: { EMBED_URL: "x" } } });
    expect(extra.status).toBe(400);
    expectErrorShape(extra.body, "blueprint_param_unknown");
    expect(extra.body.error.message).toContain("EMBED_URL");
    const both = await api("POST", "/api/instances", { token: admin.token, body: { name, clusterId: cluster.id, blueprint: "text-chunking", flows: [{ id: "t", type: "tab" }] } });
    expect(both.status).toBe(400);
    expectErrorShape(both.body, "blueprint_with_flows");
    // None of these created anything.
    expect(await withDb((db) => db.select().from(instances).where(eq(instances.name, name)))).toEqual([]);
    // Given through env, the required parameter is there.
    const ok = await api("POST", "/api/instances", { token: admin.token, body: { name, clusterId: cluster.id, blueprint: "voting", env: { VOTING_PARTICIPANTS: "a,b,c" } } });
    expect(ok.status).toBe(201);
    expect(ok.body.flows).toEqual(votingFlow);
  });

  it("a viewer may list blueprints but not create an instance from one", async () => {
    const res = await api("POST", "/api/instances", { token: viewer.token, body: { name: unique("bp"), clusterId: cluster.id, blueprint: "text-chunking" } });
    expect(res.status).toBe(403);
  });

  it("a deployment from a blueprint records its flows as the new version; missing parameters and unknown blueprints are refused", async () => {
    const inst = (await api("POST", "/api/instances", { token: admin.token, body: { name: unique("bp"), clusterId: cluster.id } })).body;
    const text = JSON.stringify({ type: "instance.status", instanceId: inst.id, state: "running" });
    const hook = await api("POST", `/api/webhooks/clusters/${cluster.id}`, { raw: text, headers: { ...(await webhookHeaders(cluster.webhookSecret, text)), "Content-Type": "application/json" } });
    expect(hook.status).toBe(202);
    const unknown = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: inst.id, blueprint: "nope" } });
    expect(unknown.status).toBe(404);
    expectErrorShape(unknown.body, "blueprint_not_found");
    const missing = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: inst.id, blueprint: "refinement" } });
    expect(missing.status).toBe(400);
    expectErrorShape(missing.body, "blueprint_param_missing");
    expect(missing.body.error.details.missing).toEqual(["REFINE_CRITIC", "REFINE_GENERATOR"]);
    const both = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: inst.id, blueprint: "text-chunking", flows: [] } });
    expect(both.status).toBe(400);
    const res = await api("POST", "/api/deployments", { token: admin.token, body: { instanceId: inst.id, blueprint: "text-chunking" } });
    expect(res.status).toBe(202);
    const [to] = await withDb((db) => db.select().from(flowVersions).where(eq(flowVersions.id, res.body.toVersionId)));
    expect(to!.flows).toEqual(chunkingFlow);
  });
});
