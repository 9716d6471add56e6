/**
 * The file converter's library (PDF and DOCX fixtures through the bundled
 * unpdf and the package's own DOCX reader; the Tika path against a small server speaking Tika's
 * `PUT /tika` — not a real Tika) and the Milvus REST v2 client against a
 * small stand-in of the endpoints it uses (not a real Milvus: it checks the
 * requests the client sends, not Milvus's behaviour).
 */
import fs from "node:fs/promises";
import http from "node:http";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { embed } from "../../dev/model-stand-in/answers.ts";
import { freePort } from "../../dev/ports.ts";

const require = createRequire(import.meta.url);
const { convertDocument, detectFormat, documentBytes } = require("../../flows/node-package/lib/convertDocument.js");
const { MilvusVectorStore } = require("../../flows/node-package/lib/vectorStore.js");
const { documentXmlText, zipEntry } = require("../../flows/node-package/lib/docxText.js");

const fixture = (name: string) => fs.readFile(new URL(`../fixtures/agents/${name}`, import.meta.url));

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return { code: (err as { code: string }).code, message: (err as Error).message };
  }
  throw new Error("expected a failure");
}

type Handler = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void;
async function serve(handler: Handler): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c) => parts.push(c));
    req.on("end", () => handler(req, Buffer.concat(parts), res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

describe("file converter", () => {
  it("PDF (two pages) and DOCX fixtures to their text, in process", async () => {
    const pdf = await convertDocument(await fixture("sample.pdf"));
    expect(pdf).toMatchObject({ format: "pdf", via: "unpdf", pages: 2, text: "The deploy gate holds MQTT work while a runtime drains.\n\nHeld work is replayed after the switch." });
    const docx = await convertDocument(await fixture("sample.docx"));
    expect(docx).toMatchObject({ format: "docx", via: "docx", text: "Blue and green run side by side during a deployment.\n\nThe bridge reports every AI decision." });
    expect(await convertDocument(Buffer.from("Plain text, ünïcode."))).toMatchObject({ format: "text", via: "text", text: "Plain text, ünïcode." });
  });

  it("DOCX text: runs joined, tabs and breaks kept, tab stops and deleted text left out, entities decoded, one blank line between paragraphs", () => {
    const xml = `<w:document><w:body><w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr><w:r><w:t>Fish &amp; chips</w:t></w:r><w:r><w:tab/><w:t xml:space="preserve"> cost &#163;5</w:t></w:r></w:p>`
      + `<w:p><w:r><w:t>line one</w:t><w:br/><w:t>line two</w:t></w:r><w:del><w:r><w:delText>gone</w:delText></w:r></w:del></w:p><w:p/><w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:body></w:document>`;
    expect(documentXmlText(xml)).toBe("Fish & chips\t cost £5\n\nline one\nline two\n\ncell");
  });

  it("DOCX reader refuses a ZIP without a document and a broken archive", async () => {
    const docx = await fixture("sample.docx");
    expect(zipEntry(docx, "word/styles.xml")).toBeUndefined();
    expect(await failure(convertDocument(Buffer.concat([docx.subarray(0, 60), Buffer.from("word/document.xml")])))).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/not a readable DOCX/) });
  });

  it("recognises formats from the bytes and refuses the rest with invalid_input", async () => {
    expect(detectFormat(await fixture("sample.pdf"))).toBe("pdf");
    expect(detectFormat(await fixture("sample.docx"))).toBe("docx");
    expect(detectFormat(Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2]))).toBeUndefined(); // a ZIP, not a DOCX
    expect(detectFormat(Buffer.from([0xff, 0xfe, 0x00]))).toBeUndefined();
    expect(await failure(convertDocument(Buffer.from([0, 159, 146, 150])))).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/unsupported/) });
    expect(await failure(convertDocument(Buffer.from("%PDF-1.7 not really")))).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/PDF/) });
    expect(await failure(convertDocument(Buffer.alloc(0)))).toMatchObject({ code: "invalid_input" });
    expect(await failure(convertDocument(Buffer.from("too long"), { maxBytes: 4 }))).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/CONVERT_MAX_BYTES/) });
    expect(() => documentBytes(42, "json")).toThrow(/payload must be/);
    expect(() => documentBytes("not base64!", "binary")).toThrow(/base64/);
    expect(documentBytes({ data: Buffer.from("hi").toString("base64") }).toString()).toBe("hi");
  });

  it("with TIKA_URL the bytes go to PUT /tika (Accept text/plain); 422 is invalid_input, 5xx or no server converter_unavailable", async () => {
    const seen: { method?: string; url?: string; accept?: string; type?: string; bytes: number }[] = [];
    let status = 200;
    const tika = await serve((req, body, res) => {
      seen.push({ method: req.method, url: req.url, accept: req.headers.accept, type: req.headers["content-type"], bytes: body.length });
      res.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "\nText Tika extracted.\n" : "failed");
    });
    try {
      const docx = await fixture("sample.docx");
      expect(await convertDocument(docx, { tikaUrl: `${tika.url}/` })).toEqual({ text: "Text Tika extracted.", format: "docx", via: "tika", bytes: docx.length });
      expect(seen[0]).toEqual({ method: "PUT", url: "/tika", accept: "text/plain", type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", bytes: docx.length });
      // Formats the in-process parsers do not know still go to Tika.
      expect(await convertDocument(Buffer.from([0, 1, 2]), { tikaUrl: tika.url })).toMatchObject({ format: "other", via: "tika" });
      status = 422;
      expect(await failure(convertDocument(docx, { tikaUrl: tika.url }))).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/422/) });
      status = 503;
      expect(await failure(convertDocument(docx, { tikaUrl: tika.url }))).toMatchObject({ code: "converter_unavailable", message: expect.stringMatching(/503/) });
    } finally {
      await tika.close();
    }
    const port = await freePort();
    expect(await failure(convertDocument(Buffer.from("x"), { tikaUrl: `http://127.0.0.1:${port}` }))).toMatchObject({ code: "converter_unavailable", message: expect.stringMatching(/ECONNREFUSED/) });
  });
});

