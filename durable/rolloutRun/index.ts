import { DurableObject } from "cloudflare:workers";
import { and, desc, eq, gte, inArray, isNotNull, isNull } from "drizzle-orm";
import { appendAuditOnce } from "../../db/auditChain.ts";
import { openDb, type Db } from "../../db/client.ts";
import { deployments, instances } from "../../db/schema.ts";
import type { Env } from "../../core/env.ts";
import { ApiError } from "../../core/errors.ts";
import { startDeployment } from "../../core/deployments/start.ts";
import { parseSelector, toSql } from "../../core/fleet/labelSelector.ts";
import { openKv } from "../../core/platform/kv.ts";
import { answerPing, closeBack, WatcherHub } from "../watchers.ts";
import type { OperateAnswer, RolloutRunApi } from "../../core/objects.ts";
import type { RolloutAction, RolloutAnswer, RolloutInit } from "../../core/rollouts/types.ts";
import type { Rollout, RolloutEvent } from "../../protocol/api/rollouts.ts";
import { Tick, type RolloutIo, type TickResult } from "./drive.ts";
import { operate } from "./operate.ts";
import { writeRow } from "./projection.ts";
import { unclaimed } from "../../core/rollouts/overlap.ts";
import { holding, initialState, view, type Holding, type InstanceRun, type RolloutMeta, type RunState, type WaveRun } from "./state.ts";

const waveKey = (i: number) => `wave:${i}`;
const chunkKey = (i: number, c: number) => `wave:${i}:${c}`;
/**
 * Instances per storage value. An instance is ~200 B stored, up to ~600 B with a reason and codes; 100 of them stay
 * far below the 128 KiB a Durable Object storage value may hold, whatever the wave's size.
 */
const INSTANCES_PER_KEY = 100;
/** A wave as stored: its header, and how many instance chunks follow (`instances` inline: stored before chunking). */
type StoredWave = Omit<WaveRun, "instances"> & { chunks?: number; instances?: InstanceRun[] };
/** How stale the list row's summary may get while instances change and nothing else does. */
const ROW_EVERY_MS = 5_000;
/** How often in-flight instances are checked for having been destroyed (DELETE /api/instances/:id mid-wave). */
const GONE_CHECK_MS = 5_000;
/** storage.put takes at most 128 keys at once. */
const PUT_CHUNK = 100;
/**
 * How long one call to another object or the database may take inside a tick. Ticks run one at a time (alarms and
 * operator actions wait for each other), so one call that never answers (an RPC whose answer was lost, an object
 * reset under load: "terminated") would stop the rollout for good; past this it counts as not answered.
 */
const CALL_MS = 30_000;
/** A start writes a transaction and starts a DeploymentRun: on a loaded machine at parallelism 100 it takes longer. */
const START_CALL_MS = 60_000;

class Unanswered extends Error {
  constructor(what: string, ms: number) {
    super(`${what} did not answer within ${ms / 1000} s`);
  }
}

/** The call's answer, or Unanswered after `ms` (the call itself is left to finish; its answer is dropped). */
function within<T>(what: string, ms: number, call: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Unanswered(what, ms)), ms); });
  return Promise.race([call(), late]).finally(() => { if (timer !== null) clearTimeout(timer); });
}

/**
 * One object per rollout: holds its plan and per-instance state (state.ts),
 * runs the machine (drive.ts) one tick at a time on its alarm and after each
 * operator action, starts each instance's deployment through the same code
 * path as POST /api/deployments, projects itself into the `rollouts` row, and
 * streams to /ws/rollouts/:id watchers (Hibernation API). Everything it needs
 * to continue is in storage, written before the deployments it starts: an
 * evicted or restarted object resumes on its next alarm.
 */
