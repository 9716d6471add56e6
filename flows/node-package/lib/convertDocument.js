/**
 * The file converter: PDF, DOCX or plain text bytes to text.
 * - TIKA_URL set: `PUT {TIKA_URL}/tika` with the bytes, `Accept: text/plain`
 *   (Apache Tika server; any format Tika reads).
 * - Else in process: PDF with unpdf (a serverless build of Mozilla's pdf.js,
 *   bundled with this package, loaded on first use), DOCX with
 *   lib/docxText.js (word/document.xml's text runs), text as UTF-8.
 * The format is recognised from the bytes (%PDF-, a ZIP with
 * word/document.xml, valid UTF-8 without NUL), not from a file name.
 */
"use strict";

const { StoreError, invalid, fromFetchError } = require("./storeError.js");
const { docxText } = require("./docxText.js");

const FORMATS = ["pdf", "docx", "text"];

/** "pdf" | "docx" | "text" | undefined (unknown bytes). */
function detectFormat(bytes) {
  if (bytes.length >= 5 && bytes.subarray(0, 5).toString("latin1") === "%PDF-") return "pdf";
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    // A ZIP: DOCX when it holds word/document.xml (file names are stored uncompressed in the headers).
    return bytes.includes(Buffer.from("word/document.xml")) ? "docx" : undefined;
  }
  if (bytes.includes(0)) return undefined;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return "text";
  } catch {
    return undefined;
  }
}

const MIME = { pdf: "application/pdf", docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", text: "text/plain; charset=utf-8" };

async function pdfText(bytes) {
  let unpdf;
  try {
    unpdf = await import("unpdf");
  } catch (err) {
    throw new StoreError("converter_unavailable", `unpdf is not installed with the RedForge node package (${err.message}); set TIKA_URL or reinstall the package`);
  }
  let doc;
  try {
    doc = await unpdf.getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 });
  } catch (err) {
    throw invalid(`not a readable PDF: ${err.message}`);
  }
  try {
    const { totalPages, text } = await unpdf.extractText(doc, { mergePages: false });
    return { text: text.map((t) => t.trim()).join("\n\n"), pages: totalPages };
  } finally {
    await doc.destroy().catch(() => {});
  }
}

function docxToText(bytes) {
  try {
    return { text: docxText(bytes) };
  } catch (err) {
    throw invalid(`not a readable DOCX: ${err.message}`);
  }
}

async function tikaText(bytes, format, { tikaUrl, timeoutMs }) {
  const url = `${String(tikaUrl).replace(/\/+$/, "")}/tika`;
  const headers = { accept: "text/plain" };
  if (format) headers["content-type"] = MIME[format];
  let res;
  try {
    res = await fetch(url, { method: "PUT", headers, body: bytes, signal: AbortSignal.timeout(timeoutMs || 60_000) });
  } catch (err) {
    throw fromFetchError(err, "converter_unavailable", `Tika ${url}`);
  }
  const body = await res.text();
  if (res.status === 408 || res.status === 429 || res.status >= 500) throw new StoreError("converter_unavailable", `Tika ${url}: HTTP ${res.status}`);
  // 415 unsupported type, 422 unparseable document (Tika's codes): the document, not the server.
  if (res.status >= 400) throw invalid(`Tika could not read the document: HTTP ${res.status} ${body.slice(0, 200)}`);
  return { text: body.trim() };
}

/**
 * Text of a document: {text, format, via, bytes, pages?}. `bytes` is a
 * Buffer; `opts.tikaUrl` sends it to Tika; `opts.maxBytes` bounds it.
 */
async function convertDocument(bytes, opts = {}) {
  const maxBytes = opts.maxBytes || 20 * 1024 * 1024;
  if (bytes.length === 0) throw invalid("the document is empty");
  if (bytes.length > maxBytes) throw invalid(`the document has ${bytes.length} bytes, more than CONVERT_MAX_BYTES (${maxBytes})`);
  const format = detectFormat(bytes);
  if (opts.tikaUrl) {
    const r = await tikaText(bytes, format, opts);
    return { text: r.text, format: format || "other", via: "tika", bytes: bytes.length };
  }
  if (!format) throw invalid("unsupported document: not PDF, DOCX or UTF-8 text (set TIKA_URL to convert other formats)");
  const r = format === "pdf" ? await pdfText(bytes) : format === "docx" ? docxToText(bytes) : { text: bytes.toString("utf8") };
  return { text: r.text, format, via: format === "pdf" ? "unpdf" : format === "docx" ? "docx" : "text", bytes: bytes.length, ...(r.pages !== undefined ? { pages: r.pages } : {}) };
}

/**
 * The bytes a converter message carries: payload `{data, encoding?}` (base64
 * unless encoding is "utf8"), or a string: base64 when
 * metadata.contentType is binary, else the text itself.
 */
function documentBytes(payload, contentType) {
  if (typeof payload === "string") return contentType === "binary" ? fromBase64(payload) : Buffer.from(payload, "utf8");
  if (payload && typeof payload === "object" && !Array.isArray(payload) && typeof payload.data === "string") {
    return payload.encoding === "utf8" ? Buffer.from(payload.data, "utf8") : fromBase64(payload.data);
  }
  throw invalid("payload must be the document: base64 (metadata.contentType binary), text, or {data: base64, filename?}");
}

function fromBase64(s) {
  const clean = s.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw invalid("the document is not valid base64");
  return Buffer.from(clean, "base64");
}

module.exports = { convertDocument, detectFormat, documentBytes, FORMATS };
