/**
 * GET /api/docs: the OpenAPI document as one self-contained HTML page,
 * rendered on the server (no script, no font, nothing fetched from elsewhere:
 * the page works on an air-gapped network, and its CSP says so).
 */
import type { OpenApiDocument } from "./document.ts";

const METHODS = ["get", "post", "put", "patch", "delete"] as const;
export const REFERENCE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'";

type Json = Record<string, any>;

const esc = (s: unknown) => String(s ?? "").replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
/** Descriptions are CommonMark in OpenAPI; inline `code` is all this page renders of it. */
const prose = (s: unknown) => esc(s).replace(/`([^`]+)`/g, "<code>$1</code>");

/** Pretty JSON with every `#/components/schemas/X` reference a link to X below. */
function schemaBlock(schema: unknown): string {
  if (!schema) return "";
  const text = esc(JSON.stringify(schema, null, 2));
  return `<pre>${text.replace(/&#34;#\/components\/schemas\/([\w.-]+)&#34;/g, (_m, name: string) => `<a href="#schema-${name}">${name}</a>`)}</pre>`;
}

function resolveRef(doc: OpenApiDocument, obj: Json): Json {
  const ref = typeof obj?.$ref === "string" ? obj.$ref.split("/") : null;
  return ref ? ((doc.components as Json)?.[ref[2]!]?.[ref[3]!] ?? obj) : obj;
}

function parameters(doc: OpenApiDocument, op: Json): string {
  const list: Json[] = (op.parameters ?? []).map((p: Json) => resolveRef(doc, p));
  if (list.length === 0) return "";
  const rows = list.map((p) => `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? "required" : ""}</td>`
    + `<td><code>${esc(JSON.stringify(p.schema ?? {}))}</code>${p.description ? `<br>${prose(p.description)}` : ""}</td></tr>`).join("");
  return `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th></th><th>schema</th></tr>${rows}</table>`;
}

function content(c: Json | undefined): string {
  return Object.entries(c ?? {}).map(([media, m]) => `<div class="media">${esc(media)}</div>${schemaBlock((m as Json).schema)}`).join("");
}

function operation(doc: OpenApiDocument, method: string, path: string, op: Json): string {
  const security = (op.security ?? []) as Json[];
  const who = security.length === 0 ? "public" : security.map((s) => Object.keys(s).join(" + ")).join(" or ");
  const body = op.requestBody ? `<h4>Request body</h4>${content(resolveRef(doc, op.requestBody).content)}` : "";
  const responses = Object.entries(op.responses ?? {}).map(([status, r]) => {
    const named = (r as Json).$ref ? ` <a href="#response-${esc(String((r as Json).$ref).split("/").pop())}">(${esc(String((r as Json).$ref).split("/").pop())})</a>` : "";
    const res = resolveRef(doc, r as Json);
    return `<li><b>${esc(status)}</b> ${prose(res.description)}${named}${(r as Json).$ref ? "" : content(res.content)}</li>`;
  }).join("");
  return `<details id="${esc(op.operationId)}"><summary><span class="m ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code> ${prose(op.summary)}</summary>`
    + `<div class="op">${op.description ? `<p>${prose(op.description)}</p>` : ""}<p class="who">Auth: ${esc(who)}${op["x-permission"] ? ` · permission <code>${esc(op["x-permission"])}</code>` : ""}</p>`
    + `${parameters(doc, op)}${body}<h4>Responses</h4><ul>${responses}</ul></div></details>`;
}

export function renderReference(doc: OpenApiDocument): string {
  const byTag = new Map<string, string[]>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = (item as Json)[method] as Json | undefined;
      if (!op) continue;
      const tag = op.tags?.[0] ?? "Other";
      byTag.set(tag, [...(byTag.get(tag) ?? []), operation(doc, method, path, op)]);
    }
  }
  const tags = (doc.tags ?? []).filter((t) => byTag.has(t.name));
  const sections = tags.map((t) => `<section id="tag-${esc(t.name)}"><h2>${esc(t.name)}</h2><p>${prose(t.description)}</p>${byTag.get(t.name)!.join("")}</section>`).join("");
  const components = doc.components as Json;
  const schemas = Object.entries(components?.schemas ?? {}).map(([name, s]) => `<div id="schema-${esc(name)}"><h3>${esc(name)}</h3>${schemaBlock(s)}</div>`).join("");
  const errors = Object.entries(components?.responses ?? {}).map(([name, r]) => `<li id="response-${esc(name)}"><b>${esc(name)}</b>: ${prose((r as Json).description)}</li>`).join("");
  const schemes = Object.entries(components?.securitySchemes ?? {}).map(([name, s]) => `<li><b>${esc(name)}</b>: ${prose((s as Json).description)}</li>`).join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(doc.info.title)} ${esc(doc.info.version)}</title><style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;display:flex;color:#1d2430}nav{position:sticky;top:0;height:100vh;overflow:auto;min-width:13em;padding:1em;background:#f3f4f7;box-sizing:border-box}
nav a{display:block;color:#1d2430;text-decoration:none;padding:.1em 0}main{padding:1em 2em;max-width:70em;min-width:0}details{border:1px solid #dde;border-radius:4px;margin:.3em 0}
summary{cursor:pointer;padding:.35em .6em}.op{padding:0 1em 1em}.m{display:inline-block;min-width:4.2em;font:bold 12px monospace;text-align:center;border-radius:3px;padding:.15em;color:#fff}
.get{background:#2f7d4f}.post{background:#2b5fb4}.put{background:#8a5a00}.patch{background:#6a3fa0}.delete{background:#b03030}pre{background:#f6f7f9;padding:.6em;overflow:auto;font-size:12px;max-height:30em}
table{border-collapse:collapse}td,th{border:1px solid #dde;padding:.2em .5em;text-align:left;vertical-align:top}.media{font:12px monospace;color:#556}.who{color:#556}
</style></head><body><nav><b>${esc(doc.info.title)}</b><br><small>v${esc(doc.info.version)} · <a style="display:inline" href="/api/openapi.json">openapi.json</a></small><hr>
${tags.map((t) => `<a href="#tag-${esc(t.name)}">${esc(t.name)}</a>`).join("")}<hr><a href="#auth">Authentication</a><a href="#errors">Errors</a><a href="#schemas">Schemas</a></nav>
<main><h1>${esc(doc.info.title)}</h1><p>${prose(doc.info.description)}</p>${sections}
<section id="auth"><h2>Authentication</h2><ul>${schemes}</ul></section>
<section id="errors"><h2>Errors</h2><p>Every 4xx and 5xx answer has the shape of <a href="#schema-Error">Error</a>.</p><ul>${errors}</ul></section>
<section id="schemas"><h2>Schemas</h2>${schemas}</section></main></body></html>`;
}
