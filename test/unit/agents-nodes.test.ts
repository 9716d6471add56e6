/**
 * The agent nodes of the node package (nodes/redforge-agents.js) on a small
 * fake of Node-RED's node API: what each sends on which output, and the dead
 * letter on a real (in-process) MQTT broker. The same nodes run in real
 * Node-RED in test/integration/agents-primitives.test.ts.
 */
import { createRequire } from "node:module";
import { connectAsync } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testBroker, type TestBroker } from "../harness/zeroLoss.ts";

const require = createRequire(import.meta.url);
const registerAgents = require("../../flows/node-package/nodes/redforge-agents.js") as (red: unknown) => void;

type Handler = (msg: any, send: (out: unknown) => void, done: (err?: Error) => void) => void;
interface FakeNode { z: string; handlers: Record<string, Handler>; statuses: unknown[]; warnings: string[]; errors: string[] }

const types = new Map<string, (this: any, config: Record<string, unknown>) => void>();
const red = {
  nodes: {
    registerType: (name: string, ctor: (this: any, config: Record<string, unknown>) => void) => types.set(name, ctor),
    createNode: (node: any) => {
      Object.assign(node, { z: "tab-1", handlers: {}, statuses: [], warnings: [], errors: [] });
      node.on = (event: string, h: Handler) => { node.handlers[event] = h; };
      node.status = (s: unknown) => node.statuses.push(s);
      node.warn = (w: string) => node.warnings.push(w);
      node.error = (e: string) => node.errors.push(e);
    },
  },
  log: { warn: () => undefined },
};

function node(type: string, config: Record<string, unknown> = {}): FakeNode {
  const n = {} as FakeNode;
  types.get(type)!.call(n, config);
  return n;
}

/** Sends one message through a node: what it sent and what it passed to done(). */
function input(n: FakeNode, msg: any): { sent: any; err?: Error } {
  let sent: unknown;
  let err: Error | undefined;
  n.handlers.input!(msg, (out) => { sent = out; }, (e) => { err = e; });
  return { sent, ...(err ? { err } : {}) };
}

const msgInput = { payload: "One. Two.", metadata: { flowId: "wf-1", timestamp: "2026-12-02T10:00:00Z" }, config: { chunkSize: 5, chunkOverlap: 0 } };

let broker: TestBroker;
beforeAll(async () => {
  broker = await testBroker();
  process.env.REDFORGE_INSTANCE_ID = "inst-nodes-test";
  process.env.REDFORGE_MQTT_URL = broker.url;
  registerAgents(red);
});
afterAll(async () => {
  delete process.env.REDFORGE_INSTANCE_ID;
  delete process.env.REDFORGE_MQTT_URL;
  await broker?.close();
});

describe("redforge-message", () => {
  it("read msg_input: the payload on output 1 with msg.agent; a broken message on output 2 as a ready 400 answer", () => {
    const n = node("redforge-message", { mode: "input", source: "text-chunking" });
    const ok = input(n, { payload: structuredClone(msgInput) }).sent;
    expect(ok[1]).toBeNull();
    expect(ok[0]).toMatchObject({ payload: "One. Two.", agent: { flowId: "wf-1", config: { chunkSize: 5 }, error: null } });
    const bad = input(n, { payload: { payload: 1, metadata: { flowId: "wf-2" } } }).sent;
    expect(bad[0]).toBeNull();
    expect(bad[1]).toMatchObject({
      statusCode: 400, headers: { "content-type": "application/json" },
      payload: { payload: null, metadata: { flowId: "wf-2", source: "text-chunking", status: "error" }, error: { code: "invalid_input", message: expect.stringMatching(/timestamp/) } },
    });
  });

  it("build msg_output: success, or the error in msg.agent with its HTTP status; the model's response headers are replaced", () => {
    const n = node("redforge-message", { mode: "output", source: "embeddings", contentType: "json" });
    const ok = input(n, { payload: [1], agent: { flowId: "wf-1", config: {}, error: null }, headers: { "content-length": "999" } }).sent;
    expect(ok).toMatchObject({ statusCode: 200, headers: { "content-type": "application/json" }, payload: { payload: [1], metadata: { flowId: "wf-1", source: "embeddings", status: "success" }, error: null } });
    expect(ok.headers["content-length"]).toBeUndefined();
    const failed = input(n, { payload: "x", agent: { flowId: "wf-1", error: { code: "model_unavailable", message: "down", attempts: 3 } } }).sent;
    expect(failed).toMatchObject({ statusCode: 503, payload: { payload: null, metadata: { status: "error" }, error: { code: "model_unavailable", attempts: 3 } } });
  });
});

describe("redforge-chunk", () => {
  it("chunks with the node's size, overridden by msg.agent.config", () => {
    const n = node("redforge-chunk", { size: "${CHUNK_SIZE}", overlap: "" }); // an unset env var substitutes to ""
    expect(input(n, { payload: "One. Two." }).sent.payload).toEqual([{ index: 0, text: "One. Two.", start: 0, end: 9 }]);
    const small = input(n, { payload: "One. Two.", agent: { config: { chunkSize: 5, chunkOverlap: 0 } } }).sent;
    expect(small.payload.map((c: { text: string }) => c.text)).toEqual(["One.", "Two."]);
  });

  it("inside a primitive a bad input becomes msg.agent.error; elsewhere a catchable error", () => {
    const n = node("redforge-chunk", { size: "100", overlap: "10" });
    const inside = input(n, { payload: 42, agent: { config: {} } });
    expect(inside.err).toBeUndefined();
    expect(inside.sent.agent.error).toMatchObject({ code: "invalid_input" });
    const outside = input(n, { payload: 42 });
    expect(outside.sent).toBeUndefined();
    expect(outside.err).toBeInstanceOf(TypeError);
  });
});

describe("redforge-dlq", () => {
  it("publishes the dead letter to redforge/dlq/{instance} at QoS 1 and passes the message on", async () => {
    const consumer = await connectAsync(broker.url, { protocolVersion: 4, clientId: "dlq-consumer" });
    try {
      const got = new Promise<any>((resolve) => consumer.on("message", (topic, payload) => resolve({ topic, letter: JSON.parse(payload.toString()) })));
      await consumer.subscribeAsync("redforge/dlq/+", { qos: 1 });
      const n = node("redforge-dlq", { source: "embeddings" });
      const msg = { payload: null, agent: { flowId: "wf-9", input: msgInput, error: { code: "model_unavailable", message: "down", attempts: 3 } } };
      expect(input(n, msg).sent).toBe(msg);
      expect(await got).toMatchObject({
        topic: "redforge/dlq/inst-nodes-test",
        letter: { instanceId: "inst-nodes-test", flowId: "wf-9", primitive: "embeddings", nodeRedFlow: "tab-1", error: { code: "model_unavailable" }, input: msgInput, failedAt: expect.any(String) },
      });
    } finally {
      await consumer.endAsync();
    }
  });
});
