/**
 * The MQTT half of an instance's front door. Producers publish work to
 * redforge/ingest/{instance}; the front is its one subscriber (a persistent
 * QoS 1 session, so work published while the front is down waits in the
 * broker) and forwards each message, in order, to
 * redforge/active/{runtime} of whichever Node-RED serves. One subscriber is
 * what makes the switch exact: nothing is seen by two runtimes.
 *
 * A hand-over (blue → green, or back) replays what the draining gate put on
 * redforge/hold/{instance}, in two calls so that the caller can set the new
 * runtime's gate active in between (from another process, the bridge):
 * `beginHandover` buffers new work, sends an end-of-hold marker down the old
 * runtime's active topic (the gate passes it to the hold topic behind
 * everything it held) and collects the hold queue up to that marker;
 * `completeHandover` republishes held work, then what was buffered, to the new
 * runtime, and forwards directly again. Order is preserved end to end; nothing
 * is seen twice.
 *
 * Held and buffered work is written to a HoldStore (holdSpool.ts) inside
 * mqtt.js's `handleMessage`, which is what mqtt.js waits for before it sends
 * the PUBACK of a QoS 1 message: the broker forgets a message only once it is
 * on this host's disk (page cache). The stores are emptied only after every
 * replayed publish is acknowledged, so a kill of this process between
 * collecting and replaying loses nothing: the next front on the same spool
 * dir replays it.
 *
 * Work forwarded directly (ingest work, stragglers from the hold queue) is
 * acknowledged once its forward is issued: written at once on the same
 * connection, ahead of the PUBACK, it needs nothing more; one that mqtt.js
 * keeps in memory instead (right after a reconnect) is recorded in the
 * forward journal (forwardJournal.ts) until the broker acknowledges it, and
 * the next front on the same spool dir forwards what is left.
 */
import fs from "node:fs";
import path from "node:path";
import { connect, type IClientOptions, type IClientPublishOptions, type IPublishPacket, type MqttClient } from "mqtt";
import { endOfHoldMarker, gateControlMessage, mqttTopics, parseEndOfHold, type GateMode } from "../../protocol/mqtt.ts";
import type { HandoverBegun, HandoverResult, MqttCounters, MqttRoute } from "./fronts.ts";
import { ForwardJournal, writesNow, type JournaledForward } from "./forwardJournal.ts";
import { MemoryHold, SpoolFile, type HoldStore } from "./holdSpool.ts";

const QOS1: IClientPublishOptions = { qos: 1 };
type Done = (error?: Error) => void;

export interface MqttFrontOptions {
  /**
   * Held work goes to `<spoolDir>/hold.spool` (and `switch.spool`), forwards mqtt.js cannot write at
   * once to `<spoolDir>/forward.journal`; in memory (and not journaled) when absent.
   */
  spoolDir?: string;
  /** fsync each spooled record (survives a power cut, one disk flush per held message). */
  fsync?: boolean;
  log?: (line: string) => void;
}

interface Handover {
  from: string;
  to: string;
  token: string;
  marked: Promise<void>;
  markerBack: boolean;
  /** The marker did not come back in time: a re-run sends a new one instead of joining this. */
  timedOut: boolean;
}

export class MqttFront implements MqttRoute {
  private client?: MqttClient;
  private holdClient?: MqttClient;
  private target?: string;
  /** True from a hand-over's begin to its complete: new work waits in `switchBuffer`. */
  private buffering: boolean;
  /** Work collected from the hold queue, not yet replayed. */
  private readonly holdStore: HoldStore;
  /** Work that arrived while a hand-over ran, replayed behind the held work. */
  private readonly switchBuffer: HoldStore;
  private current?: Handover;
  private markerSeen?: { token: string; resolve: () => void };
  private completing?: { from: string; to: string; done: Promise<HandoverResult> };
  private readonly topics;
  private readonly log: (line: string) => void;
  /**
   * A hold is open: from a gate told "drain" until the hand-over that ends it replays. Outside one,
   * what still reaches the hold queue is a straggler behind a hand-over's marker (a restarted gate
   * in drain republishing its stored session after the marker, as aedes interleaves them): it goes
   * to the serving runtime at once instead of waiting in the spool for a hand-over that may never
   * come. Kept in a file beside the spool, so a data plane that restarts mid-hold keeps holding.
   */
  private holdOpen: boolean;
  private readonly holdFlag?: string;
  /** Forwards issued while mqtt.js could not write them at once, until the broker acknowledges them. */
  private readonly journal?: ForwardJournal;
  /** What a killed predecessor left in the journal: forwarded before anything this front handles. */
  private recovered: JournaledForward[] = [];
  /** Forwards journaled since the journal was last empty (logged when it empties again). */
  private journaledNow = 0;
  private journalFailureLogged = false;
  forwarded = 0;
  /** Held messages that arrived after their hand-over and went straight to the serving runtime. */
  stragglers = 0;

