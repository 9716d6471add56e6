/**
 * Writes the published JSON Schemas of the agent message contract
 * (msg_input.schema.json, msg_output.schema.json) from messageContract.ts.
 * zod's JSON Schema output cannot express "error is present exactly when
 * status is error" (a refinement), so that rule is added here as if/then.
 *
 *   npx tsx protocol/agents/generateSchemas.mts
 */
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { z } from "zod";
import { msgInputSchema, msgOutputSchema } from "./messageContract.ts";

export const SCHEMA_FILES = {
  msg_input: fileURLToPath(new URL("./msg_input.schema.json", import.meta.url)),
  msg_output: fileURLToPath(new URL("./msg_output.schema.json", import.meta.url)),
} as const;

const ERROR_WHEN_STATUS_ERROR = [
  {
    if: { properties: { metadata: { properties: { status: { const: "error" } }, required: ["status"] } } },
    then: { properties: { error: { type: "object" } } },
    else: { properties: { error: { type: "null" } } },
  },
];

export function renderSchemas(): Record<keyof typeof SCHEMA_FILES, string> {
  const render = (name: string, schema: z.ZodType, extra: Record<string, unknown>) => {
    const json = z.toJSONSchema(schema, { target: "draft-2020-12", io: "input", unrepresentable: "any" }) as Record<string, unknown>;
    const out = { $id: `https://redforge.dev/schemas/agents/${name}.json`, ...json, ...extra };
    return `${JSON.stringify(out, null, 2)}\n`;
  };
  return {
    msg_input: render("msg_input", msgInputSchema, { required: ["payload", "metadata"] }),
    msg_output: render("msg_output", msgOutputSchema, { required: ["payload", "metadata", "error"], allOf: ERROR_WHEN_STATUS_ERROR }),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const rendered = renderSchemas();
  for (const [name, file] of Object.entries(SCHEMA_FILES)) {
    await fs.writeFile(file, rendered[name as keyof typeof SCHEMA_FILES]);
    process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
  }
}
