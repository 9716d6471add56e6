/**
 * Entry point Node-RED loads for this package (package.json "node-red").
 * Besides the redforge-gate node type it installs the package's runtime
 * support: GET /healthz.
 */
"use strict";

const { registerHealthz } = require("../lib/healthz.js");

module.exports = function (RED) {
  registerHealthz(RED);

  /**
   * Placeholder for the deploy gate (active: pass, drain: hold). Until the
   * gate lands it passes every message through unchanged, so flows can be
   * wired with it already.
   */
  function RedforgeGateNode(config) {
    RED.nodes.createNode(this, config);
    this.status({ fill: "green", shape: "dot", text: "pass-through" });
    this.on("input", (msg, send, done) => {
      send(msg);
      done();
    });
  }
  RED.nodes.registerType("redforge-gate", RedforgeGateNode);
};
