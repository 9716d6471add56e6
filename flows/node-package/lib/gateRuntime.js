/**
 * The deploy gate's process-wide state: one per Node-RED process, shared by
 * every redforge-gate and redforge-exit node in it, because a blue-green
 * deployment drains and counts the whole runtime, not one flow.
 *
 * Modes: `active` passes work on; `drain` holds new work (MQTT messages are
 * republished to redforge/hold/{instance} at QoS 1, HTTP requests wait here
 * up to a bound) while in-flight messages finish; `retire` (the old runtime
 * after a switch where a Kubernetes Service, not the bridge, routes HTTP)
 * passes work on like `active` but answers every HTTP request with
 * `Connection: close`, so clients' keep-alive connections leave this runtime
 * and reconnect to whichever one the Service selects now; `openHttp` counts
 * the client connections still open, so the bridge stops a retired runtime only
 * once its clients have left (see docs/pitfalls.md). In-flight = entered a gate,
 * not yet through an exit marker; entries older than the TTL are dropped and
 * counted as `expired`, so a message lost downstream cannot pin the count.
 *
 * Environment (set by the RedForge bridge): REDFORGE_INSTANCE_ID (the managed
 * instance, names the hold topic), REDFORGE_RUNTIME_ID (this process: blue or
 * green; names the control/status/active topics), REDFORGE_MQTT_URL.
 */
"use strict";

const { connectMqtt } = require("./mqttClient.js");
const { WorkJournal } = require("./workJournal.js");
// Topics, the end-of-hold marker and the modes come from protocol/mqtt.ts, as the bridge's do.
const { END_OF_HOLD, GATE_MODES: MODES, isEndOfHold, topicsOf } = require("./contract.generated.js");

