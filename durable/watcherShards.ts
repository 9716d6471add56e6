/**
 * Watchers spread over several Durable Objects (issue 14: 10,000 watchers of one
 * stream with event p99 < 50 ms). One object's fan-out is serial on its one
 * thread, and workerd's `send` costs 55–90 µs of CPU per watcher here
 * (docs/performance-ws.md), so 10,000 watchers in one object are ~0.6 s per
 * event. In production each object runs on its own thread: an owner (the
 * FleetEvents "fleet" object, a DeploymentRun) keeps up to
 * REDFORGE_WATCHERS_PER_OBJECT watchers itself and places the rest on
 * `WatcherShard` objects named after it, and a publish sends to every shard in
 * parallel before its own send loop. Locally every object shares workerd's one
 * thread, so sharding buys nothing on this machine (bench/ws/shardProbe.ts
 * measured it); it is built for production's per-object CPU.
 *
 * Order and late joiners: a join that goes to a shard and every publish run on
 * one chain, so a shard accepts its joiner (whose first frame the owner builds)
 * before any later event reaches that shard, and an event reaches each shard in
 * publish order. Shards hold sockets through the Hibernation API and close
 * revoked watchers (4401) exactly as the owner does (durable/watchers.ts).
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../core/env.ts";
import type { WatcherShardApi } from "../core/objects.ts";
import { openKv } from "../core/platform/kv.ts";
import { answerPing, closeBack, WatcherHub } from "./watchers.ts";

/** The owner's first frame for the joiner (URI-encoded JSON) and the shard's capacity, on the forwarded upgrade. */
const FIRST_FRAME_HEADER = "X-RedForge-First-Frame";
const CAPACITY_HEADER = "X-RedForge-Shard-Capacity";
/** A first frame larger than this stays with the owner rather than travel in a header. */
const MAX_FORWARDED_FRAME = 32 * 1024;
const SHARDS_KEY = "watchers:shards";

export const DEFAULT_WATCHERS_PER_OBJECT = 500;
export const MAX_SHARDS = 64;

/**
 * REDFORGE_WATCHERS_PER_OBJECT: how many watchers one object holds before the next
 * goes to a shard. 500 × ~60–90 µs per send keeps one object's fan-out near 30–45 ms.
 * An unusable value falls back to the default and says so once (a stream must not
 * refuse watchers over a tuning knob).
 */
export function watchersPerObject(env: Pick<Env, "REDFORGE_WATCHERS_PER_OBJECT">): number {
  const raw = env.REDFORGE_WATCHERS_PER_OBJECT?.trim();
  if (!raw) return DEFAULT_WATCHERS_PER_OBJECT;
  const n = Number(raw);
  if (Number.isInteger(n) && n >= 1 && n <= 100_000) return n;
  if (!warned) {
    warned = true;
    console.warn(JSON.stringify({ msg: "REDFORGE_WATCHERS_PER_OBJECT is not an integer from 1 to 100000; using the default", value: raw.slice(0, 40), default: DEFAULT_WATCHERS_PER_OBJECT }));
  }
  return DEFAULT_WATCHERS_PER_OBJECT;
}
let warned = false;

/**
 * The owner's side: its own WatcherHub plus shards `${owner}#1..n` of the
 * WATCHER_SHARDS namespace. How many shards exist is kept in the owner's storage
 * (a hibernated or evicted owner must still reach the watchers it placed).
 */
