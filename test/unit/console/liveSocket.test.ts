import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../../app/src/live/backoff.ts";
import { LiveSocket, liveUrl, type LiveState, type SocketLike } from "../../../app/src/live/liveSocket.ts";

class FakeSocket implements SocketLike {
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: string[] = [];
  closed = false;
  constructor(readonly url: string) {}
  send(data: string) { this.sent.push(data); }
  close() { this.closed = true; }
  drop() { this.onerror?.({}); this.onclose?.({}); }
}

/** Timers under the test's hand: nothing fires until `fire` runs it. */
function manualTimers() {
  const pending = new Map<number, { fn: () => void; ms: number }>();
  let seq = 0;
  return {
    pending,
    set: (fn: () => void, ms: number) => { pending.set(++seq, { fn, ms }); return seq; },
    clear: (h: unknown) => { pending.delete(h as number); },
    /** Runs the timer with the shortest delay (the reconnect, before the 30 s ping). */
    fireNext() {
      const [id, t] = [...pending.entries()].sort((a, b) => a[1].ms - b[1].ms)[0]!;
      pending.delete(id);
      t.fn();
      return t.ms;
    },
  };
}

function harness(token: { value: string | null } = { value: "t1" }) {
  const sockets: FakeSocket[] = [];
  const states: LiveState[] = [];
  const messages: unknown[] = [];
  let opens = 0;
  const timers = manualTimers();
  const live = new LiveSocket({
    url: () => (token.value ? liveUrl("http://cp.test", "/ws/fleet", token.value) : null),
    connect: (url) => { const s = new FakeSocket(url); sockets.push(s); return s; },
    onMessage: (m) => messages.push(m),
    onOpen: () => { opens++; },
    onState: (s) => states.push(s),
    backoff: { baseMs: 100, maxMs: 1000, random: () => 1 },
    timers,
  });
  return { live, sockets, states, messages, timers, opens: () => opens, token };
}

describe("the console's WebSocket client", () => {
  it("connects with the token in the query and hands parsed frames on, ignoring pong and garbage", () => {
    const h = harness();
    expect(h.sockets[0]!.url).toBe("ws://cp.test/ws/fleet?token=t1");
    h.sockets[0]!.onopen?.({});
    h.sockets[0]!.onmessage?.({ data: JSON.stringify({ event: "instance:status", data: { instanceId: "a" } }) });
    h.sockets[0]!.onmessage?.({ data: "pong" });
    h.sockets[0]!.onmessage?.({ data: "{not json" });
    expect(h.messages).toEqual([{ event: "instance:status", data: { instanceId: "a" } }]);
    expect(h.states).toEqual(["connecting", "open"]);
  });

  it("reconnects after a drop with growing delays, resubscribes on every open, and resets the backoff once connected", () => {
    const h = harness();
    h.sockets[0]!.onopen?.({});
    expect(h.opens()).toBe(1);
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      h.sockets.at(-1)!.drop();
      delays.push(h.timers.fireNext());
    }
    expect(delays).toEqual([100, 200, 400, 800]);
    expect(h.sockets).toHaveLength(5);
    h.sockets.at(-1)!.onopen?.({});
    expect(h.opens()).toBe(2);
    expect(h.states.at(-1)).toBe("open");
    h.sockets.at(-1)!.drop();
    expect(h.timers.fireNext()).toBe(100);
  });

  it("caps the delay and reconnects with the token current at that moment", () => {
    const h = harness();
    for (let i = 0; i < 8; i++) { h.sockets.at(-1)!.drop(); h.timers.fireNext(); }
    expect(Math.max(...[...h.timers.pending.values()].map((t) => t.ms), 0)).toBeLessThanOrEqual(1000);
    h.token.value = "t2";
    h.sockets.at(-1)!.drop();
    expect(h.timers.fireNext()).toBe(1000);
    expect(h.sockets.at(-1)!.url).toBe("ws://cp.test/ws/fleet?token=t2");
  });

  it("stops for good on close: no reconnect, no ping, and none without a session", () => {
    const h = harness();
    h.sockets[0]!.onopen?.({});
    h.live.close();
    expect(h.sockets[0]!.closed).toBe(true);
    h.sockets[0]!.onclose?.({});
    expect(h.timers.pending.size).toBe(0);
    expect(h.states.at(-1)).toBe("closed");

    const signedOut = harness({ value: null });
    expect(signedOut.sockets).toHaveLength(0);
    expect(signedOut.states).toEqual(["closed"]);
  });

  it("pings an open socket so idle proxies keep it", () => {
    const h = harness();
    h.sockets[0]!.onopen?.({});
    const [, ping] = [...h.timers.pending.entries()][0]!;
    expect(ping.ms).toBe(30_000);
    ping.fn();
    expect(h.sockets[0]!.sent).toEqual(["ping"]);
  });

  it("jitters each delay between half and all of its ceiling", () => {
    const opts = { baseMs: 500, maxMs: 15_000 };
    expect(backoffDelay(0, { ...opts, random: () => 0 })).toBe(250);
    expect(backoffDelay(0, { ...opts, random: () => 1 })).toBe(500);
    expect(backoffDelay(10, { ...opts, random: () => 1 })).toBe(15_000);
    expect(liveUrl("https://cp.example", "/ws/deployments/abc", "a b")).toBe("wss://cp.example/ws/deployments/abc?token=a+b");
  });
});
