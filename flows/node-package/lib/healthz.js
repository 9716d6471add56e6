/**
 * GET /healthz on the instance's HTTP-node server: 200 while the runtime's
 * flows are running, 503 otherwise. The bridge probes it to tell "the admin
 * API answers" (live) from "the flows actually run" (ready): Node-RED's own
 * /flows/state says "start" even when flows wait for a missing node type.
 */
"use strict";

/**
 * Works out whether flows are running right now. Needed when this package is
 * hot-loaded (POST /nodes) into a runtime whose flows started before we could
 * listen for events: a configured node that has a live instance means the
 * flows are running. Before the first flows load, eachNode throws: stopped.
 */
function probeFlowsStarted(RED) {
  const all = [];
  try {
    RED.nodes.eachNode((n) => all.push(n));
  } catch {
    return false;
  }
  // Only nodes the runtime instantiates under their own id: on an enabled tab
  // (not inside a subflow template), not disabled, not a group or junction.
  const enabledTabs = new Set(all.filter((n) => n.type === "tab" && !n.disabled).map((n) => n.id));
  const candidates = all.filter((n) => enabledTabs.has(n.z) && !n.d && n.type !== "group" && n.type !== "junction");
  if (candidates.length > 0) return candidates.some((n) => Boolean(RED.nodes.getNode(n.id)));
  // Nothing to instantiate: the flows are as started as the runtime says.
  try {
    return RED.settings.get("runtimeFlowState") !== "stop";
  } catch {
    return true;
  }
}

function nodeRedVersion(RED) {
  try {
    return typeof RED.version === "function" ? RED.version() : undefined;
  } catch {
    return undefined;
  }
}

function registerHealthz(RED) {
  const state = { started: probeFlowsStarted(RED), since: new Date().toISOString() };
  const set = (started) => {
    state.started = started;
    state.since = new Date().toISOString();
  };
  RED.events.on("flows:started", () => set(true));
  RED.events.on("flows:stopped", () => set(false));

  if (!RED.httpNode) {
    RED.log.warn("[redforge] httpNodeRoot is disabled: /healthz is not served");
    return state;
  }
  RED.httpNode.get("/healthz", (_req, res) => {
    res.set("Cache-Control", "no-store");
    const flows = state.started ? "started" : "stopped";
    // nodeRed: which runtime answered (its stack), e.g. after a runtime upgrade; "-git" is appended by Node-RED inside a git checkout.
    res.status(state.started ? 200 : 503).json({ status: state.started ? "ok" : "unavailable", flows, since: state.since, nodeRed: nodeRedVersion(RED) });
  });
  return state;
}

module.exports = { registerHealthz, probeFlowsStarted };
