/**
 * mqtt.js for code running inside Node-RED. This package ships without
 * node_modules (it is installed offline from a tarball), so it borrows the
 * copy Node-RED itself depends on for its MQTT nodes.
 */
"use strict";

let mqtt;

function loadMqtt() {
  if (mqtt) return mqtt;
  const paths = [require.main && require.main.path, process.cwd(), __dirname].filter(Boolean);
  mqtt = require(require.resolve("mqtt", { paths }));
  return mqtt;
}

/**
 * An mqtt.js client for `url`. MQTT 3.1.1 by default: the development broker
 * (aedes) refuses v5 clients. mqtt.js queues publishes made while it is still
 * connecting or reconnecting and sends them once connected.
 */
function connectMqtt(url, clientId, opts) {
  return loadMqtt().connect(url, {
    clientId,
    protocolVersion: 4,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    ...(opts || {}),
  });
}

module.exports = { connectMqtt, loadMqtt };