  constructor(private readonly url: string, readonly instanceId: string, opts: MqttFrontOptions = {}) {
    this.topics = { ingest: mqttTopics.ingest(instanceId), hold: mqttTopics.hold(instanceId), active: mqttTopics.active, control: mqttTopics.control };
    this.log = opts.log ?? (() => {});
    this.holdStore = opts.spoolDir ? new SpoolFile(path.join(opts.spoolDir, "hold.spool"), opts.fsync) : new MemoryHold();
    this.switchBuffer = opts.spoolDir ? new SpoolFile(path.join(opts.spoolDir, "switch.spool"), opts.fsync) : new MemoryHold();
    this.holdFlag = opts.spoolDir ? path.join(opts.spoolDir, "hold.open") : undefined;
    // Held work already spooled means a hold was open whatever the flag says.
    this.holdOpen = (this.holdFlag !== undefined && fs.existsSync(this.holdFlag)) || this.holdStore.count > 0;
    // A front that dies mid hand-over left buffered work: new work queues behind it until a hand-over replays it.
    this.buffering = this.switchBuffer.count > 0;
    if (this.holdStore.count || this.switchBuffer.count) this.log(`mqtt front: ${this.holdStore.count} held + ${this.switchBuffer.count} buffered message(s) found in the spool; kept for the next hand-over`);
    if (opts.spoolDir) {
      this.journal = new ForwardJournal(opts.spoolDir);
      this.recovered = this.journal.recover();
    }
  }

  async start(target: string): Promise<void> {
    this.target ??= target;
    if (this.client) return;
    const client = await connectHandling(this.url, { clientId: `rf-front-${this.instanceId}`, clean: false, protocolVersion: 4, reconnectPeriod: 500 }, (c, packet, done) => this.onIngest(c, packet, done), (err) => this.log(`mqtt front: ${err.message}`));
    this.client = client;
    // No backlog came with the CONNACK: what the journal had goes out now, ahead of new work.
    this.redoRecovered(client);
    await client.subscribeAsync(this.topics.ingest, { qos: 1 });
    // A front restarted inside a hold (a data plane killed mid-deployment) collects the hold queue
    // again at once, not only at the next hand-over: otherwise the resumed hold session's backlog,
    // queued in the broker since the kill, arrives together with the hand-over's end-of-hold marker,
    // and aedes interleaves the two (faults (g), 2026-12-03: 7 held messages published to the hold
    // queue as the hand-over began reached green 33 s later or never).
    if (this.holdOpen) await this.openHold();
  }

  get serving(): string | undefined {
    return this.target;
  }

  /** A hold is open: work arriving now is kept for the runtime that will serve (HoldLease releases it without a bridge). */
  get holding(): boolean {
    return this.holdOpen;
  }

  /** A hand-over between runtimes is under way (begun, buffering or replaying): only the switch that began it may end it. */
  get handingOver(): boolean {
    return this.current !== undefined || this.completing !== undefined || this.buffering;
  }

  /** Where work goes from now on (no hand-over: for a restart of the same runtime). */
  async setTarget(runtimeId: string): Promise<void> {
    this.target = runtimeId;
  }

  /**
   * Opens the hold queue's persistent session before any gate drains, so the
   * broker keeps every held message for us from the first one on.
   */
  async openHold(): Promise<void> {
    if (this.holdClient) return;
    const client = await connectHandling(this.url, { clientId: `rf-hold-${this.instanceId}`, clean: false, protocolVersion: 4, reconnectPeriod: 500 }, (c, packet, done) => this.onHeld(c, packet, done), (err) => this.log(`mqtt hold: ${err.message}`));
    this.holdClient = client;
    await client.subscribeAsync(this.topics.hold, { qos: 1 });
  }

  async counters(): Promise<MqttCounters> {
    return { forwarded: this.forwarded, held: this.holdStore.count, buffered: this.switchBuffer.count, ...(this.target ? { target: this.target } : {}) };
  }

  /** Publishes a retained gate mode for a runtime: a gate that (re)starts picks it up. */
  async publishMode(runtimeId: string, mode: GateMode): Promise<void> {
    if (mode === "drain") this.setHoldOpen(true);
    await this.requireClient().publishAsync(this.topics.control(runtimeId), gateControlMessage(mode), { qos: 1, retain: true });
  }

