/**
 * Entry point Node-RED loads for this package (package.json "node-red").
 * Registers the deploy gate and installs the package's runtime support:
 * GET /healthz and the gate's admin route (GET/POST /redforge/gate).
 */
"use strict";

const { registerHealthz } = require("../lib/healthz.js");
const { gateRuntime } = require("../lib/gateRuntime.js");

module.exports = function (RED) {
  registerHealthz(RED);
  const runtime = gateRuntime(RED);

  /**
   * Place at the entry of a flow. Input messages (HTTP-in or anything else)
   * pass while the gate is active and wait while it drains; with source
   * "mqtt" the gate also emits the work RedForge routes to this instance.
   */
  function RedforgeGateNode(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    runtime.register(node, {
      source: config.source === "mqtt" ? "mqtt" : "input",
      ttlMs: Number(config.ttl) > 0 ? Number(config.ttl) * 1000 : 0,
      holdLimit: Number(config.holdLimit) > 0 ? Number(config.holdLimit) : 0,
    });
    const show = () => {
      const s = runtime.status();
      node.status(s.mode === "active"
        ? { fill: "green", shape: "dot", text: `active · ${s.inFlight} in flight` }
        : { fill: "yellow", shape: "ring", text: `draining · ${s.inFlight} in flight · ${s.heldHttp} held` });
    };
    show();
    const timer = setInterval(show, 1000);
    node.on("input", (msg, send, done) => {
      runtime.input(node, msg, send);
      done();
    });
    node.on("close", (_removed, done) => {
      clearInterval(timer);
      runtime.unregister(node);
      done();
    });
  }
  RED.nodes.registerType("redforge-gate", RedforgeGateNode);

  /** Place where a message's work is finished (before http response / mqtt out): closes it in the gate's count. */
  function RedforgeExitNode(config) {
    RED.nodes.createNode(this, config);
    this.on("input", (msg, send, done) => {
      runtime.exit(msg, this);
      send(msg);
      done();
    });
  }
  RED.nodes.registerType("redforge-exit", RedforgeExitNode);
};
