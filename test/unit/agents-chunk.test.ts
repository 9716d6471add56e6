/**
 * redforge-chunk's chunker (flows/node-package/lib/chunkText.js): whole
 * sentences up to the size, overlap carried from the previous chunk, long
 * sentences cut at words, offsets that index the input.
 */
import { createRequire } from "node:module";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
const { chunkText, sentenceSpans } = require("../../flows/node-package/lib/chunkText.js") as {
  chunkText(text: unknown, opts?: { size?: unknown; overlap?: unknown }): { index: number; text: string; start: number; end: number }[];
  sentenceSpans(text: string): [number, number][];
};

const doc = "RedForge runs Node-RED. Each instance has a gate! Does it drain? Yes, it drains.\n\nA new paragraph starts here. It ends here.";

describe("chunkText", () => {
  it("splits sentences at . ! ? and blank lines", () => {
    expect(sentenceSpans(doc).map(([s, e]) => doc.slice(s, e).trim())).toEqual([
      "RedForge runs Node-RED.", "Each instance has a gate!", "Does it drain?", "Yes, it drains.", "A new paragraph starts here.", "It ends here.",
    ]);
  });

  it("packs whole sentences up to the size and repeats the last sentence that fits the overlap", () => {
    const chunks = chunkText(doc, { size: 60, overlap: 20 });
    expect(chunks.map((c) => c.text)).toEqual([
      "RedForge runs Node-RED. Each instance has a gate!",
      "Does it drain? Yes, it drains.",
      "Yes, it drains.\n\nA new paragraph starts here. It ends here.",
    ]);
    expect(chunks.map((c) => c.index)).toEqual([0, 1, 2]);
  });

  it("without overlap, chunks do not repeat text", () => {
    const chunks = chunkText(doc, { size: 60, overlap: 0 });
    expect(chunks.map((c) => c.text).join(" ").replace(/\s+/g, " ")).toBe(doc.replace(/\s+/g, " "));
  });

  it("cuts a sentence longer than the size at word boundaries", () => {
    const long = "alpha beta gamma delta epsilon zeta eta theta iota kappa.";
    const chunks = chunkText(long, { size: 20, overlap: 0 });
    expect(chunks.every((c) => c.text.length <= 20)).toBe(true);
    expect(chunks.map((c) => c.text)).toEqual(["alpha beta gamma", "delta epsilon zeta", "eta theta iota", "kappa."]);
  });

  it("uses 1000 / 200 by default; blank text gives no chunk", () => {
    expect(chunkText("One. Two.")).toEqual([{ index: 0, text: "One. Two.", start: 0, end: 9 }]);
    expect(chunkText("   \n ")).toEqual([]);
  });

  it("refuses what it cannot chunk", () => {
    expect(() => chunkText(42)).toThrow(TypeError);
    expect(() => chunkText("x", { size: 0 })).toThrow(/size/);
    expect(() => chunkText("x", { size: 10, overlap: 10 })).toThrow(/overlap/);
    expect(() => chunkText("x", { size: "lots" })).toThrow(/size/);
  });

  it("for any text: chunks fit the size, offsets index the input, every word is in some chunk, and it always ends", () => {
    const word = fc.stringMatching(/^[a-z]{1,12}$/);
    const sentence = fc.array(word, { minLength: 1, maxLength: 15 }).map((ws) => `${ws.join(" ")}${[".", "!", "?"][ws.length % 3]}`);
    const text = fc.array(sentence, { minLength: 0, maxLength: 30 }).map((ss) => ss.join(" "));
    fc.assert(fc.property(text, fc.integer({ min: 12, max: 300 }), fc.integer({ min: 0, max: 100 }), (t, size, overlapWanted) => {
      const overlap = Math.min(overlapWanted, size - 1);
      const chunks = chunkText(t, { size, overlap });
      for (const c of chunks) {
        expect(c.text.length).toBeLessThanOrEqual(size);
        expect(t.slice(c.start, c.end)).toBe(c.text);
      }
      for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.start).toBeGreaterThan(chunks[i - 1]!.start);
      const covered = new Set(chunks.flatMap((c) => c.text.match(/[a-z]+/g) ?? []));
      for (const w of t.match(/[a-z]+/g) ?? []) expect(covered.has(w)).toBe(true);
    }), { numRuns: 200 });
  });
});