  /**
   * First half of moving the work stream from `from` to `to` (the same
   * runtime for a rollback before the switch): new work is buffered, and the
   * hold queue is collected up to an end-of-hold marker sent through `from`'s gate.
   * Run again with the same from/to (a bridge that restarted mid-step) it
   * joins the hand-over under way; after it completed, it reports `done`.
   */
  async beginHandover(from: string, to: string, timeoutMs = 30_000): Promise<HandoverBegun> {
    const client = this.requireClient();
    const running = this.current;
    if (running && running.from === from && running.to === to && !running.timedOut) {
      await running.marked;
      return { held: this.holdStore.count, done: false };
    }
    if (!running && from !== to && this.target === to && !this.buffering && this.holdStore.count === 0) {
      return { held: 0, done: true };
    }
    await this.openHold();
    // Another hand-over's marker may still come back: it is ignored (not work), and its buffer and spool carry over.
    this.buffering = true;
    const token = crypto.randomUUID();
    const handover: Handover = { from, to, token, markerBack: false, timedOut: false, marked: Promise.resolve() };
    handover.marked = new Promise<void>((resolve, reject) => {
      this.markerSeen = { token, resolve: () => { handover.markerBack = true; resolve(); } };
      setTimeout(() => reject(new Error(`end-of-hold marker not back from ${from}'s gate within ${timeoutMs} ms (is its Node-RED running?)`)), timeoutMs).unref();
    });
    handover.marked.catch(() => { handover.timedOut = true; }); // also: a caller that went away leaves no unhandled rejection
    this.current = handover;
    await client.publishAsync(this.topics.active(from), endOfHoldMarker(token), QOS1);
    await handover.marked;
    return { held: this.holdStore.count, done: false };
  }

  /**
   * Second half: held work, then what arrived meanwhile, to `to`, then new
   * work directly. Run again (a restarted bridge) it joins the replay under
   * way, or answers zeros once it is done.
   */
  async completeHandover(from: string, to: string): Promise<HandoverResult> {
    if (this.completing && this.completing.from === from && this.completing.to === to) return this.completing.done;
    const running = this.current;
    if (!running || running.from !== from || running.to !== to) {
      if (this.target === to && !this.buffering) return { replayed: 0, buffered: 0 };
      throw new Error(`no hand-over from ${from} to ${to} has begun on this front`);
    }
    if (!running.markerBack) throw new Error(`hand-over ${from} → ${to}: the hold queue is not complete yet (its end-of-hold marker is not back)`);
    const done = this.replay(to).finally(() => { this.completing = undefined; });
    this.completing = { from, to, done };
    return done;
  }

  private async replay(to: string): Promise<HandoverResult> {
    const client = this.requireClient();
    const t0 = Date.now();
    // Held work, then what arrived meanwhile, then new work directly: all issued in this one
    // synchronous stretch, so nothing can slip in between, and one connection keeps the order.
    // (Awaiting PUBACKs batch by batch here never converges: a broker paces them by the consumer.)
    const held = this.holdStore.readAll();
    const buffered = this.switchBuffer.readAll();
    const acked = [...held, ...buffered].map((payload) => publishKept(client, this.topics.active(to), payload));
    this.target = to;
    this.buffering = false;
    this.current = undefined;
    this.markerSeen = undefined;
    this.setHoldOpen(false);
    await Promise.all(acked);
    // Only now may the spool forget them: a crash before this line replays them again (at least once).
    this.holdStore.consume(held.length);
    this.switchBuffer.consume(buffered.length);
    this.log(`hand-over → ${to}: ${held.length} held + ${buffered.length} buffered replayed in ${Date.now() - t0} ms`);
    return { replayed: held.length, buffered: buffered.length };
  }

  /** Ends a hand-over that failed before its replay: what it buffered goes to the current target, held work stays spooled. */
  async abandonHandover(): Promise<void> {
    if (this.completing) return;
    this.current = undefined;
    this.markerSeen = undefined;
    this.buffering = false;
    const buffered = this.switchBuffer.readAll();
    const client = this.requireClient();
    // Spooled until every forward is acknowledged: no journal needed.
    await Promise.all(buffered.map((payload) => this.forward(payload, client, "mqtt front: forward failed", true)));
    this.switchBuffer.consume(buffered.length);
  }

  async close(): Promise<void> {
    await Promise.all([this.client?.endAsync(), this.holdClient?.endAsync()]);
    this.client = undefined;
    this.holdClient = undefined;
    this.holdStore.close();
    this.switchBuffer.close();
    this.journal?.close();
  }

