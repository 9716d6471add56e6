// GENERATED from protocol/mqtt.ts by flows/node-package/scripts/generate-contract.mts. Do not edit.
"use strict";

const TOPIC_TEMPLATES = Object.freeze({
  "ingest": "redforge/ingest/{instance}",
  "active": "redforge/active/{runtime}",
  "hold": "redforge/hold/{instance}",
  "control": "redforge/control/{runtime}",
  "status": "redforge/status/{runtime}",
  "audit": "redforge/audit/{instance}"
});
const AUDIT_TOPIC_FILTER = "redforge/audit/+";
const MARKER_KEY = "$redforge";
const END_OF_HOLD = "end-of-hold";
const MARKER_MAX_BYTES = 200;
const GATE_MODES = Object.freeze([
  "active",
  "drain",
  "retire"
]);

function fill(name, id) {
  return TOPIC_TEMPLATES[name].replace(/\{(instance|runtime)\}/, String(id));
}

/** Topics of one runtime (blue or green) of one instance. */
function topicsOf(instanceId, runtimeId) {
  return {
    control: fill("control", runtimeId),
    status: fill("status", runtimeId),
    active: fill("active", runtimeId),
    hold: fill("hold", instanceId),
    audit: fill("audit", instanceId),
  };
}

/** True for the bridge's end-of-hold marker (a Buffer or string payload). */
function isEndOfHold(payload) {
  if (Buffer.byteLength(payload) > MARKER_MAX_BYTES) return false;
  try {
    const v = JSON.parse(payload.toString());
    return Boolean(v && typeof v === "object" && v[MARKER_KEY] === END_OF_HOLD && typeof v.token === "string");
  } catch {
    return false;
  }
}

module.exports = { TOPIC_TEMPLATES, AUDIT_TOPIC_FILTER, MARKER_KEY, END_OF_HOLD, MARKER_MAX_BYTES, GATE_MODES, topicsOf, isEndOfHold };