export class RolloutRun extends DurableObject<Env> implements RolloutRunApi {
  private queue: Promise<unknown> = Promise.resolve();
  /** What store() last wrote under each key (in memory: after a restart the first store writes everything again). */
  private readonly written = new Map<string, string>();
  /** /ws/rollouts/:id watchers: the streams' one fan-out (durable/watchers.ts), events in emit order. */
  private readonly watchers = new WatcherHub(this.ctx, () => openKv(this.env));

  /** One tick or action at a time: alarms and operator actions never interleave. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async load(): Promise<RunState | null> {
    const meta = await this.ctx.storage.get<RolloutMeta>("meta");
    if (!meta) return null;
    const heads = await this.getMany<StoredWave>(Array.from({ length: meta.waveCount }, (_, i) => waveKey(i)));
    const chunkKeys = heads.flatMap((h, i) => Array.from({ length: h.chunks ?? 0 }, (_, c) => chunkKey(i, c)));
    const chunks = await this.getMany<InstanceRun[]>(chunkKeys);
    let next = 0;
    const waves = heads.map((h): WaveRun => {
      // Written before chunking (instances inline) or chunked: both load.
      const { chunks: n, instances: inline, ...wave } = h;
      const instances = inline ?? chunks.slice(next, next + (n ?? 0)).flat();
      next += n ?? 0;
      return { ...wave, instances };
    });
    return { meta, waves };
  }

  /** storage.get of many keys, PUT_CHUNK at a time, in the keys' order. */
  private async getMany<T>(keys: string[]): Promise<T[]> {
    const out: T[] = [];
    for (let i = 0; i < keys.length; i += PUT_CHUNK) {
      const got = await this.ctx.storage.get<T>(keys.slice(i, i + PUT_CHUNK));
      for (const k of keys.slice(i, i + PUT_CHUNK)) out.push(got.get(k)!);
    }
    return out;
  }

  /**
   * Stores the meta and these waves: each wave's header under wave:i and its instances INSTANCES_PER_KEY at a time
   * under wave:i:c, each value written only when it differs from what this object last wrote (a tick changes a few
   * instances of a 500-instance wave; rewriting it whole every second was ~100 KB a tick, and one value that size
   * grows past the 128 KiB value limit once its instances carry reasons).
   */
  private async store(s: RunState, waves: Iterable<number>): Promise<void> {
    const entries: [string, unknown][] = [["meta", s.meta]];
    for (const i of waves) {
      const { instances: all, ...head } = s.waves[i]!;
      const chunks = Math.ceil(all.length / INSTANCES_PER_KEY);
      entries.push([waveKey(i), { ...head, chunks } satisfies StoredWave]);
      for (let c = 0; c < chunks; c++) entries.push([chunkKey(i, c), all.slice(c * INSTANCES_PER_KEY, (c + 1) * INSTANCES_PER_KEY)]);
    }
    const changed = entries.filter(([k, v]) => {
      const text = JSON.stringify(v);
      if (k !== "meta" && this.written.get(k) === text) return false;
      this.written.set(k, text);
      return true;
    });
    try {
      for (let i = 0; i < changed.length; i += PUT_CHUNK) await this.ctx.storage.put(Object.fromEntries(changed.slice(i, i + PUT_CHUNK)));
    } catch (err) {
      // Not known to be written: the next store writes them again.
      for (const [k] of changed) this.written.delete(k);
      throw err;
    }
  }

  // ---- entry points ----

  async start(init: RolloutInit): Promise<Rollout> {
    return this.serial(async () => {
      const existing = await this.load();
      if (existing) return view(existing);
      const s = initialState(init, Date.now());
      await this.ctx.storage.put("flows", init.flows);
      await this.store(s, s.waves.keys());
      await this.tick(s);
      return view(s);
    });
  }

  async state(): Promise<Rollout | null> {
    const s = await this.load();
    return s ? view(s) : null;
  }