  private requireClient(): MqttClient {
    if (!this.client) throw new Error("mqtt front is not started");
    return this.client;
  }

  /**
   * mqtt.js sends this message's PUBACK once `done` is called. `client` is the connection that
   * delivered it: a resumed session's backlog can be handled before `start()` has the client (see
   * connectHandling), so this must not reach for `this.client`.
   */
  private onIngest(client: MqttClient, packet: IPublishPacket, done: Done): void {
    // A resumed session's backlog can be handled before start() resolves: what a killed predecessor
    // accepted and never wrote goes first (it was accepted before all of this backlog).
    this.redoRecovered(client);
    const payload = toBuffer(packet.payload);
    if (this.buffering || !this.target) {
      this.switchBuffer.append(payload);
      return done();
    }
    // The forward is written on this connection ahead of the PUBACK (mqtt.js writes a QoS 1 publish at
    // once while connected): after a kill the broker has one or the other. Right after a reconnect
    // mqtt.js queues new publishes in memory while it resends its store, and the PUBACK does not wait:
    // then the forward is journaled before `done` (forwardJournal.ts), until the broker has it.
    // Holding the PUBACK back until the forward was stored (cbStorePut) was tried and reverted: incoming
    // packets are handled one at a time, so PUBACKs and PINGRESPs queued behind it and the connection
    // died of a keepalive timeout under load (faults.test.ts (g), 2026-12-02).
    void this.forward(payload, client, "mqtt front: forward failed");
    done();
  }

  /**
   * Issues a forward to the serving runtime on `client`. Unless the payload is kept elsewhere until
   * the forward is acknowledged (`spooled`: a replayed spool), a forward mqtt.js cannot write at once
   * is journaled first and marked done on the broker's PUBACK; one that fails for good (the client is
   * closing) stays in the journal for the next front on this dir.
   */
  private forward(payload: Buffer, client: MqttClient, failure: string, spooled = false): Promise<void> {
    this.forwarded++;
    const journal = this.journal;
    const id = spooled || !journal || writesNow(client) ? undefined : journal.record(payload);
    if (id !== undefined) this.journaledNow++;
    else if (journal?.error && !this.journalFailureLogged) {
      this.journalFailureLogged = true;
      this.log(`mqtt front: cannot write the forward journal (${journal.error.message}); forwards go on unjournaled: a kill right after a reconnect can lose them`);
    }
    return this.sendForward(client, payload, id, failure);
  }

  private sendForward(client: MqttClient, payload: Buffer, id: number | undefined, failure: string): Promise<void> {
    return publishKept(client, this.topics.active(this.target!), payload).then(
      () => {
        if (id === undefined || !this.journal) return;
        this.journal.done(id);
        if (this.journal.pending > 0 || this.journaledNow === 0) return;
        // One line per moment mqtt.js could not write at once (a reconnect), not one per message.
        this.log(`mqtt front: ${this.journaledNow} forward(s) journaled while mqtt.js could not write them at once (reconnect); the broker has them all`);
        this.journaledNow = 0;
      },
      (err: Error) => this.log(`${failure}: ${err.message}${id !== undefined ? " (journaled: forwarded again by the next front on this spool dir)" : ""}`),
    );
  }

  /**
   * Forwards what a killed predecessor journaled (issued, never acknowledged by the broker), in its
   * order, before anything this front handles. They stay journaled until the broker has them (their
   * ingest PUBACK went long ago), so a second kill redoes them again. With a target they go to it
   * directly, even while a predecessor's switch buffer is kept: each was issued directly, ahead of
   * anything that buffer holds (a forward is journaled only outside a hand-over's buffering); without
   * one they go to the switch buffer, as onIngest does with new work.
   */
  private redoRecovered(client: MqttClient): void {
    const entries = this.recovered;
    if (entries.length === 0) return;
    this.recovered = [];
    this.log(`mqtt front: ${entries.length} forward(s) accepted before a restart and not written: forwarded again${this.target ? ` to ${this.target}` : " (no target yet: buffered for the next hand-over)"}`);
    for (const { id, payload } of entries) {
      if (!this.target) {
        this.switchBuffer.append(payload);
        this.journal?.done(id);
        continue;
      }
      this.forwarded++;
      void this.sendForward(client, payload, id, "mqtt front: journaled forward failed");
    }
  }

  private setHoldOpen(open: boolean): void {
    if (this.holdOpen === open) return;
    this.holdOpen = open;
    if (!this.holdFlag) return;
    if (open) fs.writeFileSync(this.holdFlag, new Date().toISOString(), { mode: 0o600 });
    else fs.rmSync(this.holdFlag, { force: true });
  }