export class ShardedWatchers {
  private readonly local: WatcherHub;
  private shards?: number;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly ctx: DurableObjectState, private readonly env: Env, tag = "watcher") {
    this.local = new WatcherHub(ctx, () => openKv(env), tag);
  }

  /**
   * Accepts the upgrade here while this object holds fewer than its share, else on
   * a shard with room (a new one when all are full, up to MAX_SHARDS; past that,
   * here: a watcher is never refused for capacity). `first` is the joiner's first
   * frame, built when the socket counts.
   */
  accept(request: Request, first: () => unknown | Promise<unknown>): Promise<Response> {
    const perObject = watchersPerObject(this.env);
    if (this.local.count() < perObject) return this.localAccept(request, first);
    return this.enqueue(async () => {
      // Again inside the chain: sockets may have closed while this join waited.
      if (this.local.count() < perObject) return this.localAccept(request, first);
      const value = await first();
      const frame = encodeURIComponent(JSON.stringify(value));
      if (frame.length > MAX_FORWARDED_FRAME) return this.local.accept(request, () => value);
      const n = await this.shardCount();
      const start = n > 0 ? Math.floor(Math.random() * n) : 0;
      for (let i = 0; i < n; i++) {
        const res = await this.tryShard(1 + ((start + i) % n), request, frame, perObject);
        if (res) return res;
      }
      if (n < MAX_SHARDS) {
        await this.setShardCount(n + 1);
        const res = await this.tryShard(n + 1, request, frame, perObject);
        if (res) return res;
      }
      return this.local.accept(request, () => value);
    });
  }

  /** Sends `text` to every watcher, on the shards (in parallel) and here; resolves to how many got it. */
  publish(text: string, grant?: string): Promise<number> {
    return this.enqueue(async () => {
      const n = await this.shardCount();
      const remote = Array.from({ length: n }, (_, i) => this.shard(i + 1).publish(text, grant ?? null).catch((err: unknown) => {
        // One shard's failure must not hold the others' events; its watchers reconnect if it died.
        console.error(JSON.stringify({ msg: "watcher shard publish failed", shard: i + 1, error: String(err).slice(0, 200) }));
        return 0;
      }));
      const here = await this.local.publish(text, grant);
      return here + (await Promise.all(remote)).reduce((a, b) => a + b, 0);
    });
  }

  /** Watchers on this object only (cheap: no shard is asked). */
  localCount(): number {
    return this.local.count();
  }

  private async localAccept(request: Request, first: () => unknown | Promise<unknown>): Promise<Response> {
    const frame = await first();
    return this.local.accept(request, () => frame);
  }

  private async tryShard(k: number, request: Request, frame: string, capacity: number): Promise<Response | undefined> {
    const headers = new Headers(request.headers);
    headers.set(FIRST_FRAME_HEADER, frame);
    headers.set(CAPACITY_HEADER, String(capacity));
    const res = await this.shard(k).fetch(new Request(request.url, { headers }));
    if (res.status === 101) return res;
    await res.body?.cancel();
    return undefined; // full (409): the next one
  }

  private shard(k: number): DurableObjectStub<WatcherShardApi> {
    return this.env.WATCHER_SHARDS.get(this.env.WATCHER_SHARDS.idFromName(`${this.ctx.id.toString()}#${k}`));
  }

  private async shardCount(): Promise<number> {
    this.shards ??= (await this.ctx.storage.get<number>(SHARDS_KEY)) ?? 0;
    return this.shards;
  }

  private async setShardCount(n: number): Promise<void> {
    await this.ctx.storage.put(SHARDS_KEY, n);
    this.shards = n;
  }

  private enqueue<T>(step: () => Promise<T>): Promise<T> {
    const next = this.chain.then(step);
    this.chain = next.catch(() => {});
    return next;
  }
}

/** Holds an owner's overflow watchers: accepts (with the owner's first frame) while it has room, and publishes what the owner sends. */
export class WatcherShard extends DurableObject<Env> implements WatcherShardApi {
  private readonly watchers = new WatcherHub(this.ctx, () => openKv(this.env));

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
    const frame = request.headers.get(FIRST_FRAME_HEADER);
    const capacity = Number(request.headers.get(CAPACITY_HEADER));
    if (frame === null || !Number.isInteger(capacity) || capacity < 1) return new Response("only an owner's forwarded upgrade", { status: 400 });
    if (this.watchers.count() >= capacity) return new Response("shard full", { status: 409 });
    const first = JSON.parse(decodeURIComponent(frame)) as unknown;
    return this.watchers.accept(request, () => first);
  }

  async publish(text: string, grant: string | null): Promise<number> {
    return this.watchers.publish(text, grant ?? undefined);
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    answerPing(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    closeBack(ws, code);
  }
}
