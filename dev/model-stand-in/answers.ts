/**
 * What the model stand-in answers, as pure functions of the request, so a
 * test knows the answer, the token counts and the vectors before it asks.
 *
 * - Tokens: words and punctuation marks (`/\p{L}[\p{L}\p{N}]*|\p{N}+|[^\s\p{L}\p{N}]/gu`).
 *   Not any real tokenizer's count; stable and easy to predict.
 * - Embeddings: feature hashing of the lower-cased words (each word's SHA-256
 *   picks a dimension and a sign), L2-normalised, rounded to 6 decimals. Texts
 *   sharing words get a higher cosine similarity, so retrieval tests rank
 *   meaningfully; the same text always gives the same vector.
 * - Answers: extractive. The question is the last user message (after its
 *   last "Question:" if it has one); the answer is the sentence of the context
 *   (every other message, and the rest of the last one) sharing the most
 *   words of 4+ letters with the question; with none, a fixed sentence that
 *   echoes the question.
 */
import { createHash } from "node:crypto";

export const DEFAULT_DIMENSIONS = 64;
export const NO_ANSWER_PREFIX = "I found nothing about this in the context:";

export interface ChatMessage { role: string; content: string }

export function countTokens(text: string): number {
  return text.match(/\p{L}[\p{L}\p{N}]*|\p{N}+|[^\s\p{L}\p{N}]/gu)?.length ?? 0;
}

const words = (text: string) => text.toLowerCase().match(/\p{L}[\p{L}\p{N}]*|\p{N}+/gu) ?? [];

export function embed(text: string, dimensions = DEFAULT_DIMENSIONS): number[] {
  const v = new Array<number>(dimensions).fill(0);
  const features = words(text);
  // Text without words (punctuation, blank) still gets a stable, non-zero vector.
  for (const w of features.length ? features : [`\u0000${text}`]) {
    const h = createHash("sha256").update(w).digest();
    v[h.readUInt32BE(0) % dimensions]! += h[4]! & 1 ? 1 : -1;
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => Math.round((x / norm) * 1e6) / 1e6);
}

function sentences(text: string): string[] {
  return text.split(/(?<=[.!?])\s+|\n+/).map((s) => s.trim()).filter(Boolean);
}

const keyWords = (text: string) => new Set(words(text).filter((w) => w.length >= 4));

/** The question and the context of a chat, as the stand-in reads them. */
export function splitPrompt(messages: ChatMessage[]): { question: string; context: string } {
  const lastUser = messages.findLastIndex((m) => m.role === "user");
  const last = lastUser >= 0 ? messages[lastUser]!.content : "";
  const marker = last.lastIndexOf("Question:");
  const question = (marker >= 0 ? last.slice(marker + "Question:".length) : last).trim();
  const rest = [...messages.filter((_, i) => i !== lastUser).map((m) => m.content), marker >= 0 ? last.slice(0, marker) : ""];
  return { question, context: rest.join("\n") };
}

export function answer(messages: ChatMessage[]): string {
  const { question, context } = splitPrompt(messages);
  const asked = keyWords(question);
  let best: { sentence: string; score: number } | undefined;
  for (const sentence of sentences(context.replace(/^\s*context:\s*/gim, ""))) {
    let score = 0;
    for (const w of keyWords(sentence)) if (asked.has(w)) score++;
    if (score > 0 && (!best || score > best.score)) best = { sentence, score };
  }
  return best ? best.sentence : `${NO_ANSWER_PREFIX} ${question}`;
}

/** Prompt tokens of a chat: the sum over its messages' contents. */
export const promptTokens = (messages: ChatMessage[]): number => messages.reduce((n, m) => n + countTokens(m.content), 0);

/** A Float32 little-endian base64 vector: OpenAI's `encoding_format: "base64"` (the official SDK's default). */
export function base64Vector(v: number[]): string {
  const buf = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => buf.writeFloatLE(x, i * 4));
  return buf.toString("base64");
}