describe("Milvus REST v2 client (against a stand-in of the endpoints it calls, not a real Milvus)", () => {
  const calls: { path: string; body: any; auth?: string }[] = [];
  const collections = new Map<string, { dimension: number; rows: Map<string, any> }>();
  let milvus: { url: string; close(): Promise<void> };
  const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));

  beforeAll(async () => {
    // The documented request/answer shapes of /v2/vectordb/{collections/has,collections/create,entities/upsert,entities/search}.
    milvus = await serve((req, raw, res) => {
      const body = JSON.parse(raw.toString() || "{}");
      calls.push({ path: req.url!, body, auth: req.headers.authorization });
      const send = (data: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(data));
      const c = collections.get(body.collectionName);
      if (req.url === "/v2/vectordb/collections/has") return send({ code: 0, data: { has: Boolean(c) } });
      if (req.url === "/v2/vectordb/collections/create") {
        collections.set(body.collectionName, { dimension: body.dimension, rows: new Map() });
        return send({ code: 0, data: {} });
      }
      if (!c) return send({ code: 100, message: `collection not found[collection=${body.collectionName}]` });
      if (req.url === "/v2/vectordb/entities/upsert") {
        for (const row of body.data) {
          if (row.vector.length !== c.dimension) return send({ code: 1100, message: "the dim of vector does not match" });
          c.rows.set(row.id, row);
        }
        return send({ code: 0, data: { upsertCount: body.data.length } });
      }
      if (req.url === "/v2/vectordb/entities/search") {
        const q = body.data[0];
        const hits = [...c.rows.values()].map((r) => ({ id: r.id, distance: cos(r.vector, q), text: r.text, metadata: r.metadata }))
          .sort((a, b) => b.distance - a.distance).slice(0, body.limit);
        return send({ code: 0, data: hits });
      }
      return send({ code: 404, message: "unknown" });
    });
  });
  afterAll(() => milvus?.close());

  it("creates a COSINE collection at first upsert, upserts, and searches best first", async () => {
    const store = new MilvusVectorStore({ url: milvus.url, token: "root:Milvus", db: "rag" });
    const texts = ["The deploy gate holds MQTT work while a runtime drains.", "Held work is replayed to the new runtime after the switch.", "The bridge reports every AI decision."];
    const up = await store.upsert("docs", texts.map((text, i) => ({ id: `c${i}`, text, embedding: embed(text), index: i })));
    expect(up).toMatchObject({ upserted: 3, backend: "milvus", dimensions: 64 });
    expect(calls.map((c) => c.path)).toEqual(["/v2/vectordb/collections/has", "/v2/vectordb/collections/create", "/v2/vectordb/entities/upsert"]);
    expect(calls[1]!.body).toMatchObject({ dbName: "rag", collectionName: "docs", dimension: 64, metricType: "COSINE", idType: "VarChar", primaryFieldName: "id", vectorFieldName: "vector" });
    expect(calls[2]!.body.data[1]).toEqual({ id: "c1", vector: embed(texts[1]!), text: texts[1], metadata: { index: 1 } });
    expect(calls.every((c) => c.auth === "Bearer root:Milvus")).toBe(true);
    const found = await store.search("docs", embed("What is replayed after the switch?"), { topK: 2 });
    expect(found.results.map((r: { id: string }) => r.id)[0]).toBe("c1");
    expect(found.results).toHaveLength(2);
    expect(calls.at(-1)!.body).toMatchObject({ annsField: "vector", limit: 2, outputFields: ["id", "text", "metadata"] });
    expect((await store.search("missing", embed("x"), {})).results).toEqual([]);
  });

  it("Milvus error codes are store_rejected, no server is store_unavailable", async () => {
    const store = new MilvusVectorStore({ url: milvus.url });
    expect(await failure(store.upsert("docs", [{ id: "z", text: "t", vector: [1, 2] }]))).toMatchObject({ code: "store_rejected", message: expect.stringMatching(/dim/) });
    const down = new MilvusVectorStore({ url: `http://127.0.0.1:${await freePort()}` });
    expect(await failure(down.search("docs", [1], {}))).toMatchObject({ code: "store_unavailable" });
  });
});
