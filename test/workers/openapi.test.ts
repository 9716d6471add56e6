/**
 * The OpenAPI document against the app it describes: every mounted route is in
 * it, every documented operation is routed (answers something other than the
 * router's 404), responses carry schemas and the one error shape, and the
 * reference page shows every operation without loading anything from elsewhere.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/app.ts";
import { api, createUser, type TestUser } from "./helpers.ts";

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

interface Operation { method: string; path: string; op: Record<string, any> }

let doc: any;
let admin: TestUser;

const operations = (d: any): Operation[] => Object.entries(d.paths as Record<string, Record<string, any>>)
  .flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((method) => ({ method, path, op: item[method] })));

/** Hono's `/api/instances/:id` as OpenAPI's `/api/instances/{id}`. */
const openApiPath = (path: string) => path.replace(/:(\w+)(\{[^}]*\})?\??/g, "{$1}");

/** A request that reaches the route but changes nothing: unknown ids, and an unknown field strict validators refuse. */
function probe({ method, path }: Operation) {
  const url = path.replace(/\{(\w+)\}/g, (_m, name: string) => (name === "id" ? crypto.randomUUID() : `openapi-probe-${name}`));
  const write = method !== "get" && method !== "delete";
  return { url: `${url}${method === "get" ? "?openapiProbe=1" : ""}`, body: write ? { openapiProbe: true } : undefined };
}

beforeAll(async () => {
  admin = await createUser("admin");
  const res = await api("GET", "/api/openapi.json");
  expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(200);
  doc = res.body;
});

describe("the OpenAPI document", () => {
  it("is public OpenAPI 3.1 with the error shape defined once", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.components.schemas.Error.properties.error.required).toEqual(["code", "message"]);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["apiKey", "clusterToken", "clusterWebhook", "qstashSignature", "sessionToken"]);
  });

  it("lists every route mounted on the app, and nothing else", () => {
    const mounted = new Set(createApp().routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${openApiPath(r.path)}`));
    const documented = new Set(operations(doc).map((o) => `${o.method.toUpperCase()} ${o.path}`));
    expect([...mounted].filter((m) => !documented.has(m))).toEqual([]);
    expect([...documented].filter((d) => !mounted.has(d))).toEqual([]);
    expect(documented.size).toBeGreaterThan(70);
  });

  it("gives every operation a summary, a security requirement, a success response and the error shape for its errors", () => {
    for (const { method, path, op } of operations(doc)) {
      const where = `${method.toUpperCase()} ${path}`;
      expect(op.summary, where).toBeTruthy();
      expect(op.security, where).toBeDefined();
      const statuses = Object.keys(op.responses);
      expect(statuses.some((s) => /^(1|2)\d\d$/.test(s)), where).toBe(true);
      // Errors refer to the named error responses; only health's 503 ("degraded") documents a body of its own.
      for (const status of statuses.filter((s) => /^[45]/.test(s) && !(path === "/api/health" && s === "503"))) {
        expect(op.responses[status].$ref, `${where} ${status}`).toMatch(/^#\/components\/responses\//);
      }
      for (const status of statuses.filter((s) => /^2\d\d$/.test(s) && s !== "204")) {
        expect(Object.values(op.responses[status].content ?? {}).every((m: any) => m.schema), `${where} ${status}`).toBe(true);
      }
    }
    for (const r of Object.values(doc.components.responses) as any[]) {
      expect(r.content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Error" });
    }
  });

  it("every documented operation is routed: no answer is the router's 404", async () => {
    const answers: string[] = [];
    for (const o of operations(doc)) {
      const { url, body } = probe(o);
      const res = await api(o.method.toUpperCase(), url, { token: admin.token, ...(body ? { body } : {}) });
      answers.push(`${o.method.toUpperCase()} ${o.path} → ${res.status} ${res.body?.error?.code ?? ""}`);
      // A resource that does not exist is `<what>_not_found`; the router's own 404 is plain `not_found`.
      expect(res.status === 404 && res.body?.error?.code === "not_found", answers.at(-1)).toBe(false);
      expect(res.status, answers.at(-1)).toBeLessThan(500);
    }
    expect(answers.length).toBe(operations(doc).length);
  }, 120_000);
});

describe("the reference page", () => {
  it("shows every operation, and nothing on it loads from elsewhere", async () => {
    const res = await api("GET", "/api/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^text\/html/);
    expect(res.headers.get("Content-Security-Policy")).toContain("default-src 'none'");
    const html = res.body as string;
    for (const { path, op } of operations(doc)) {
      expect(html, op.operationId).toContain(`id="${op.operationId}"`);
      expect(html).toContain(`<code>${path}</code>`);
    }
    expect(html).not.toMatch(/<(script|link|img|iframe)\b/i);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
  });
});
