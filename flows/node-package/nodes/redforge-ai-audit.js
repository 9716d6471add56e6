/**
 * redforge-ai-audit: reports one LLM call per message to RedForge. It reads
 * the call's record from msg.aiDecision (or the configured property),
 * publishes it as JSON to `redforge/audit/{instanceId}` (QoS 1) on the
 * cluster's MQTT bus, and passes the message on unchanged. The bridge batches
 * these into signed webhooks; the control plane prices and stores them.
 *
 * Environment (set by the RedForge bridge): REDFORGE_INSTANCE_ID, REDFORGE_MQTT_URL.
 */
"use strict";

const { connectMqtt } = require("../lib/mqttClient.js");
const { buildRecord } = require("../lib/aiAuditRecord.js");
const { topicsOf } = require("../lib/contract.generated.js");

// One connection per Node-RED process, shared by every audit node in every flow;
// it survives redeploys (a full deploy would otherwise drop what is still queued).
let shared;

function auditClient(RED) {
  const instanceId = process.env.REDFORGE_INSTANCE_ID;
  const url = process.env.REDFORGE_MQTT_URL;
  if (!instanceId || !url) return null;
  if (!shared) {
    const client = connectMqtt(url, `redforge-audit-${instanceId}-${process.pid}`, { clean: true });
    client.on("error", (err) => RED.log.warn(`[redforge-ai-audit] mqtt: ${err.message}`));
    shared = { client, instanceId, topic: topicsOf(instanceId, instanceId).audit };
  }
  return shared;
}

function flowSetting(RED, node, name) {
  try {
    return RED.util.getSetting(node, name) || undefined;
  } catch {
    return undefined;
  }
}

module.exports = function (RED) {
  function RedforgeAiAuditNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const property = config.property || "aiDecision";
    const audit = auditClient(RED);
    if (!audit) {
      node.status({ fill: "grey", shape: "ring", text: "not managed by RedForge" });
    } else {
      const show = () => node.status(audit.client.connected
        ? { fill: "green", shape: "dot", text: "reporting" }
        : { fill: "yellow", shape: "ring", text: "connecting (records queue)" });
      show();
      audit.client.on("connect", show);
      audit.client.on("offline", show);
      node.on("close", () => {
        audit.client.removeListener("connect", show);
        audit.client.removeListener("offline", show);
      });
    }

    node.on("input", (msg, send, done) => {
      if (!audit) {
        send(msg);
        return done();
      }
      const built = buildRecord(RED.util.getMessageProperty(msg, property), {
        instanceId: audit.instanceId,
        flowName: flowSetting(RED, node, "NR_FLOW_NAME"),
        flowId: flowSetting(RED, node, "NR_FLOW_ID") || node.z,
      });
      if (built.error) {
        send(msg);
        return done(new Error(`not reported: ${built.error}`));
      }
      // mqtt.js holds QoS 1 publishes made while offline and sends them on reconnect;
      // the message goes on without waiting for the broker, so a slow bus never stalls the flow.
      audit.client.publish(audit.topic, JSON.stringify(built.record), { qos: 1 }, (err) => {
        if (err) node.error(`AI decision not reported: ${err.message}`, msg);
      });
      send(msg);
      done();
    });
  }
  RED.nodes.registerType("redforge-ai-audit", RedforgeAiAuditNode);
};
