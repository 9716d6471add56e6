/**
 * The pick rules of a voting session, as pure functions of the answers
 * collected (docs/agents.md, "Coordination"): whether the session may
 * decide (quorum), and which answer wins by the declared rule:
 * - majority: the answer most participants gave (compared after
 *   normalising case, spacing and trailing punctuation); a tie goes to the
 *   group whose first answer is earliest in the participant order;
 * - best_score: the highest score, a participant's own `score` when its
 *   answer carries one, else the share of the question's words (4+ letters)
 *   the answer contains; ties go to the earlier participant;
 * - judge: a judge model names the best answer by its number (judgePrompt,
 *   readJudgeVerdict); the coordinator asks it.
 */
"use strict";

const RULES = ["majority", "best_score", "judge"];

const words = (text) => String(text).toLowerCase().match(/\p{L}[\p{L}\p{N}]*|\p{N}+/gu) || [];
const keyWords = (text) => new Set(words(text).filter((w) => w.length >= 4));

/** The form two answers are compared in: "The beacon is green." and "the beacon is  green" agree. */
function normalise(answer) {
  return String(answer).toLowerCase().replace(/\s+/g, " ").trim().replace(/[\s.!?;:,]+$/u, "");
}

/** Share (0..1) of the question's words of 4+ letters that the answer contains; 0 when the question has none. */
function relevance(question, answer) {
  const asked = keyWords(question);
  if (asked.size === 0) return 0;
  const given = keyWords(answer);
  let n = 0;
  for (const w of asked) if (given.has(w)) n++;
  return n / asked.size;
}

/** Answers that count as votes: answered with text, in participant order (the order a tie is broken by). */
function votesOf(answers, participants) {
  const order = (id) => { const i = participants.indexOf(id); return i < 0 ? participants.length : i; };
  return answers
    .filter((a) => a && a.status === "success" && typeof a.answer === "string" && a.answer.trim() !== "")
    .slice()
    .sort((a, b) => order(a.instanceId) - order(b.instanceId));
}

/** Quorum: how many votes a session needs to decide; `quorum` 0 or absent means a strict majority of the participants. */
function quorumOf(quorum, participantCount) {
  const q = Number(quorum);
  if (Number.isInteger(q) && q > 0) return Math.min(q, participantCount);
  return Math.floor(participantCount / 2) + 1;
}

function pickMajority(votes) {
  const groups = new Map();
  for (const v of votes) {
    const key = normalise(v.answer);
    const g = groups.get(key) || { key, members: [] };
    g.members.push(v);
    groups.set(key, g);
  }
  let best;
  for (const g of groups.values()) if (!best || g.members.length > best.members.length) best = g;
  const tally = [...groups.values()].map((g) => ({ answer: g.members[0].answer, count: g.members.length, participants: g.members.map((m) => m.instanceId) }));
  return {
    winner: best.members[0],
    agreement: best.members.length / votes.length,
    tally,
    reason: `${best.members.length} of ${votes.length} votes gave this answer`,
  };
}

function scoreOf(vote, question) {
  const own = Number(vote.score);
  return vote.score !== undefined && vote.score !== null && Number.isFinite(own) ? own : relevance(question, vote.answer);
}

function pickBestScore(votes, question) {
  const scored = votes.map((v) => ({ v, score: scoreOf(v, question) }));
  let best = scored[0];
  for (const s of scored) if (s.score > best.score) best = s;
  return {
    winner: best.v,
    score: best.score,
    tally: scored.map((s) => ({ answer: s.v.answer, score: s.score, participants: [s.v.instanceId] })),
    reason: `highest score ${round(best.score)} of ${votes.length} votes`,
  };
}

const round = (n) => Math.round(n * 1000) / 1000;

/**
 * Decides a collected session by `rule` (majority | best_score); judge sessions call pickByJudge once the judge answered.
 * Returns { winner, tally, reason, agreement?, score? } or undefined when there is no vote at all.
 */
function pick(rule, votes, question) {
  if (!votes.length) return undefined;
  if (rule === "majority") return pickMajority(votes);
  if (rule === "best_score") return pickBestScore(votes, question);
  throw new Error(`rule ${rule} is decided by the judge (pickByJudge)`);
}

/** The judge's question and context: the answers numbered 1..n in participant order. */
function judgePrompt(question, votes) {
  return {
    question: `Which numbered answer best answers this question: ${question}`,
    context: votes.map((v, i) => `Answer ${i + 1}: ${String(v.answer).trim()}`),
  };
}

/** The answer number a judge's reply names ("Answer 2", "2", "the second is best" is not read), or undefined. */
function readJudgeVerdict(reply, count) {
  const text = String(reply || "");
  const named = text.match(/answer\s*#?\s*(\d+)/i) || text.match(/\b(\d+)\b/);
  const n = named ? Number(named[1]) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= count ? n : undefined;
}

function pickByJudge(votes, verdict, judgeReply) {
  const winner = votes[verdict - 1];
  return {
    winner,
    tally: votes.map((v, i) => ({ answer: v.answer, number: i + 1, participants: [v.instanceId] })),
    reason: `the judge named answer ${verdict}: ${String(judgeReply).slice(0, 200)}`,
  };
}

/**
 * Refinement's stop condition after a round: the critic approved (its critique contains `stopPhrase`,
 * case-insensitive), the draft stopped changing, or the rounds ran out; undefined means go on.
 */
function refinementStop({ round: r, maxRounds, draft, previousDraft, critique, stopPhrase }) {
  if (stopPhrase && critique !== undefined && String(critique).toLowerCase().includes(String(stopPhrase).toLowerCase())) return "approved";
  if (previousDraft !== undefined && normalise(previousDraft) === normalise(draft)) return "converged";
  if (r >= maxRounds) return "max_rounds";
  return undefined;
}

module.exports = { RULES, normalise, relevance, votesOf, quorumOf, pick, judgePrompt, readJudgeVerdict, pickByJudge, refinementStop };
