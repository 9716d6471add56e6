/** bench/ws's client side: watchers spread over child processes (bench/ws/watcherPool.ts), asked all at once. */
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { PoolReply, PoolRequest } from "./watcherPool.ts";

/** The client processes holding the watchers (bench/ws/watcherPool.ts), asked all at once. */
export class Pools {
  private readonly children: ChildProcess[] = [];
  private readonly pending = new Map<ChildProcess, (r: PoolReply) => void>();
  constructor(n: number, private readonly concurrency: number, private readonly timeoutMs: number) {
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "watcherPool.ts");
    for (let i = 0; i < n; i++) {
      const child = fork(file, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
      child.on("message", (m: PoolReply) => { const f = this.pending.get(child); this.pending.delete(child); f?.(m); });
      this.children.push(child);
    }
  }
  private ask(child: ChildProcess, req: PoolRequest): Promise<PoolReply> {
    return new Promise((resolve) => { this.pending.set(child, resolve); child.send(req); });
  }
  all(req: PoolRequest): Promise<PoolReply[]> { return Promise.all(this.children.map((c) => this.ask(c, req))); }
  /** `count` new watchers spread evenly over the clients. */
  async connect(url: string, count: number) {
    const n = this.children.length;
    const replies = await Promise.all(this.children.map((c, i) => this.ask(c, {
      op: "connect", url, count: Math.floor(count / n) + (i < count % n ? 1 : 0), concurrency: Math.ceil(this.concurrency / n), timeoutMs: this.timeoutMs,
    })));
    const times: number[] = [], failed = new Map<string, number>(), first = new Map<string, number>();
    for (const r of replies) {
      if (r.op !== "connected") continue;
      times.push(...r.times);
      for (const [k, v] of r.failed) failed.set(k, (failed.get(k) ?? 0) + v);
      for (const [k, v] of r.first) first.set(k, (first.get(k) ?? 0) + v);
    }
    times.sort((a, b) => a - b);
    return { times, failed, first };
  }
  async collect(match: string[]) {
    const replies = await this.all({ op: "collect", match, timeoutMs: this.timeoutMs });
    const watchers = [], closes = new Map<string, number>();
    let open = 0;
    for (const r of replies) {
      if (r.op !== "collected") continue;
      watchers.push(...r.watchers);
      open += r.open;
      for (const [k, v] of r.closes) closes.set(k, (closes.get(k) ?? 0) + v);
    }
    return { watchers, open, closes };
  }
  pids(): number[] { return this.children.map((c) => c.pid!); }
  close(): void { for (const c of this.children) c.kill(); }
}