  /** Whether this rollout has the instance in hand (state.ts `holding`): what POST /api/deployments asks before it starts one. */
  async holds(instanceId: string): Promise<Holding | "not_started" | null> {
    const s = await this.load();
    // Its row is written before its object starts: until then, what its selector picks is its own.
    return s ? holding(s, instanceId) : "not_started";
  }

  async operate(what: RolloutAction, userId: string | null): Promise<RolloutAnswer> {
    return this.serial(async () => {
      const s = await this.load();
      if (!s) return { ok: false, status: 404, code: "rollout_not_found", message: "rollout not found" };
      const flows = (await this.ctx.storage.get<unknown[]>("flows")) ?? [];
      const t = new Tick(s, this.io(s), flows);
      const refused = operate(t, what, userId);
      if (refused) return { ok: false, ...refused };
      await this.afterTick(s, t.result);
      await this.tick(s);
      return { ok: true, view: view(s) };
    });
  }

  override async alarm(): Promise<void> {
    await this.serial(async () => {
      const s = await this.load();
      if (s) await this.tick(s);
    });
  }

  // ---- the machine's effects ----

  private dbHandle: ReturnType<typeof openDb> | null = null;
  /** When destroyedAmong last asked the database (in memory: after a restart it asks at once). */
  private goneCheckedAt = 0;
  /** What the `rollouts` row shows (in memory: after a restart the first change writes it again). */
  private rowShows: { status: string; wave: number | null; at: number } | null = null;

  /** One pool per tick (opened on first use, closed at its end). */
  private db(): Db {
    this.dbHandle ??= openDb(this.env.DATABASE_URL!, this.env.NEON_LOCAL_PROXY);
    return this.dbHandle.db;
  }

  private async tick(s: RunState): Promise<void> {
    try {
      const flows = (await this.ctx.storage.get<unknown[]>("flows")) ?? [];
      const t = new Tick(s, this.io(s), flows);
      await this.afterTick(s, await t.run());
    } finally {
      const handle = this.dbHandle;
      this.dbHandle = null;
      await handle?.close().catch(() => {});
    }
  }

  /** Stores what changed, then tells the world: the row, the audit log once at the end, the watchers, the next alarm. */
  private async afterTick(s: RunState, r: TickResult): Promise<void> {
    if (r.metaChanged || r.dirtyWaves.size > 0) await this.store(s, r.dirtyWaves);
    if (r.wakeAt !== null) await this.ctx.storage.setAlarm(r.wakeAt);
    else await this.ctx.storage.deleteAlarm();
    // The row changes with every instance; at fleet scale each write is a pool and a round trip, so the row is
    // written when the status or wave moves, and otherwise at most every ROW_EVERY_MS (GET /:id reads the object).
    const moved = s.meta.status !== this.rowShows?.status || s.meta.currentWave !== this.rowShows?.wave;
    if (r.metaChanged && (moved || Date.now() - (this.rowShows?.at ?? 0) >= ROW_EVERY_MS || r.wakeAt === null)) {
      this.rowShows = { status: s.meta.status, wave: s.meta.currentWave, at: Date.now() };
      await within("the rollouts row", CALL_MS, () => writeRow(this.db(), s)).catch((err) => {
        this.rowShows = null;
        // The row is a projection: the next change writes it again in full.
        console.error(JSON.stringify({ level: "warn", msg: "rollout row not written", rolloutId: s.meta.id, err: String(err) }));
      });
    }
    if (r.finished === "completed" || r.finished === "failed") {
      const m = s.meta;
      await this.db().transaction((tx) => appendAuditOnce(tx, {
        userId: m.createdBy, action: r.finished === "completed" ? "ROLLOUT_COMPLETED" : "ROLLOUT_FAILED", resourceType: "rollout", resourceId: m.id,
        details: { selector: m.selector, flowsDigest: m.flowsDigest, summary: view(s).summary, failure: m.failure },
      }));
    }
    for (const e of r.events) this.emit(e);
    r.events = [];
    r.dirtyWaves.clear();
    r.metaChanged = false;
    r.finished = null;
  }

