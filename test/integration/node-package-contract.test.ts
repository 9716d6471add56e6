/**
 * The node package (CommonJS inside Node-RED) and the bridge speak the same
 * MQTT contract: its generated copy is current, and the gate's own topic and
 * marker helpers give what the bridge's protocol/mqtt.ts gives.
 */
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { CONTRACT_FILE, renderContract } from "../../flows/node-package/scripts/generate-contract.mts";
import { AUDIT_TOPIC_FILTER, endOfHoldMarker, GATE_MODES, mqttTopics, parseEndOfHold } from "../../protocol/mqtt.ts";

const require = createRequire(import.meta.url);

describe("the node package's MQTT contract", () => {
  it("lib/contract.generated.js is what the generator writes from protocol/mqtt.ts now", async () => {
    expect(await fs.readFile(CONTRACT_FILE, "utf8"), "stale: run npx tsx flows/node-package/scripts/generate-contract.mts").toBe(renderContract());
  });

  it("gives the same topics, modes and end-of-hold marker as the bridge", () => {
    const contract = require(CONTRACT_FILE) as {
      topicsOf: (instanceId: string, runtimeId: string) => Record<string, string>;
      isEndOfHold: (payload: Buffer | string) => boolean;
      GATE_MODES: readonly string[];
      AUDIT_TOPIC_FILTER: string;
    };
    const instance = "0b7c6f2e-9d7a-4a51-a7a4-1c2f3e4d5a6b";
    const runtime = `${instance}.b`;
    expect(contract.topicsOf(instance, runtime)).toEqual({
      control: mqttTopics.control(runtime),
      status: mqttTopics.status(runtime),
      active: mqttTopics.active(runtime),
      hold: mqttTopics.hold(instance),
      audit: mqttTopics.audit(instance),
    });
    expect(contract.topicsOf(instance, runtime).active).toBe(`redforge/active/${runtime}`);
    expect([...contract.GATE_MODES]).toEqual([...GATE_MODES]);
    expect(contract.AUDIT_TOPIC_FILTER).toBe(AUDIT_TOPIC_FILTER);

    const marker = endOfHoldMarker("tok-1");
    expect(parseEndOfHold(Buffer.from(marker))).toBe("tok-1");
    expect(contract.isEndOfHold(Buffer.from(marker))).toBe(true);
    for (const work of ['{"$redforge":"end-of-hold"}', '{"n":1}', "not json", JSON.stringify({ $redforge: "end-of-hold", token: "x", pad: "y".repeat(300) })]) {
      expect(contract.isEndOfHold(Buffer.from(work)), work.slice(0, 40)).toBe(false);
      expect(parseEndOfHold(Buffer.from(work)), work.slice(0, 40)).toBeUndefined();
    }
  });

  it("topic builders refuse ids that would address other topics", () => {
    expect(() => mqttTopics.hold("a/b")).toThrow(/topic level/);
    expect(() => mqttTopics.active("+")).toThrow(/topic level/);
  });
});
