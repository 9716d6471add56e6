/**
 * One bench/ws client process: holds its share of the watchers and answers the
 * bench (bench/ws/run.ts) over IPC. The watchers are spread over several of
 * these so that reading 10,000 frames is not one Node thread's serial work
 * (which would be measured as fan-out latency) and so that no client process
 * nears the 20,000-descriptor limit (one descriptor per socket here).
 */
import WebSocket from "ws";

export type PoolRequest =
  | { op: "connect"; url: string; count: number; concurrency: number; timeoutMs: number }
  | { op: "mark" }
  | { op: "collect"; match: string[]; timeoutMs: number }
  | { op: "terminate" };

/** Per watcher: the frames after the mark up to and including the first that contains every `match` string: [receivedAt, frame timestamp or null, hit]. */
export type Collected = [number, number | null, boolean][][];

export type PoolReply =
  | { op: "connected"; times: number[]; failed: [string, number][]; first: [string, number][] }
  | { op: "marked" }
  | { op: "collected"; watchers: Collected; open: number; closes: [string, number][] }
  | { op: "terminated" };

interface W { ws: WebSocket; frames: { at: number; text: string }[]; mark: number; wake?: () => void; closed?: string }

const watchers: W[] = [];
const closes = new Map<string, number>();
let terminating = false;

function firstKey(text: string): string {
  try {
    const f = JSON.parse(text) as { event?: string; data?: { status?: string } };
    return `${f.event ?? "?"}${f.data?.status ? `/${f.data.status}` : ""}`;
  } catch { return "unparsable"; }
}

async function connect(url: string, count: number, concurrency: number, timeoutMs: number): Promise<PoolReply> {
  const times: number[] = [], failed = new Map<string, number>(), first = new Map<string, number>();
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      next++;
      const t0 = performance.now();
      const w: W = { ws: new WebSocket(url, { perMessageDeflate: false }), frames: [], mark: 0 };
      const ok = await new Promise<boolean>((resolve) => {
        let done = false;
        const timer = setTimeout(() => fail(`no first frame in ${timeoutMs / 1000} s`), timeoutMs);
        const fail = (why: string) => { if (done) return; done = true; clearTimeout(timer); failed.set(why, (failed.get(why) ?? 0) + 1); try { w.ws.terminate(); } catch { /* */ } resolve(false); };
        w.ws.once("error", (err) => fail(String((err as Error).message).slice(0, 80)));
        w.ws.once("unexpected-response", (_req, res) => fail(`HTTP ${res.statusCode}`));
        w.ws.on("message", (data) => {
          const text = String(data);
          if (!done) {
            done = true;
            clearTimeout(timer);
            times.push(performance.now() - t0);
            const k = firstKey(text);
            first.set(k, (first.get(k) ?? 0) + 1);
            resolve(true);
            return;
          }
          w.frames.push({ at: Date.now(), text });
          w.wake?.();
        });
      });
      if (ok) {
        w.ws.on("close", (code, reason) => {
          if (terminating) return;
          w.closed = `${code} ${String(reason).slice(0, 60)}`;
          closes.set(w.closed, (closes.get(w.closed) ?? 0) + 1);
          w.wake?.();
        });
        watchers.push(w);
      }
    }
  }));
  return { op: "connected", times, failed: [...failed], first: [...first] };
}

/** The frame's `data.timestamp` (set by the Worker at the state change), parsed only after the receipts are taken. */
const stampOf = (text: string): number | null => {
  try {
    const t = Date.parse((JSON.parse(text) as { data?: { timestamp?: string } }).data?.timestamp ?? "");
    return Number.isFinite(t) ? t : null;
  } catch { return null; }
};

async function collect(match: string[], timeoutMs: number): Promise<PoolReply> {
  const deadline = Date.now() + timeoutMs;
  const hits = (t: string) => match.every((m) => t.includes(m));
  const out: Collected = await Promise.all(watchers.map(async (w) => {
    for (;;) {
      const mine = w.frames.slice(w.mark);
      const i = mine.findIndex((f) => hits(f.text));
      if (i >= 0 || Date.now() > deadline || w.ws.readyState !== WebSocket.OPEN) {
        const upTo = i >= 0 ? mine.slice(0, i + 1) : mine;
        return upTo.map((f, j): [number, number | null, boolean] => [f.at, stampOf(f.text), j === i]);
      }
      await new Promise<void>((r) => { w.wake = r; setTimeout(r, 1000); });
      w.wake = undefined;
    }
  }));
  const reply: PoolReply = { op: "collected", watchers: out, open: watchers.filter((w) => w.ws.readyState === WebSocket.OPEN).length, closes: [...closes] };
  closes.clear();
  return reply;
}

process.on("message", async (m: PoolRequest) => {
  let reply: PoolReply;
  switch (m.op) {
    case "connect": reply = await connect(m.url, m.count, m.concurrency, m.timeoutMs); break;
    case "mark": for (const w of watchers) w.mark = w.frames.length; reply = { op: "marked" }; break;
    case "collect": reply = await collect(m.match, m.timeoutMs); break;
    case "terminate":
      terminating = true;
      for (const w of watchers) w.ws.terminate();
      watchers.length = 0;
      setTimeout(() => { terminating = false; }, 2500);
      reply = { op: "terminated" };
      break;
  }
  process.send!(reply);
});
