/**
 * Sentence-aware text chunking for retrieval: chunks of at most `size`
 * characters made of whole sentences, each starting with up to `overlap`
 * characters of the previous chunk's last sentences (so a fact cut at a
 * chunk boundary is still whole in one chunk). A sentence longer than `size`
 * is cut at word boundaries (mid-word only when one word is longer than
 * `size`). Offsets index the input string: text === input.slice(start, end).
 */
"use strict";

const DEFAULTS = Object.freeze({ size: 1000, overlap: 200 });
const MAX_SIZE = 100_000;

// A sentence ends at . ! ? (plus closing quotes/brackets) followed by whitespace, or at a blank line.
const SENTENCE_END = /[.!?]+["'”’)\]]*\s+|\n\s*\n\s*/g;

/** [start, end) spans of the sentences of `text`, trailing whitespace included, covering it all. */
function sentenceSpans(text) {
  const spans = [];
  let start = 0;
  SENTENCE_END.lastIndex = 0;
  for (let m = SENTENCE_END.exec(text); m; m = SENTENCE_END.exec(text)) {
    const end = m.index + m[0].length;
    if (end > start) spans.push([start, end]);
    start = end;
  }
  if (start < text.length) spans.push([start, text.length]);
  return spans;
}

/** Cuts one over-long span into pieces of at most `size`, preferring the last whitespace. */
function splitLong([start, end], text, size) {
  const pieces = [];
  let at = start;
  while (end - at > size) {
    const window = text.slice(at, at + size + 1);
    // The last whitespace within size+1 characters: a word ending exactly at the limit still fits.
    const space = window.search(/\s\S*$/);
    const cut = space > 0 ? at + space : at + size;
    pieces.push([at, cut]);
    at = cut;
    // A piece never starts with the whitespace it was cut at (it would cost a word its room).
    while (at < end && /\s/.test(text[at])) at++;
  }
  if (end > at) pieces.push([at, end]);
  return pieces;
}

function options(opts) {
  const size = Math.floor(Number(opts && opts.size !== undefined ? opts.size : DEFAULTS.size));
  const overlap = Math.floor(Number(opts && opts.overlap !== undefined ? opts.overlap : DEFAULTS.overlap));
  if (!Number.isFinite(size) || size < 1 || size > MAX_SIZE) throw new RangeError(`chunk size must be 1..${MAX_SIZE} characters, got ${opts && opts.size}`);
  if (!Number.isFinite(overlap) || overlap < 0 || overlap >= size) throw new RangeError(`chunk overlap must be 0..size-1 characters, got ${opts && opts.overlap}`);
  return { size, overlap };
}

/**
 * Chunks `text`: [{ index, text, start, end }]. Empty or blank text gives [].
 * Chunk text is trimmed of surrounding whitespace (start/end follow the trim).
 */
function chunkText(text, opts) {
  if (typeof text !== "string") throw new TypeError("text to chunk must be a string");
  const { size, overlap } = options(opts);
  const units = sentenceSpans(text).flatMap((span) => (span[1] - span[0] > size ? splitLong(span, text, size) : [span]));
  const chunks = [];
  let first = 0; // index of the first unit of the chunk being built
  while (first < units.length) {
    let last = first;
    while (last + 1 < units.length && units[last + 1][1] - units[first][0] <= size) last++;
    pushTrimmed(chunks, text, units[first][0], units[last][1]);
    if (last + 1 >= units.length) break;
    // The next chunk starts with the trailing units of this one that fit in `overlap`, never at `first` again.
    let next = last + 1;
    while (next - 1 > first && units[last][1] - units[next - 1][0] <= overlap && units[last + 1][1] - units[next - 1][0] <= size) next--;
    first = next;
  }
  return chunks.map((c, index) => ({ index, ...c }));
}

function pushTrimmed(chunks, text, start, end) {
  const raw = text.slice(start, end);
  const lead = raw.length - raw.trimStart().length;
  const body = raw.trim();
  if (body.length === 0) return;
  chunks.push({ text: body, start: start + lead, end: start + lead + body.length });
}

module.exports = { chunkText, sentenceSpans, DEFAULTS, MAX_SIZE };