  private io(s: RunState): RolloutIo {
    const env = this.env;
    const actor = { userId: s.meta.createdBy };
    return {
      now: () => Date.now(),
      // Unanswered: the instance stays as it is and is looked at again next tick (its rollback's deadline still runs).
      deploymentState: (id) => within(`deployment ${id}`, CALL_MS, () => env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(id)).state())
        .catch((err): "unanswered" => { if (err instanceof Unanswered) return "unanswered"; throw err; }),
      startDeployment: async (body) => {
        try {
          return { ok: true, view: await within(`the start of ${body.instanceId}'s deployment`, START_CALL_MS,
            () => startDeployment(env, { db: this.db(), kv: openKv(env) }, actor, body, { rolloutId: s.meta.id })) };
        } catch (err) {
          // It may have started: the tick keeps the instance as starting, and the next one adopts what it finds.
          if (err instanceof Unanswered) return { ok: false, code: "unanswered", message: err.message, transient: true, unanswered: true };
          if (err instanceof ApiError && err.status < 500) return { ok: false, code: err.code, message: err.message, transient: false };
          return { ok: false, code: err instanceof ApiError ? err.code : "start_failed", message: (err as Error).message, transient: true };
        }
      },
      rollbackDeployment: async (id) => {
        try {
          const answer = await within<OperateAnswer>(`deployment ${id}'s rollback`, CALL_MS,
            async () => await env.DEPLOYMENT_RUN.get(env.DEPLOYMENT_RUN.idFromName(id)).operate("rollback", s.meta.createdBy));
          return answer.ok ? { ok: true } : { ok: false, code: answer.code, message: answer.message };
        } catch (err) {
          return { ok: false, code: "unanswered", message: (err as Error).message };
        }
      },
      deploymentSince: (instanceId, since) => within("the deployments query", CALL_MS, async () => {
        const [row] = await this.db().select({ id: deployments.id }).from(deployments)
          .where(and(eq(deployments.instanceId, instanceId), gte(deployments.createdAt, new Date(since))))
          .orderBy(desc(deployments.createdAt)).limit(1);
        return row?.id ?? null;
      }),
      lateJoiners: (known) => within("the late joiners query", CALL_MS, async () => {
        const rows = await this.db().select({ id: instances.id }).from(instances)
          .where(and(isNull(instances.deletedAt), toSql(parseSelector(s.meta.selector), instances.labels)))
          .orderBy(instances.name, instances.id);
        const joiners = rows.map((r) => r.id).filter((id) => !known.has(id));
        return unclaimed(env, this.db(), s.meta.id, joiners);
      }),
      destroyedAmong: async (ids) => {
        // Every GONE_CHECK_MS at most: a tick runs every second and each query may open a pool.
        if (Date.now() - this.goneCheckedAt < GONE_CHECK_MS) return new Set();
        this.goneCheckedAt = Date.now();
        const rows = await within("the destroyed instances query", CALL_MS, () => this.db().select({ id: instances.id }).from(instances)
          .where(and(inArray(instances.id, [...ids]), isNotNull(instances.deletedAt)))).catch(() => []);
        return new Set(rows.map((r) => r.id));
      },
      checkpoint: (waves) => this.store(s, waves),
    };
  }

  // ---- WebSocket watchers (Hibernation API) ----

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
    const s = await this.load();
    if (!s) return new Response("no such rollout", { status: 404 });
    // A late subscriber first learns where things stand.
    return this.watchers.accept(request, () => ({ event: "rollout:state", data: view(s) } satisfies RolloutEvent));
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    answerPing(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    closeBack(ws, code);
  }

  private emit(event: RolloutEvent): void {
    // In order, each after the watchers' access is re-checked (a disabled or demoted watcher is closed instead).
    void this.watchers.publish(JSON.stringify(event)).catch(() => {});
  }
}
