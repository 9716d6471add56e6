/**
 * The blueprint catalog the Worker serves (core/blueprints/catalog.generated.ts)
 * is generated from flows/primitives/*.json: it fails when a flow changed and
 * the catalog was not regenerated, and when a flow reads a variable the
 * generator has no description for.
 */
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { buildCatalog, CATALOG_FILE, envVarsOf, renderCatalog } from "../../flows/primitives/blueprints.mts";

describe("blueprint catalog", () => {
  it("is current: run npx tsx flows/primitives/blueprints.mts after changing a flow", () => {
    expect(fs.readFileSync(CATALOG_FILE, "utf8") === renderCatalog(), "core/blueprints/catalog.generated.ts is stale: npx tsx flows/primitives/blueprints.mts").toBe(true);
  });

  it("finds a flow's variables in node settings and in function code", () => {
    const flow = [
      { id: "a", type: "redforge-vector-store", table: "${STORE_TABLE}" },
      { id: "b", type: "function", func: "const u = env.get(\"EMBED_URL\") || 'x'; env.get('CHAT_MODEL');" },
    ];
    expect(envVarsOf(flow)).toEqual(["CHAT_MODEL", "EMBED_URL", "STORE_TABLE"]);
  });

  it("describes every variable of every flow and names the RAG pipeline's roles' blueprints", () => {
    const catalog = buildCatalog();
    for (const b of catalog) for (const p of b.params) expect(p.description.length, `${b.id} ${p.name}`).toBeGreaterThan(5);
    const rag = catalog.find((b) => b.id === "rag-pipeline") as { instances: Array<{ blueprints: string[] }> };
    const ids = new Set(catalog.map((b) => b.id));
    for (const i of rag.instances) for (const id of i.blueprints) expect(ids.has(id)).toBe(true);
  });
});
