/**
 * Writes lib/contract.generated.js, the node package's copy of the MQTT
 * contract (protocol/mqtt.ts), as CommonJS: Node-RED loads the package with
 * require() from a tarball that has no build step and no node_modules, so it
 * cannot import the TypeScript. Only data crosses over; the few helpers below
 * are the package's own, and test/integration/node-package-contract.test.ts
 * checks both that the file is current and that both sides agree on
 * topics and markers.
 *
 *   npx tsx flows/node-package/scripts/generate-contract.mts
 */
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { AUDIT_TOPIC_FILTER, END_OF_HOLD, GATE_MODES, MARKER_KEY, MARKER_MAX_BYTES, TOPIC_TEMPLATES } from "../../../protocol/mqtt.ts";

export const CONTRACT_FILE = fileURLToPath(new URL("../lib/contract.generated.js", import.meta.url));

export function renderContract(): string {
  const data = { TOPIC_TEMPLATES, AUDIT_TOPIC_FILTER, MARKER_KEY, END_OF_HOLD, MARKER_MAX_BYTES, GATE_MODES };
  const constants = Object.entries(data).map(([k, v]) => `const ${k} = ${typeof v === "object" ? `Object.freeze(${JSON.stringify(v, null, 2)})` : JSON.stringify(v)};`).join("\n");
  return `// GENERATED from protocol/mqtt.ts by flows/node-package/scripts/generate-contract.mts. Do not edit.
"use strict";

${constants}

function fill(name, id) {
  return TOPIC_TEMPLATES[name].replace(/\\{(instance|runtime)\\}/, String(id));
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

module.exports = { ${Object.keys(data).join(", ")}, topicsOf, isEndOfHold };
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await fs.writeFile(CONTRACT_FILE, renderContract());
  process.stdout.write(`wrote ${path.relative(process.cwd(), CONTRACT_FILE)}\n`);
}
