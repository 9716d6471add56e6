/**
 * Raw text of a DOCX without a dependency: read word/document.xml from the
 * ZIP (stored or DEFLATE, inflated by Node's zlib) and keep the text runs,
 * tabs and breaks, one blank line between paragraphs (what mammoth's
 * extractRawText gives). Headers, footers, footnotes and comments are not
 * read. Replaces mammoth, whose ~850 files made each instance's offline
 * install of the node package ~10 s slower (docs/agents.md).
 */
"use strict";

const zlib = require("node:zlib");

const MAX_XML_BYTES = 64 * 1024 * 1024; // a zip bomb stops here

/** The bytes of `name` in the ZIP `buf`, or undefined when absent. Throws on a broken or ZIP64 archive. */
function zipEntry(buf, name) {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65_557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error("no ZIP end of central directory");
  const count = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  if (at === 0xffffffff) throw new Error("ZIP64 archives are not read");
  for (let n = 0; n < count; n++) {
    if (at + 46 > buf.length || buf.readUInt32LE(at) !== 0x02014b50) throw new Error("broken ZIP central directory");
    const method = buf.readUInt16LE(at + 10);
    const size = buf.readUInt32LE(at + 20);
    const nameLen = buf.readUInt16LE(at + 28);
    const extraLen = buf.readUInt16LE(at + 30);
    const commentLen = buf.readUInt16LE(at + 32);
    const local = buf.readUInt32LE(at + 42);
    const entry = buf.toString("utf8", at + 46, at + 46 + nameLen);
    at += 46 + nameLen + extraLen + commentLen;
    if (entry !== name) continue;
    if (local + 30 > buf.length || buf.readUInt32LE(local) !== 0x04034b50) throw new Error("broken ZIP local header");
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(start, start + size);
    if (data.length !== size) throw new Error("truncated ZIP entry");
    if (method === 0) return data;
    if (method === 8) return zlib.inflateRawSync(data, { maxOutputLength: MAX_XML_BYTES });
    throw new Error(`ZIP compression method ${method} is not read`);
  }
  return undefined;
}

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'" };
const unescapeXml = (s) => s.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, e) => (e[0] === "#" ? String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : Number(e.slice(1))) : ENTITIES[e]));

/** Text of word/document.xml: runs (<w:t>), <w:tab/>, <w:br/>/<w:cr/>, paragraphs separated by a blank line. */
function documentXmlText(rawXml) {
  // Paragraph properties hold tab *stops* (<w:tabs><w:tab .../>), not tabs.
  const xml = rawXml.replace(/<w:pPr(?:\s[^>]*)?>[\s\S]*?<\/w:pPr>/g, "");
  const paragraphs = [];
  let current = "";
  const token = /<w:t(?:\s[^>]*)?>([^<]*)<\/w:t>|<w:t(?:\s[^>]*)?\/>|<w:(tab|br|cr)(?:\s[^>]*)?\/>|<\/w:p>/g;
  let m;
  while ((m = token.exec(xml))) {
    if (m[1] !== undefined) current += unescapeXml(m[1]);
    else if (m[2] === "tab") current += "\t";
    else if (m[2] === "br" || m[2] === "cr") current += "\n";
    else if (m[0] === "</w:p>") {
      paragraphs.push(current);
      current = "";
    }
  }
  if (current) paragraphs.push(current);
  return paragraphs.join("\n\n").replace(/\n{3,}/g, "\n\n").trim();
}

/** The raw text of a DOCX; throws (with a reason) when `buf` is not one. */
function docxText(buf) {
  const xml = zipEntry(buf, "word/document.xml");
  if (!xml) throw new Error("no word/document.xml in the archive");
  return documentXmlText(xml.toString("utf8"));
}

module.exports = { docxText, zipEntry, documentXmlText };
