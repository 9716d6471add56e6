/**
 * Writes lib/agents.generated.js, the node package's copy of the agent
 * message contract's enums and DLQ topic (protocol/agents/messageContract.ts),
 * as plain CommonJS data (Node-RED require()s the package; it cannot import
 * TypeScript). test/unit/agents-contract.test.ts fails when the file is stale.
 *
 *   npx tsx flows/node-package/scripts/generate-agents-contract.mts
 */
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { AGENT_ERROR_CODES, CONTENT_TYPES, DLQ_TOPIC_TEMPLATE, MESSAGE_STATUSES } from "../../../protocol/agents/messageContract.ts";

export const AGENTS_CONTRACT_FILE = fileURLToPath(new URL("../lib/agents.generated.js", import.meta.url));

export function renderAgentsContract(): string {
  const data = { CONTENT_TYPES, MESSAGE_STATUSES, AGENT_ERROR_CODES, DLQ_TOPIC_TEMPLATE };
  const constants = Object.entries(data).map(([k, v]) => `const ${k} = ${typeof v === "object" ? `Object.freeze(${JSON.stringify(v)})` : JSON.stringify(v)};`).join("\n");
  return `// GENERATED from protocol/agents/messageContract.ts by flows/node-package/scripts/generate-agents-contract.mts. Do not edit.
"use strict";

${constants}

module.exports = { ${Object.keys(data).join(", ")} };
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await fs.writeFile(AGENTS_CONTRACT_FILE, renderAgentsContract());
  process.stdout.write(`wrote ${path.relative(process.cwd(), AGENTS_CONTRACT_FILE)}\n`);
}
