/**
 * The RAG pipeline's caller over the cluster's MQTT bus (docs/agents.md "RAG
 * pipeline over MQTT"): publishes the first stage's msg_input to the ingest
 * instance's topic (protocol/mqtt.ts `mqttTopics.ingest`) with the whole
 * route in `metadata.pipeline`; the instances' rag-stage-<role> flows pass it
 * on to each other and the last stage (or the first that fails) publishes its
 * msg_output to this caller's reply topic. The HTTP twin is ragClient.mts.
 */
import { connectAsync, type MqttClient } from "mqtt";
import { mqttTopics } from "../../protocol/mqtt.ts";
import { PIPELINE_REPLY_TEMPLATE, type RagStage } from "./ragStages.mts";

/** Instance ids of each role; `embed` may list several, used round-robin per document. */
export interface RagInstances {
  ingest: string;
  embed: string[];
  store: string;
  answer: string;
}

export interface StageHop { stage: RagStage; instance: string; received: number; answered: number }

export interface PipelineReply {
  flowId: string;
  /** The last stage's (or the failed stage's) msg_output. */
  output: any;
  /** Each hop in order, with its instance and when it received and answered (ms since the epoch, its clock). */
  trail: StageHop[];
  ms: number;
}

export class RagPipelineError extends Error {
  constructor(readonly reply: PipelineReply) {
    const at = reply.output?.metadata?.pipeline;
    super(`RAG pipeline ${reply.flowId} failed at ${at?.stage} (${at?.instance}): ${JSON.stringify(reply.output?.error)}`);
  }
}

export const pipelineReplyTopic = (callerId: string) => {
  if (!/^[^/+#\u0000]{1,128}$/.test(callerId)) throw new Error(`not a valid MQTT topic level: ${JSON.stringify(callerId)}`);
  return PIPELINE_REPLY_TEMPLATE.replace("{caller}", callerId);
};

export class RagMqttClient {
  private readonly waiting = new Map<string, { resolve: (r: PipelineReply) => void; started: number }>();
  private turn = 0;

  private constructor(private readonly client: MqttClient, readonly replyTo: string) {
    client.on("message", (topic, payload) => {
      if (topic !== replyTo) return;
      let out: any;
      try { out = JSON.parse(payload.toString()); } catch { return; }
      const flowId = out?.metadata?.flowId;
      const w = this.waiting.get(flowId);
      if (!w) return; // another caller's, or a duplicate (QoS 1 may deliver twice)
      this.waiting.delete(flowId);
      w.resolve({ flowId, output: out, trail: out.metadata.pipeline?.trail ?? [], ms: performance.now() - w.started });
    });
  }

  /** Connects (MQTT 3.1.1: the development broker refuses v5) and subscribes to this caller's reply topic. */
  static async connect(url: string, callerId = `rag-${crypto.randomUUID().slice(0, 8)}`): Promise<RagMqttClient> {
    const client = await connectAsync(url, { protocolVersion: 4, clientId: `${callerId}-${process.pid}`, clean: true, reconnectPeriod: 1000 });
    const replyTo = pipelineReplyTopic(callerId);
    await client.subscribeAsync(replyTo, { qos: 1 });
    return new RagMqttClient(client, replyTo);
  }

  /** Sends `payload` into the pipeline at `first` and resolves with the last stage's answer (rejects with RagPipelineError on an error answer). */
  async run(first: { stage: RagStage; instance: string }, next: Array<{ stage: RagStage; instance: string }>, payload: unknown,
    contentType: "text" | "json" | "binary", config?: Record<string, unknown>, flowId = `rag-${crypto.randomUUID()}`, timeoutMs = 120_000): Promise<PipelineReply> {
    const msg = {
      payload,
      metadata: { flowId, timestamp: new Date().toISOString(), source: "rag-pipeline", contentType, pipeline: { stage: first.stage, next, replyTo: this.replyTo, trail: [] } },
      ...(config ? { config } : {}),
    };
    const reply = new Promise<PipelineReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(flowId);
        reject(new Error(`RAG pipeline ${flowId}: no reply on ${this.replyTo} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(flowId, { started: performance.now(), resolve: (r) => { clearTimeout(timer); resolve(r); } });
    });
    await this.client.publishAsync(mqttTopics.ingest(first.instance), JSON.stringify(msg), { qos: 1 });
    const r = await reply;
    if (r.output?.metadata?.status !== "success") throw new RagPipelineError(r);
    return r;
  }

  /** A document (text, or bytes as base64) → convert → chunk → embed (round-robin over `embed`) → store in `collection`. */
  async ingest(inst: RagInstances, doc: { text?: string; base64?: string }, collection: string, flowId?: string) {
    const embed = inst.embed[this.turn++ % inst.embed.length]!;
    const r = await this.run({ stage: "convert", instance: inst.ingest },
      [{ stage: "chunk", instance: inst.ingest }, { stage: "embed", instance: embed }, { stage: "store", instance: inst.store }],
      doc.base64 ?? doc.text ?? "", doc.base64 !== undefined ? "binary" : "text", { collection }, flowId);
    return { ...r, stored: r.output.payload as { collection: string; upserted: number; ids: string[] } };
  }

  /** A question → retrieve from `collection` → respond with the retrieved chunks as context. */
  async query(inst: RagInstances, question: string, collection: string, flowId?: string) {
    const r = await this.run({ stage: "retrieve", instance: inst.store }, [{ stage: "respond", instance: inst.answer }], { query: question, collection }, "json", undefined, flowId);
    return { ...r, answer: r.output.payload as { answer: string; model: string } };
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}
