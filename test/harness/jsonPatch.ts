/** RFC 7386 (JSON merge patch) and a minimal RFC 6902 (JSON Patch), for the fake Kubernetes API. */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Objects merge key by key, null deletes, anything else (arrays included) replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return clone(patch);
  const out: { [k: string]: Json } = target && typeof target === "object" && !Array.isArray(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

/** add / replace / remove on object paths: enough for the fake, not a full RFC 6902. */
export function applyJsonPatch(target: Json, ops: unknown[]): Json {
  const doc = clone(target) as { [k: string]: Json };
  for (const raw of ops) {
    const op = raw as { op?: string; path?: string; value?: Json };
    const parts = (op.path ?? "").split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    const last = parts.pop();
    if (last === undefined) throw new Error(`bad JSON Patch path ${op.path}`);
    let node: { [k: string]: Json } = doc;
    for (const p of parts) {
      const next = node[p];
      if (!next || typeof next !== "object") throw new Error(`JSON Patch path ${op.path} does not exist`);
      node = next as { [k: string]: Json };
    }
    if (op.op === "remove") delete node[last];
    else if (op.op === "add" || op.op === "replace") node[last] = clone(op.value ?? null);
    else throw new Error(`JSON Patch op ${op.op} not supported by the fake`);
  }
  return doc;
}

/** Deep equality that ignores key order, as the API server compares decoded objects. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return v;
}
