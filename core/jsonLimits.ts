/**
 * The shape limits of every JSON document the API accepts, checked on the
 * raw text before anything parses it. JSON.parse itself copes with deep
 * input, but what comes after does not: canonicalisation for the audit hash,
 * JSON.stringify, zod and the structured clone of a Durable Object RPC all
 * recurse, and 5,000 levels of flows were enough for a 500. Node-RED flows,
 * the deepest thing the API stores, stay under ten levels in practice.
 */
import { ApiError } from "./errors.ts";

export const MAX_JSON_DEPTH = 64;
/** Members of one object or array; the largest legitimate lists (flows, health reports) are capped at 5,000. */
export const MAX_JSON_MEMBERS = 10_000;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when a string holds an unpaired UTF-16 surrogate: it cannot be encoded as UTF-8, URI or Postgres text. */
export const hasLoneSurrogate = (s: string) => LONE_SURROGATE.test(s);

const isHigh = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLow = (code: number) => code >= 0xdc00 && code <= 0xdfff;

const tooDeep = () => new ApiError(400, "json_too_deep", `JSON nests deeper than ${MAX_JSON_DEPTH} levels`, { limit: MAX_JSON_DEPTH });
const tooWide = () => new ApiError(413, "json_too_wide", `a JSON object or array has more than ${MAX_JSON_MEMBERS} members`, { limit: MAX_JSON_MEMBERS });
const loneSurrogate = () => new ApiError(400, "validation_failed", "request body holds an unpaired UTF-16 surrogate (\\ud800-\\udfff without its pair)");

// Sticky, and they match the empty string, so lastIndex always lands on the next character that matters.
const PLAIN_IN_STRING = /[^"\\\uD800-\uDFFF]*/y;
const PLAIN_OUTSIDE = /[^"{}[\],]*/y;

/**
 * Throws 400 json_too_deep, 413 json_too_wide or 400 validation_failed (a
 * lone surrogate, written raw or as a \u escape, in a key or a value).
 * One pass, no recursion; malformed JSON is left to the parser.
 */
export function assertJsonWithinLimits(text: string): void {
  /** Commas seen in each open container: members - 1. */
  const members: number[] = [];
  let inString = false;
  let pendingHigh = false;
  for (let i = 0; i < text.length; i++) {
    // Runs of characters that change nothing (inside a string: not a quote, backslash or surrogate;
    // outside: not a quote, bracket or comma) are skipped by the regex engine, not one charCodeAt at a
    // time: that loop was ~3 ms of Worker CPU per 500-record AI-decision batch (bench/ai-ingest/stages.ts).
    if (!pendingHigh) {
      const skip = inString ? PLAIN_IN_STRING : PLAIN_OUTSIDE;
      skip.lastIndex = i;
      skip.test(text);
      i = skip.lastIndex;
      if (i >= text.length) break;
    }
    const ch = text.charCodeAt(i);
    if (inString) {
      let unit = ch;
      if (ch === 0x5c /* \ */) {
        const next = text.charCodeAt(i + 1);
        i++;
        unit = next === 0x75 /* u */ ? parseInt(text.slice(i + 1, i + 5), 16) : -1;
        if (next === 0x75) i += 4;
      } else if (ch === 0x22 /* " */) {
        if (pendingHigh) throw loneSurrogate();
        inString = false;
        continue;
      }
      if (pendingHigh) {
        if (!isLow(unit)) throw loneSurrogate();
        pendingHigh = false;
      } else if (isHigh(unit)) pendingHigh = true;
      else if (isLow(unit)) throw loneSurrogate();
      continue;
    }
    if (ch === 0x22) inString = true;
    else if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      if (members.length >= MAX_JSON_DEPTH) throw tooDeep();
      members.push(0);
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) members.pop();
    else if (ch === 0x2c /* , */ && members.length > 0) {
      if (++members[members.length - 1]! >= MAX_JSON_MEMBERS) throw tooWide();
    }
  }
}
