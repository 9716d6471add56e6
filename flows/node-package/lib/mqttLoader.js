/**
 * mqtt.js for code running inside Node-RED. This package ships without
 * node_modules (it is installed offline from a tarball), so it borrows the
 * copy Node-RED itself depends on for its MQTT nodes.
 */
"use strict";

function loadMqtt() {
  const paths = [require.main && require.main.path, process.cwd(), __dirname].filter(Boolean);
  return require(require.resolve("mqtt", { paths }));
}

module.exports = { loadMqtt };
