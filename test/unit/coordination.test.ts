/**
 * Coordination sessions without Node-RED (flows/node-package/lib/coordinator.js
 * and coordinationRules.js): the pick rules, quorum and deadline, the
 * refinement loop's stop conditions, and a coordinator replaced mid-session
 * (a restart) finishing it from the store with the replies that came after.
 */
import { createRequire } from "node:module";
import { afterEach, describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
const rules = require("../../flows/node-package/lib/coordinationRules.js");
const { Coordinator } = require("../../flows/node-package/lib/coordinator.js");
const { MemoryStore, stateKey } = require("../../flows/node-package/lib/coordinationStore.js");

type Vote = { instanceId: string; status: string; answer: string | null; score?: number };
const vote = (instanceId: string, answer: string, extra: Partial<Vote> = {}): Vote => ({ instanceId, status: "success", answer, ...extra });

describe("pick rules", () => {
  const question = "What colour is the launch beacon?";

  it("majority: the answer most participants gave, compared without case, spacing or the final full stop", () => {
    const picked = rules.pick("majority", rules.votesOf([vote("c", "It is red."), vote("a", "The beacon is GREEN."), vote("b", "the beacon is  green")], ["a", "b", "c"]), question);
    expect(picked.winner.instanceId).toBe("a");
    expect(picked.agreement).toBeCloseTo(2 / 3);
    expect(picked.tally).toEqual(expect.arrayContaining([{ answer: "The beacon is GREEN.", count: 2, participants: ["a", "b"] }, { answer: "It is red.", count: 1, participants: ["c"] }]));
  });

  it("majority: a tie goes to the group whose answer comes first in the participant order, not the arrival order", () => {
    const votes = rules.votesOf([vote("b", "red"), vote("a", "green")], ["a", "b"]);
    expect(rules.pick("majority", votes, question).winner.answer).toBe("green");
  });

  it("best_score: a participant's own score wins over relevance; without one, the share of the question's words in the answer", () => {
    const byRelevance = rules.votesOf([vote("a", "The beacon is green."), vote("b", "The launch beacon colour is red.")], ["a", "b"]);
    const picked = rules.pick("best_score", byRelevance, question);
    expect(picked.winner.instanceId).toBe("b");
    expect(picked.score).toBe(0.75); // launch, beacon, colour of what/colour/launch/beacon
    const withScores = rules.votesOf([vote("a", "green", { score: 0.9 }), vote("b", "The launch beacon colour is red.", { score: 0.2 })], ["a", "b"]);
    expect(rules.pick("best_score", withScores, question).winner.instanceId).toBe("a");
  });

  it("failed answers and empty texts are not votes", () => {
    expect(rules.votesOf([{ instanceId: "a", status: "error", answer: null }, vote("b", "  "), vote("c", "ok")], ["a", "b", "c"]).map((v: Vote) => v.instanceId)).toEqual(["c"]);
  });

  it("quorum defaults to a strict majority of the participants and never exceeds their number", () => {
    expect([rules.quorumOf(undefined, 3), rules.quorumOf(0, 4), rules.quorumOf(5, 3), rules.quorumOf(1, 3)]).toEqual([2, 3, 3, 1]);
  });

  it("judge: the prompt numbers the answers; the verdict is read from 'Answer N' or the first number in range", () => {
    const votes = rules.votesOf([vote("a", "green"), vote("b", "red")], ["a", "b"]);
    expect(rules.judgePrompt(question, votes).context).toEqual(["Answer 1: green", "Answer 2: red"]);
    expect(rules.readJudgeVerdict("Answer 2: red.", 2)).toBe(2);
    expect(rules.readJudgeVerdict("I pick 1", 2)).toBe(1);
    expect(rules.readJudgeVerdict("Answer 7 is best", 2)).toBeUndefined();
    expect(rules.readJudgeVerdict("none of them", 2)).toBeUndefined();
  });

  it("refinement stops when the critic approves, when the draft stops changing, or after the last round", () => {
    expect(rules.refinementStop({ round: 1, maxRounds: 3, critique: "Looks fine. APPROVED", stopPhrase: "approved" })).toBe("approved");
    expect(rules.refinementStop({ round: 2, maxRounds: 3, draft: "Green.", previousDraft: "green" })).toBe("converged");
    expect(rules.refinementStop({ round: 3, maxRounds: 3, critique: "add the colour" , stopPhrase: "APPROVED" })).toBe("max_rounds");
    expect(rules.refinementStop({ round: 1, maxRounds: 3, critique: "add the colour", stopPhrase: "APPROVED" })).toBeUndefined();
  });
});

/** Participants that answer what `answers` says (or stay silent), through the coordinator's onReply, after `delayMs`. */
function harness(store = new MemoryStore(), opts: { answers?: Record<string, string | null>; delayMs?: number } = {}) {
  const sent: Array<{ to: string; message: any }> = [];
  const records: any[] = [];
  let coordinator: any;
  const reply = (to: string, message: any, answer: string) => ({
    sessionId: message.metadata.coordination.sessionId, requestId: message.metadata.coordination.requestId, instanceId: to,
    output: { payload: { answer, model: `model-${to}`, inputTokens: 10, outputTokens: 3 }, metadata: { status: "success" }, error: null },
    call: { provider: "ollama", latencyMs: 5 },
  });
  const make = () => new Coordinator({
    instanceId: "coord", store, replyTo: "redforge/coordination/coord/replies",
    report: (r: any[]) => records.push(...r),
    send: (to: string, message: any) => {
      sent.push({ to, message });
      const answer = opts.answers?.[to];
      if (answer !== null && answer !== undefined) setTimeout(() => void coordinator.onReply(reply(to, message, answer)), opts.delayMs ?? 1);
    },
  });
  coordinator = make();
  return { sent, records, store, reply, get coordinator() { return coordinator; }, restart() { coordinator.close(); coordinator = make(); return coordinator; } };
}

let open: Array<{ coordinator: any }> = [];
afterEach(() => { for (const h of open) h.coordinator.close(); open = []; });

describe("voting sessions", () => {
  it("decide by majority once every participant answered, recording each vote and the decision", async () => {
    const h = harness(undefined, { answers: { a: "Green.", b: "green", c: "Red." } });
    open.push(h);
    const s = await h.coordinator.vote({ question: "colour?", participants: ["a", "b", "c"], rule: "majority", deadlineMs: 60_000 });
    expect(s.status).toBe("decided");
    expect(s.outcome).toMatchObject({ answer: "Green.", winner: "a", missing: [] });
    expect(h.records.map((r) => r.operationName).sort()).toEqual(["coordination.decision", "coordination.vote", "coordination.vote", "coordination.vote"]);
    const aVote = h.records.find((r) => r.operationName === "coordination.vote" && r.metadata.coordination.participant === "a");
    // Tokens stay out of the record's own fields: the participant's model call already counted them.
    expect(aVote).toMatchObject({ model: "model-a", provider: "ollama", response: "Green.", metadata: { coordination: { inputTokens: 10, outputTokens: 3, status: "success", role: "voter" } } });
    expect(aVote.inputTokens).toBeUndefined();
    expect(await h.store.open("coord")).toEqual([]);
    expect((await h.store.get(stateKey("voting", s.id))).status).toBe("decided");
  });

  it("at the deadline decide with the answers in when they reach the quorum, and name who was missing", async () => {
    const h = harness(undefined, { answers: { a: "green", b: "green", c: null } });
    open.push(h);
    const s = await h.coordinator.vote({ question: "colour?", participants: ["a", "b", "c"], rule: "majority", quorum: 2, deadlineMs: 300 });
    expect(s.status).toBe("decided");
    expect(s.outcome.missing).toEqual(["c"]);
  });

  it("at the deadline without the quorum: no_quorum and no answer", async () => {
    const h = harness(undefined, { answers: { a: "green", b: null, c: null } });
    open.push(h);
    const s = await h.coordinator.vote({ question: "colour?", participants: ["a", "b", "c"], rule: "best_score", deadlineMs: 300 });
    expect(s.status).toBe("no_quorum");
    expect(s.outcome).toMatchObject({ answer: null, missing: ["b", "c"] });
    expect(s.outcome.reason).toMatch(/1 of 3 .* quorum is 2/);
  });

  it("judge: asks the judge with the numbered answers and takes the one it names", async () => {
    const h = harness(undefined, { answers: { a: "green", b: "red", j: "Answer 2: red" } });
    open.push(h);
    const s = await h.coordinator.vote({ question: "colour?", participants: ["a", "b"], rule: "judge", judge: "j", deadlineMs: 60_000 });
    expect(s.status).toBe("decided");
    expect(s.outcome).toMatchObject({ answer: "red", winner: "b", judgeModel: "model-j" });
    expect(h.sent.find((m) => m.to === "j")!.message.payload.context).toEqual(["Answer 1: green", "Answer 2: red"]);
  });

  it("a coordinator restarted mid-session resumes it from the store and decides with the replies that arrive after", async () => {
    const h = harness(undefined, { answers: {} });
    open.push(h);
    void h.coordinator.vote({ question: "colour?", participants: ["a", "b"], rule: "majority", deadlineMs: 60_000 });
    await expect.poll(() => h.sent.length).toBe(2);
    const next = h.restart(); // the old process is gone: its memory and timers with it
    expect(await next.resume()).toBe(1);
    const id = h.sent[0]!.message.metadata.coordination.sessionId;
    for (const { to, message } of h.sent) await next.onReply(h.reply(to, message, "green"));
    await next.onReply(h.reply(h.sent[0]!.to, h.sent[0]!.message, "duplicate")); // QoS 1 redelivery: ignored
    const s = await h.store.get(stateKey("voting", id));
    expect(s).toMatchObject({ status: "decided", outcome: { answer: "green" } });
    expect(s.answers).toHaveLength(2);
    expect(await h.store.open("coord")).toEqual([]);
  });

  it("a session whose deadline passed while its coordinator was down is decided on resume", async () => {
    const h = harness(undefined, { answers: {} });
    open.push(h);
    void h.coordinator.vote({ question: "colour?", participants: ["a"], rule: "majority", deadlineMs: 50 });
    await expect.poll(() => h.sent.length).toBe(1);
    const next = h.restart();
    await new Promise((r) => setTimeout(r, 100));
    await next.resume();
    const id = h.sent[0]!.message.metadata.coordination.sessionId;
    await expect.poll(async () => (await h.store.get(stateKey("voting", id))).status).toBe("no_quorum");
  });
});

describe("refinement sessions", () => {
  it("alternate generator and critic until the draft stops changing", async () => {
    const h = harness(undefined, { answers: { g: "The beacon is green.", k: "Say which beacon." } });
    open.push(h);
    const s = await h.coordinator.refine({ question: "colour?", generator: "g", critic: "k", maxRounds: 5 });
    expect(s).toMatchObject({ status: "converged", round: 2, drafts: ["The beacon is green.", "The beacon is green."], critiques: ["Say which beacon."] });
    expect(h.sent.map((m) => `${m.to}:${m.message.metadata.coordination.role}:${m.message.metadata.coordination.round}`)).toEqual(["g:generator:1", "k:critic:1", "g:generator:2"]);
    expect(h.sent[2]!.message.payload.context).toEqual(["Previous draft: The beacon is green.", "Critique: Say which beacon."]);
  });

  it("stop when the critic approves, or after maxRounds", async () => {
    const approved = harness(undefined, { answers: { g: "green", k: "APPROVED, nothing to add" } });
    open.push(approved);
    expect((await approved.coordinator.refine({ question: "colour?", generator: "g", critic: "k" })).status).toBe("approved");
    const capped = harness(undefined, { answers: { g: "green", k: "more detail" } });
    open.push(capped);
    const s = await capped.coordinator.refine({ question: "colour?", generator: "g", critic: "k", maxRounds: 1 });
    expect(s).toMatchObject({ status: "max_rounds", outcome: { answer: "green", rounds: 1 } });
  });

  it("a step that gets no answer within stepTimeoutMs fails the session, naming who did not answer", async () => {
    const h = harness(undefined, { answers: { g: "green", k: null } });
    open.push(h);
    const s = await h.coordinator.refine({ question: "colour?", generator: "g", critic: "k", stepTimeoutMs: 200 });
    expect(s.status).toBe("failed");
    expect(s.outcome.reason).toMatch(/k did not answer round 1/);
  });
});

describe("redforge-coordinator settings", () => {
  const { sessionArgs } = require("../../flows/node-package/nodes/redforge-coordination.js");
  const voting = { pattern: "voting", participants: "${VOTING_PARTICIPANTS}", rule: "${VOTING_RULE}", quorum: "${VOTING_QUORUM}", deadline: "${VOTING_DEADLINE_MS}", judge: "${VOTING_JUDGE}" };

  it("treat a \"${VAR}\" Node-RED left unsubstituted (the variable is not set) as not set; the message's config wins", () => {
    const { args } = sessionArgs(voting, { participants: ["a", "b", "c"] }, { question: "colour?", context: ["green"] }, "wf-1");
    expect(args).toMatchObject({ participants: ["a", "b", "c"], rule: "majority", quorum: 0, deadlineMs: 30_000, judge: undefined, question: "colour?", context: ["green"] });
  });

  it("refuse what cannot run, saying why", () => {
    expect(() => sessionArgs(voting, {}, "colour?", "wf")).toThrow(/1\.\.50 participant/);
    expect(() => sessionArgs(voting, { participants: "a,a" }, "colour?", "wf")).toThrow(/twice/);
    expect(() => sessionArgs(voting, { participants: "a/#" }, "colour?", "wf")).toThrow(/not an instance id/);
    expect(() => sessionArgs(voting, { participants: "a", rule: "loudest" }, "colour?", "wf")).toThrow(/rule must be/);
    expect(() => sessionArgs(voting, { participants: "a" }, { question: "" }, "wf")).toThrow(/payload must be a question/);
    expect(() => sessionArgs({ pattern: "refinement", generator: "${REFINE_GENERATOR}" }, {}, "q", "wf")).toThrow(/generator and a critic/);
  });
});

describe("a session store that fails", () => {
  it("fails the session for the waiting caller instead of leaving it waiting", async () => {
    const store = new MemoryStore();
    const h = harness(store, { answers: { a: "green" } });
    open.push(h);
    const original = store.set.bind(store);
    let calls = 0;
    store.set = async (k: string, v: unknown) => { if (++calls > 1) throw new Error("ECONNREFUSED"); return original(k, v); };
    const s = await h.coordinator.vote({ question: "colour?", participants: ["a"], rule: "majority", deadlineMs: 60_000 });
    expect(s.status).toBe("failed");
    expect(s.outcome.reason).toMatch(/session store failed: ECONNREFUSED/);
  });
});