  /** Spooled before `done`, so the broker drops a held message only once it is on disk. */
  private onHeld(client: MqttClient, packet: IPublishPacket, done: Done): void {
    const payload = toBuffer(packet.payload);
    const marker = parseEndOfHold(payload);
    if (marker) {
      if (this.markerSeen && marker === this.markerSeen.token) this.markerSeen.resolve();
      return done(); // a stale marker from an earlier, interrupted hand-over: not work
    }
    if (!this.holdOpen && !this.buffering && this.target && !this.current) {
      // A straggler after the hand-over: to the serving runtime, published on this same connection
      // ahead of its PUBACK, so after a kill the broker has one or the other; journaled when mqtt.js
      // cannot write it at once (as onIngest). (Awaiting the forward's PUBACK before acknowledging
      // took one broker round trip per message, paced by the consumer: 2,376 stragglers of a host
      // restart at 500 msg/s were still queued when the run ended.)
      this.stragglers++;
      void this.forward(payload, client, "mqtt hold: straggler forward failed");
      return done();
    }
    try {
      this.holdStore.append(payload);
    } catch (err) {
      // No PUBACK: the broker keeps the message and redelivers it.
      this.log(`mqtt hold: cannot spool a held message: ${(err as Error).message}`);
      return done(err as Error);
    }
    done();
  }
}

const toBuffer = (p: Buffer | string): Buffer => (typeof p === "string" ? Buffer.from(p) : p);

/**
 * A QoS 1 publish that a dropped connection does not lose. mqtt.js keeps a QoS 1 publish across a
 * reconnect in its outgoing store, except one issued while it is still resending that store right
 * after a reconnect: that one waits in a memory queue, and the next close fails it with "Connection
 * closed", never written. The front had already acknowledged the ingest message to the broker, so
 * it was gone (issue 12 (g): the restarted front's connection dropped again and again, aedes closing
 * it on a duplicate PUBACK, "no such packet", and 1,539 forwards of one run failed so). Issued again
 * at once: while disconnected mqtt.js puts it in the outgoing store, in the order of the failures,
 * and sends it after the reconnect; never twice, since the failed one was never written. ("Connection
 * closed" also ends written publishes, but only for `clean: true` clients with reconnects off: not
 * the front's sessions.)
 */
function publishKept(client: MqttClient, topic: string, payload: Buffer): Promise<void> {
  return client.publishAsync(topic, payload, QOS1).then(() => undefined, (err: Error) => {
    if (err.message !== "Connection closed" || client.disconnecting) throw err;
    return publishKept(client, topic, payload);
  });
}
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

type Handle = (client: MqttClient, packet: IPublishPacket, done: Done) => void;

/**
 * Connects a persistent session with its message handler installed before the CONNACK can arrive.
 * The broker sends a resumed session's stored messages right behind the CONNACK; with
 * `await connectAsync(...)` and the handler set afterwards, mqtt.js handled the first of them with
 * its default handleMessage, which acknowledges and drops them (issue 12 (g): a restarted data plane
 * lost the ingest backlog that waited for it, 1,983 messages at 200 msg/s, and the hold queue's).
 *
 * The handler gets the client as an argument: when the backlog arrives in the same read as the
 * CONNACK (a loaded host: the socket is read late), mqtt.js handles every packet of that read in
 * process.nextTick callbacks, which all run before the promise below resolves, so the caller has not
 * stored the client yet. The handler once reached for it anyway, threw "mqtt front is not started"
 * inside mqtt.js, and the uncaught exception killed the data plane, and the next one, and the one
 * after that: a restarted bridge resumed nothing and the instance stayed down (issue 12 (g),
 * session 7: 95,267 MQTT messages lost). A handler that throws all the same answers `done(err)`:
 * no PUBACK, the broker keeps the message, and the process (every instance's front) lives on.
 */
function connectHandling(url: string, opts: IClientOptions, handle: Handle, onError: (err: Error) => void): Promise<MqttClient> {
  const client = connect(url, opts);
  client.handleMessage = (packet, done) => {
    try {
      handle(client, packet, done);
    } catch (err) {
      onError(new Error(`message on ${packet.topic} not handled (not acknowledged; the broker keeps it): ${errorText(err)}`));
      done(err instanceof Error ? err : new Error(String(err)));
    }
  };
  client.on("error", onError);
  return new Promise((resolve, reject) => {
    const failed = (err: Error) => { client.off("connect", connected); void client.endAsync(true).catch(() => {}); reject(err); };
    const connected = () => { client.off("error", failed); resolve(client); };
    client.once("connect", connected);
    client.once("error", failed);
  });
}