class GateRuntime {
  constructor(RED, env) {
    this.RED = RED;
    this.instanceId = env.REDFORGE_INSTANCE_ID || "standalone";
    this.runtimeId = env.REDFORGE_RUNTIME_ID || this.instanceId;
    this.mqttUrl = env.REDFORGE_MQTT_URL || "";
    this.topics = topicsOf(this.instanceId, this.runtimeId);
    this.mode = MODES.includes(env.REDFORGE_GATE_MODE) ? env.REDFORGE_GATE_MODE : "active";
    this.inFlight = new Map(); // id -> { at: entered (ms), flow: its counters }
    this.heldHttp = []; // { gate, msg } in arrival order
    this.pendingMqtt = []; // MQTT work that arrived while no source gate existed (a full deploy), or recovered from the journal
    this.journal = undefined; // see workJournal.js: accepted MQTT work survives a kill of this process
    this.journalOf = new Map(); // in-flight gate id -> journal id
    // Exited messages whose answer has not left yet: gate id -> exit time (see completed()).
    this.awaitingOutput = new Map();
    this.completionHooked = false;
    // MQTT work waits in pendingMqtt (journaled) until this process knows its mode (the retained control
    // message) and, to pass work into the flows, until their MQTT outputs are connected: see canRoute.
    this.modeKnown = !this.mqttUrl;
    this.outputsReady = false;
    this.outputsWatch = undefined;
    this.gates = new Set();
    // Client connections that carried gated work and are still open: a retired runtime is stopped only once
    // they are gone, since a keep-alive connection closed under a client races its next request (lost, not retried).
    this.clientConnections = new Set();
    this.sources = [];
    this.counters = { entered: 0, exited: 0, expired: 0, heldMqtt: 0, heldHttp: 0, refusedHttp: 0, refusedHeldHttp: 0, released: 0 };
    // Per flow (tab id): messages in (through a gate), out (through an exit), errors (see flowOf). Process-wide
    // and monotonic while this process lives; the health report carries them and Prometheus's rate() takes resets.
    this.flows = new Map();
    this.nextId = 1;
    this.client = undefined;
    this.connected = false;
    this.ttlMs = 60_000;
    this.holdLimit = 1000;
    // A held HTTP request is answered 503 + Retry-After after this long (see refuseStaleHttp).
    this.httpHoldMs = 30_000;
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  /** Replays work an earlier process of this userDir accepted and did not finish (workJournal.js), ahead of anything new. */
  openJournal(dir) {
    if (this.journal || !dir) return;
    const journal = new WorkJournal(dir);
    try {
      const recovered = journal.recover();
      this.journal = journal;
      for (const r of recovered) this.pendingMqtt.push({ topic: this.topics.active, payload: r.payload, journalId: r.id });
      if (recovered.length) this.RED.log.warn(`[redforge-gate] ${recovered.length} MQTT message(s) accepted before a restart and not finished: processed again now`);
    } catch (err) {
      this.RED.log.warn(`[redforge-gate] work journal unavailable (${err.message}); work accepted by this runtime does not survive a kill`);
    }
  }

  // ---- nodes ----

  register(gate, opts) {
    this.gates.add(gate);
    if (opts.ttlMs > 0) this.ttlMs = opts.ttlMs;
    if (opts.holdLimit > 0) this.holdLimit = opts.holdLimit;
    if (opts.source === "mqtt") {
      this.sources.push(gate);
      this.ensureMqtt();
      // Work that arrived between the old source closing and this one starting waits for the new flows' outputs.
      this.watchOutputs();
    } else if (this.mqttUrl) {
      this.ensureMqtt();
    }
    this.publishStatus();
  }

  unregister(gate) {
    this.gates.delete(gate);
    this.sources = this.sources.filter((g) => g !== gate);
    // HTTP requests held by a node being replaced are released into the old wiring now, not dropped.
    const mine = this.heldHttp.filter((h) => h.gate === gate);
    if (mine.length) {
      this.heldHttp = this.heldHttp.filter((h) => h.gate !== gate);
      for (const h of mine) this.pass(h.gate, h.msg);
    }
  }

  /** A message reaching a gate's input (HTTP-in or any other source). */
  input(gate, msg, send) {
    if (msg.req && !isSmoke(msg)) this.track(msg.req.socket);
    if (this.mode !== "drain" || isSmoke(msg)) return this.pass(gate, msg, send);
    if (msg.req && msg.res) {
      if (this.heldHttp.length >= this.holdLimit) {
        this.counters.refusedHttp++;
        this.flowOf(gate.z).errors++;
        try {
          msg.res._res.status(503).set("retry-after", "1").json({ error: { code: "gate_hold_full", message: "deployment in progress and the hold queue is full; retry shortly" } });
        } catch { /* the client went away */ }
        return;
      }
      this.counters.heldHttp++;
      this.heldHttp.push({ gate, msg, at: Date.now() });
      return;
    }
    // Any other non-HTTP message: held in memory with the HTTP ones (same order, same release).
    this.heldHttp.push({ gate, msg });
  }

  track(socket) {
    if (!socket || socket.destroyed || this.clientConnections.has(socket)) return;
    this.clientConnections.add(socket);
    socket.once("close", () => this.clientConnections.delete(socket));
  }

  pass(gate, msg, send, journalId) {
    if (this.mode === "retire" && msg.res && msg.res._res && !msg.res._res.headersSent) {
      try { msg.res._res.set("Connection", "close"); } catch { /* the client went away */ }
    }
    const id = `${this.runtimeId}:${this.nextId++}`;
    const now = Date.now();
    msg._redforge = Object.assign({}, msg._redforge, { gateId: id, enteredAt: now, runtime: this.runtimeId });
    const flow = this.flowOf(gate.z);
    flow.in++;
    this.inFlight.set(id, { at: now, flow });
    if (journalId !== undefined) this.journalOf.set(id, journalId);
    this.counters.entered++;
    (send || ((m) => gate.send(m)))(msg);
  }

  /** The exit marker: the message is done; `node` is the exit node (its flow counts the message out). */
  exit(msg, node) {
    const id = msg && msg._redforge && msg._redforge.gateId;
    if (id && this.inFlight.delete(id)) this.counters.exited++;
    // The journal forgets it once its answer has left this process (completed()), not at the exit: a kill
    // between the exit and the mqtt-out publish reaching the broker lost 153 answers at 200 msg/s.
    if (id && this.journalOf.has(id)) {
      if (this.completionHooked) this.awaitingOutput.set(id, Date.now());
      else this.finish(id);
    }
    if (!node) return;
    const flow = this.flowOf(node.z);
    flow.out++;
    // The message contract's error field: the flow finished this message on its error path.
    if (msg && msg.error) flow.errors++;
  }

  /**
   * A flow's counters. Errors: messages that left through an exit carrying `msg.error`, HTTP work the gate
   * refused (hold full), and in-flight entries dropped after their TTL (lost downstream, e.g. a node threw).
   * A Map lookup per message: no allocation on the hot path once a flow has been seen.
   */
  flowOf(flowId) {
    const key = flowId || "";
    let f = this.flows.get(key);
    if (!f) this.flows.set(key, (f = { flowId: key, in: 0, out: 0, errors: 0 }));
    return f;
  }

  /** Totals over every flow, and the busiest flows (bounded, so the status stays small). */
  messageCounters() {
    const total = { in: 0, out: 0, errors: 0 };
    for (const f of this.flows.values()) { total.in += f.in; total.out += f.out; total.errors += f.errors; }
    const flows = [...this.flows.values()].sort((a, b) => b.in + b.out - a.in - a.out).slice(0, MAX_FLOWS_REPORTED).map((f) => Object.assign({}, f));
    return { total, flows };
  }

  /**
   * Node-RED's onComplete hook: a node finished with a message (mqtt-out calls done after the broker's
   * PUBACK at QoS 1). An exited message is done once a node at the end of its path (no outgoing wires)
   * completes it without an error; one whose answer never leaves is given up after the TTL (tick).
   */
  completed(event) {
    const id = event && event.msg && event.msg._redforge && event.msg._redforge.gateId;
    if (!id || event.error || !this.awaitingOutput.has(id)) return;
    const node = event.node && event.node.node;
    const terminal = !node || !Array.isArray(node.wires) || node.wires.every((w) => !w || w.length === 0);
    if (!terminal) return;
    this.awaitingOutput.delete(id);
    this.finish(id);
  }

  /** The message behind gate id `id` is done (exited, or given up on): the journal forgets it. */
  finish(id) {
    const journalId = this.journalOf.get(id);
    if (journalId === undefined) return;
    this.journalOf.delete(id);
    if (this.journal) this.journal.done(journalId);
  }

  // ---- modes ----

  setMode(mode) {
    if (!MODES.includes(mode)) throw new Error(`unknown gate mode ${mode}`);
    // Told a mode (control topic or Admin API): MQTT work that waited for it can go (flushPending).
    this.modeKnown = true;
    if (mode === this.mode) return this.flushPending();
    this.mode = mode;
    if (mode !== "drain") {
      const held = this.heldHttp.splice(0);
      this.counters.released += held.length;
      for (const h of held) this.pass(h.gate, h.msg);
    }
    this.flushPending();
    this.publishStatus();
  }

  status() {
    const cpu = process.cpuUsage();
    const messages = this.messageCounters();
    return {
      instanceId: this.instanceId,
      runtimeId: this.runtimeId,
      mode: this.mode,
      inFlight: this.inFlight.size,
      heldHttp: this.heldHttp.length,
      // MQTT work accepted and waiting for this runtime's mode or its flows' outputs (journaled).
      pendingMqtt: this.pendingMqtt.length,
      openHttp: this.clientConnections.size,
      gates: this.gates.size,
      sources: this.sources.length,
      mqtt: this.mqttUrl ? (this.connected ? "connected" : "disconnected") : "off",
      counters: Object.assign({}, this.counters),
      // This Node-RED process's CPU time (user + system) since it started, for redforge_instance_cpu_seconds_total.
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      messages: messages.total,
      flows: messages.flows,
      at: new Date().toISOString(),
    };
  }

  /**
   * An HTTP request held longer than httpHoldMs is refused (503 + Retry-After) instead of waiting for a
   * release that may be minutes away (a host restart, a control plane that is away): its client gave up
   * long before, so it would hang, not be answered (issue 12 (g)). Refused is honest; it is counted.
   */
  refuseStaleHttp() {
    const cutoff = Date.now() - this.httpHoldMs;
    while (this.heldHttp.length && this.heldHttp[0].at !== undefined && this.heldHttp[0].at < cutoff && this.heldHttp[0].msg.res) {
      const { msg } = this.heldHttp.shift();
      this.counters.refusedHttp++;
      // Of refusedHttp, the ones also counted in heldHttp (the deployment's accounting must not call them lost too).
      this.counters.refusedHeldHttp++;
      try {
        msg.res._res.status(503).set("retry-after", "2").set("connection", "close").json({ error: { code: "gate_hold_timeout", message: "held too long while a deployment moves this instance; retry shortly" } });
      } catch { /* the client went away */ }
    }
  }

  tick() {
    const gaveUp = Date.now() - this.ttlMs;
    for (const [id, at] of this.awaitingOutput) {
      if (at >= gaveUp) break;
      this.awaitingOutput.delete(id);
      this.finish(id);
    }
    this.refuseStaleHttp();
    const cutoff = Date.now() - this.ttlMs;
    for (const [id, entry] of this.inFlight) {
      if (entry.at >= cutoff) break; // Map keeps insertion order: the rest are younger
      this.inFlight.delete(id);
      this.counters.expired++;
      entry.flow.errors++;
      this.finish(id);
    }
    this.publishStatus();
  }

  // ---- MQTT ----

  ensureMqtt() {
    if (this.client || !this.mqttUrl) return;
    // A persistent session: work published to our active topic while this process restarts waits in the broker.
    this.client = connectMqtt(this.mqttUrl, `rf-gate-${this.runtimeId}`.slice(0, 64), { clean: false, reconnectPeriod: 500 });
    this.client.on("connect", () => {
      this.connected = true;
      // The mode first: a restarted gate gets its session's backlog right after connecting, before the
      // retained control message; that backlog waits (journaled) until the mode is known, or a moment
      // after the control subscription is acknowledged when no mode was ever published.
      this.client.subscribe(this.topics.control, { qos: 1 }, () => {
        setTimeout(() => { if (!this.modeKnown) { this.modeKnown = true; this.flushPending(); } }, 1000).unref();
      });
      this.client.subscribe(this.topics.active, { qos: 1 });
      this.publishStatus();
    });
    this.client.on("close", () => { this.connected = false; });
    this.client.on("error", (err) => this.RED.log.warn(`[redforge-gate] mqtt: ${err.message}`));
    this.client.on("message", (topic, payload) => {
      if (topic === this.topics.control) return this.onControl(payload);
      if (topic === this.topics.active) return this.onWork(topic, payload);
    });
  }

  onControl(payload) {
    try {
      const v = JSON.parse(payload.toString());
      if (v && MODES.includes(v.mode)) this.setMode(v.mode);
    } catch (err) {
      this.RED.log.warn(`[redforge-gate] ignoring control message: ${err.message}`);
    }
  }

  /**
   * Node-RED's mqtt-out drops a message silently while its broker connection is not up (10-mqtt.js
   * `publish`: nothing happens unless `connected`, and `done` is never called). A Node-RED that just
   * started (a host restart) connects its mqtt-broker nodes about a second after "Started flows", while
   * the broker hands this gate its session's backlog at once: every answer of that second was dropped
   * (issue 12 (g): thousands at 500 msg/s). So work enters the flows only once every mqtt-broker config
   * node of this runtime is connected (or after 15 s, with a warning: a broker that never connects must
   * not stop the runtime for good).
   */
  watchOutputs() {
    this.outputsReady = false;
    clearInterval(this.outputsWatch);
    const t0 = Date.now();
    const check = () => {
      const brokers = [];
      try {
        this.RED.nodes.eachNode((n) => { if (n.type === "mqtt-broker") brokers.push(this.RED.nodes.getNode(n.id)); });
      } catch { /* an API this Node-RED lacks: nothing to wait for */ }
      const waiting = brokers.filter((b) => b && !b.connected).length;
      if (waiting && Date.now() - t0 < 15_000) return;
      if (waiting) this.RED.log.warn(`[redforge-gate] ${waiting} mqtt-broker node(s) still not connected after 15 s: passing work on anyway`);
      clearInterval(this.outputsWatch);
      this.outputsReady = true;
      this.flushPending();
    };
    this.outputsWatch = setInterval(check, 100);
    this.outputsWatch.unref();
    check();
  }

  /** Whether `payload` can go where it belongs now (the hold topic, or the flows). */
  canRoute(payload) {
    if (!this.modeKnown) return false;
    if (this.mode === "drain" || isEndOfHold(payload)) return Boolean(this.client);
    return Boolean(this.sources[0]) && this.outputsReady;
  }

  flushPending() {
    while (this.pendingMqtt.length && this.canRoute(this.pendingMqtt[0].payload)) {
      const p = this.pendingMqtt.shift();
      this.route(p.topic, p.payload, p.journalId);
    }
  }

  /**
   * Runs synchronously inside mqtt.js's handling of the message, before its PUBACK: whatever this
   * process keeps (in its flows, or pending) is journaled first (workJournal.js). Behind pending work, in order.
   */
  onWork(topic, payload, journalId) {
    if (this.pendingMqtt.length || !this.canRoute(payload)) {
      const id = journalId !== undefined ? journalId : (this.journal ? this.journal.received(payload) : undefined);
      this.pendingMqtt.push({ topic, payload, journalId: id });
      return;
    }
    this.route(topic, payload, journalId);
  }

  route(topic, payload, journalId) {
    const marker = isEndOfHold(payload);
    // Draining, or the marker that closes a hold: onto the hold topic, in arrival order.
    if (this.mode === "drain" || marker) {
      this.counters.heldMqtt++;
      // A copy written now goes out on this connection ahead of the incoming message's PUBACK, so after a
      // kill the broker has one or the other: no journal (journaling it anyway redid thousands of copies the
      // broker had, answered twice, in a (g) bench run). Not so right after a reconnect: mqtt.js keeps new
      // publishes in memory while it resends its store, and sends the PUBACK at once (issue 12 (g): 706
      // held messages of a restarted blue went so). Then the message is journaled (a marker is not work)
      // and done only once the broker has the copy; one already journaled (recovered, pending) likewise.
      const id = journalId !== undefined || marker || this.writesNow() ? journalId : (this.journal ? this.journal.received(payload) : undefined);
      const journal = this.journal;
      this.publishKept(this.topics.hold, payload, journal && id !== undefined ? () => journal.done(id) : undefined);
      return;
    }
    const id = journalId !== undefined ? journalId : (this.journal ? this.journal.received(payload) : undefined);
    const source = this.sources[0];
    const text = payload.toString();
    let value = text;
    try { value = JSON.parse(text); } catch { /* not JSON: the text */ }
    this.pass(source, { topic, payload: value }, undefined, id);
  }

  /**
   * Whether a publish issued now is written to the connection at once (so it precedes the PUBACK mqtt.js
   * sends for the message being handled). mqtt.js 5 queues it in memory instead while disconnected or while
   * it resends its outgoing store after a reconnect (`_storeProcessing`, `_storeProcessingQueue`, not public
   * API: an mqtt.js without them is treated as "not at once", which costs a journal write, never a message).
   */
  writesNow() {
    const c = this.client;
    if (!c || !c.connected || typeof c._storeProcessing !== "boolean" || !Array.isArray(c._storeProcessingQueue)) return false;
    return !c._storeProcessing && c._storeProcessingQueue.length === 0;
  }

  /**
   * A QoS 1 publish a dropped connection does not lose. mqtt.js fails a publish it queued in memory (issued
   * while it resends its store after a reconnect) with "Connection closed" when the connection drops again,
   * never written; issued again, it goes to the outgoing store (in order) and out after the reconnect.
   * (bridge/routing/mqttFront.ts publishKept, the same for the fronts.)
   */
  publishKept(topic, payload, onStored) {
    const client = this.client;
    client.publish(topic, payload, { qos: 1 }, (err) => {
      if (!err) return onStored && onStored();
      if (err.message === "Connection closed" && !client.disconnecting) return this.publishKept(topic, payload, onStored);
      this.RED.log.warn(`[redforge-gate] publish to ${topic} failed: ${err.message} (journaled: processed again by the next process on this userDir)`);
    });
  }

  publishStatus() {
    if (!this.client || !this.connected) return;
    this.client.publish(this.topics.status, JSON.stringify(this.status()), { qos: 0, retain: true });
  }
}

function isSmoke(msg) {
  const h = msg.req && msg.req.headers;
  return Boolean(h && h["x-redforge-smoke"]);
}

/** The health report's bound on flows per instance (protocol/reports.ts). */
const MAX_FLOWS_REPORTED = 100;

let runtime;

/** The one gate runtime of this Node-RED process, with its admin routes. */
function gateRuntime(RED) {
  if (runtime) return runtime;
  runtime = new GateRuntime(RED, process.env);
  // Only under RedForge (the bridge sets the instance): a standalone Node-RED keeps no journal.
  if (process.env.REDFORGE_INSTANCE_ID) runtime.openJournal(RED.settings.userDir);
  if (runtime.journal && RED.hooks && typeof RED.hooks.add === "function") {
    RED.hooks.add("onComplete.redforge", (event) => { runtime.completed(event); });
    runtime.completionHooked = true;
  }
  const read = RED.auth.needsPermission("flows.read");
  const write = RED.auth.needsPermission("flows.write");
  RED.httpAdmin.get("/redforge/gate", read, (_req, res) => res.json(runtime.status()));
  RED.httpAdmin.post("/redforge/gate", write, (req, res) => {
    const mode = req.body && req.body.mode;
    if (!MODES.includes(mode)) {
      return res.status(400).json({ error: { code: "invalid_mode", message: "mode must be \"active\", \"drain\" or \"retire\"" } });
    }
    runtime.setMode(mode);
    res.json(runtime.status());
  });
  return runtime;
}

module.exports = { gateRuntime, END_OF_HOLD };
