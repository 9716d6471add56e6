/**
 * The instance's approved-model policy at run time. The bridge fetches each
 * instance's effective `approved_models` policies from the control plane and
 * publishes them, retained, on MQTT `redforge/policy/models/{instanceId}`
 * (bridge/modelPolicySync.ts); this module keeps the latest one per process.
 *
 * decide() mirrors core/governance/policies.ts evaluateModelPolicy: every
 * covering policy must list the model (and, when it lists providers, the provider).
 */
"use strict";

const { connectMqtt } = require("./mqttClient.js");

const POLICY_TOPIC_PREFIX = "redforge/policy/models/";

/** { allowed: true } or { allowed: false, policy, reason }. */
function decide(policies, call) {
  for (const p of policies || []) {
    const models = Array.isArray(p.models) ? p.models : [];
    if (!models.includes(call.model)) {
      return { allowed: false, policy: p.name, reason: `model ${call.model} is not on the approved list of policy ${p.name} (${models.join(", ")})` };
    }
    if (Array.isArray(p.providers) && !(call.provider && p.providers.includes(call.provider))) {
      return { allowed: false, policy: p.name, reason: `provider ${call.provider || "(none given)"} is not approved by policy ${p.name} (${p.providers.join(", ")})` };
    }
  }
  return { allowed: true };
}

// One subscription per Node-RED process; it outlives redeploys, so the retained policy stays known.
let shared;

/** null outside a RedForge-managed instance (no REDFORGE_INSTANCE_ID / REDFORGE_MQTT_URL). */
function policyWatch(log) {
  const instanceId = process.env.REDFORGE_INSTANCE_ID;
  const url = process.env.REDFORGE_MQTT_URL;
  if (!instanceId || !url) return null;
  if (shared) return shared;
  const topic = POLICY_TOPIC_PREFIX + instanceId;
  const waiters = [];
  const state = { instanceId, topic, current: undefined, waitedOnce: false };
  const client = connectMqtt(url, `redforge-policy-${instanceId}-${process.pid}`, { clean: true });
  client.on("error", (err) => log(`[redforge-model-policy] mqtt: ${err.message}`));
  client.on("connect", () => client.subscribe(topic, { qos: 1 }));
  client.on("message", (t, payload) => {
    if (t !== topic) return;
    try {
      const parsed = JSON.parse(payload.toString("utf8"));
      if (!parsed || !Array.isArray(parsed.policies)) throw new Error("no policies array");
      state.current = parsed;
      for (const w of waiters.splice(0)) w();
    } catch (err) {
      log(`[redforge-model-policy] ignored a policy message: ${err.message}`);
    }
  });
  /** Resolves with the current policy set, waiting up to `ms` for the first one (undefined when none came). */
  state.get = (ms) => {
    if (state.current || ms <= 0) return Promise.resolve(state.current);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(state.current), ms);
      waiters.push(() => { clearTimeout(timer); resolve(state.current); });
    });
  };
  shared = state;
  return shared;
}

module.exports = { decide, policyWatch, POLICY_TOPIC_PREFIX };
