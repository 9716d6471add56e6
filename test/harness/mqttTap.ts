/**
 * A diagnostic tap on the bus (FAULT_TAP=1 in the fault harness): records, per
 * load sequence number, every topic on which it was seen (ingest, active/<runtime>,
 * hold, results) with the time, so a lost message can be followed to the last hop
 * that carried it. QoS 1 on a clean session: the tap itself misses nothing while
 * it is connected (the broker is not killed by any fault).
 */
import { connectAsync, type MqttClient } from "mqtt";

export interface TapHit { topic: string; at: number }

export class MqttTap {
  private client?: MqttClient;
  readonly seen = new Map<string, TapHit[]>();

  async start(url: string): Promise<void> {
    this.client = await connectAsync(url, { protocolVersion: 4, clean: true });
    this.client.on("message", (topic, payload) => {
      let seq: unknown;
      try {
        const v = JSON.parse(payload.toString()) as { seq?: unknown; payload?: { seq?: unknown } };
        seq = v.seq ?? v.payload?.seq;
      } catch { return; }
      if (typeof seq !== "string") return;
      const list = this.seen.get(seq) ?? [];
      list.push({ topic: shortTopic(topic), at: Date.now() });
      this.seen.set(seq, list);
    });
    await this.client.subscribeAsync(["redforge/ingest/+", "redforge/active/+", "redforge/hold/+", "zeroloss/results"], { qos: 1 });
  }

  /** For each lost seq, its path (topics in order, ms relative to `t0`), grouped by path shape. */
  explain(lost: string[], t0: number): string[] {
    const shapes = new Map<string, string[]>();
    for (const seq of lost) {
      const hits = this.seen.get(seq) ?? [];
      const shape = hits.map((h) => h.topic).join(" > ") || "(never seen on the bus)";
      const list = shapes.get(shape) ?? [];
      list.push(`${seq}@${hits.map((h) => h.at - t0).join("/") || "?"}`);
      shapes.set(shape, list);
    }
    return [...shapes].map(([shape, seqs]) => `${seqs.length}× ${shape}: ${seqs.slice(0, 6).join(", ")}${seqs.length > 6 ? " …" : ""}`);
  }

  async stop(): Promise<void> {
    await this.client?.endAsync();
  }
}

function shortTopic(topic: string): string {
  if (topic === "zeroloss/results") return "result";
  const [, kind, id] = topic.split("/");
  // Slot a is the instance id, slot b the id + ".b"; any other runtime id (a topic nobody serves) is shown by its tail.
  if (kind !== "active") return kind ?? topic;
  return id && /^[0-9a-f-]{36}(\.b)?$/.test(id) ? `active:${id.endsWith(".b") ? "b" : "a"}` : `active:?${topic.slice(-12)}`;
}
