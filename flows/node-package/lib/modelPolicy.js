/**
 * The instance's approved-model policy at run time. The bridge fetches each
 * instance's effective `approved_models` policies from the control plane and
 * publishes them, retained, on MQTT `redforge/policy/models/{instanceId}`
 * (bridge/modelPolicySync.ts); this module keeps the latest one per process.
 *
 * decide() mirrors core/governance/policies.ts evaluateModelPolicy: every
 * covering policy must list the model (and, when it lists providers, the provider).
 *
 * A list is good until its `expiresAt` (the bridge sets it from the control
 * plane's maxAgeSeconds and republishes well before): a bridge that lost the
 * control plane, or is gone, leaves a retained list that runs out, and then
 * every model call is refused `model_policy_stale` (fail closed) until a fresh
 * one arrives. An older bridge's message without `expiresAt` is good for
 * MODEL_POLICY_MAX_AGE_S (default 600) after its `fetchedAt`. An empty
 * retained message (the bridge withdrew the list: the control plane no longer
 * knows the instance) counts as stale too.
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

const DEFAULT_MAX_AGE_S = 600;

/**
 * undefined while `current` may be used at `now` (ms); else the reason it may
 * not. `current` is the parsed retained message, or { withdrawn: true }.
 */
function staleness(current, now, maxAgeS) {
  if (current.withdrawn) return `the RedForge bridge withdrew this instance's approved-model list at ${current.at} (the control plane no longer lists the instance)`;
  let expires = Date.parse(current.expiresAt);
  if (Number.isNaN(expires)) {
    const fetched = Date.parse(current.fetchedAt);
    const age = Number(maxAgeS) > 0 ? Number(maxAgeS) : DEFAULT_MAX_AGE_S;
    expires = Number.isNaN(fetched) ? 0 : fetched + age * 1000;
  }
  if (now <= expires) return undefined;
  return `the approved-model list for this instance expired at ${new Date(expires).toISOString()} (fetched ${current.fetchedAt || "at an unknown time"}): the RedForge bridge has not refreshed it, so model calls are refused until it does`;
}

/**
 * The verdict for one call, given what the watch holds (`current`, undefined
 * before any list arrived): { allowed: true } or { allowed: false, code, policy, reason }.
 */
function verdictFor(current, call, opts) {
  if (current) {
    const stale = staleness(current, opts.now, opts.maxAgeS);
    if (stale) return { allowed: false, code: "model_policy_stale", policy: null, reason: stale };
    const d = decide(current.policies, call);
    return d.allowed ? d : { ...d, code: "model_not_approved" };
  }
  if (opts.required) return { allowed: false, code: "model_not_approved", policy: null, reason: "no approved-model policy has reached this instance yet (is the RedForge bridge running?)" };
  return { allowed: true, unchecked: true };
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
    if (payload.length === 0) {
      // The bridge cleared the retained list: refuse rather than keep using the last one.
      if (state.current) state.current = { withdrawn: true, at: new Date().toISOString() };
      return;
    }
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

module.exports = { decide, staleness, verdictFor, policyWatch, POLICY_TOPIC_PREFIX };
