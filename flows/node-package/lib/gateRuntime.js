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
    this.inFlight = new Map(); // id -> entered at (ms)
    this.heldHttp = []; // { gate, msg } in arrival order
    this.pendingMqtt = []; // MQTT work that arrived while no source gate existed (a full deploy)
    this.gates = new Set();
    // Client connections that carried gated work and are still open: a retired runtime is stopped only once
    // they are gone, since a keep-alive connection closed under a client races its next request (lost, not retried).
    this.clientConnections = new Set();
    this.sources = [];
    this.counters = { entered: 0, exited: 0, expired: 0, heldMqtt: 0, heldHttp: 0, refusedHttp: 0, released: 0 };
    this.nextId = 1;
    this.client = undefined;
    this.connected = false;
    this.ttlMs = 60_000;
    this.holdLimit = 1000;
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  // ---- nodes ----

  register(gate, opts) {
    this.gates.add(gate);
    if (opts.ttlMs > 0) this.ttlMs = opts.ttlMs;
    if (opts.holdLimit > 0) this.holdLimit = opts.holdLimit;
    if (opts.source === "mqtt") {
      this.sources.push(gate);
      this.ensureMqtt();
      // Work that arrived between the old source closing and this one starting.
      const pending = this.pendingMqtt.splice(0);
      for (const p of pending) this.onWork(p.topic, p.payload);
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
        try {
          msg.res._res.status(503).set("retry-after", "1").json({ error: { code: "gate_hold_full", message: "deployment in progress and the hold queue is full; retry shortly" } });
        } catch { /* the client went away */ }
        return;
      }
      this.counters.heldHttp++;
      this.heldHttp.push({ gate, msg });
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

  pass(gate, msg, send) {
    if (this.mode === "retire" && msg.res && msg.res._res && !msg.res._res.headersSent) {
      try { msg.res._res.set("Connection", "close"); } catch { /* the client went away */ }
    }
    const id = `${this.runtimeId}:${this.nextId++}`;
    msg._redforge = Object.assign({}, msg._redforge, { gateId: id, enteredAt: Date.now(), runtime: this.runtimeId });
    this.inFlight.set(id, Date.now());
    this.counters.entered++;
    (send || ((m) => gate.send(m)))(msg);
  }

  /** The exit marker: the message is done. */
  exit(msg) {
    const id = msg && msg._redforge && msg._redforge.gateId;
    if (id && this.inFlight.delete(id)) this.counters.exited++;
  }

  // ---- modes ----

  setMode(mode) {
    if (!MODES.includes(mode)) throw new Error(`unknown gate mode ${mode}`);
    if (mode === this.mode) return;
    this.mode = mode;
    if (mode !== "drain") {
      const held = this.heldHttp.splice(0);
      this.counters.released += held.length;
      for (const h of held) this.pass(h.gate, h.msg);
    }
    this.publishStatus();
  }

  status() {
    return {
      instanceId: this.instanceId,
      runtimeId: this.runtimeId,
      mode: this.mode,
      inFlight: this.inFlight.size,
      heldHttp: this.heldHttp.length,
      openHttp: this.clientConnections.size,
      gates: this.gates.size,
      sources: this.sources.length,
      mqtt: this.mqttUrl ? (this.connected ? "connected" : "disconnected") : "off",
      counters: Object.assign({}, this.counters),
      at: new Date().toISOString(),
    };
  }

  tick() {
    const cutoff = Date.now() - this.ttlMs;
    for (const [id, at] of this.inFlight) {
      if (at >= cutoff) break; // Map keeps insertion order: the rest are younger
      this.inFlight.delete(id);
      this.counters.expired++;
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
      this.client.subscribe([this.topics.control, this.topics.active], { qos: 1 });
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

  onWork(topic, payload) {
    // Draining, or the marker that closes a hold: onto the hold topic, in arrival order.
    if (this.mode === "drain" || isEndOfHold(payload)) {
      this.counters.heldMqtt++;
      this.client.publish(this.topics.hold, payload, { qos: 1 });
      return;
    }
    const source = this.sources[0];
    if (!source) {
      this.pendingMqtt.push({ topic, payload });
      return;
    }
    const text = payload.toString();
    let value = text;
    try { value = JSON.parse(text); } catch { /* not JSON: the text */ }
    this.pass(source, { topic, payload: value });
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

let runtime;

/** The one gate runtime of this Node-RED process, with its admin routes. */
function gateRuntime(RED) {
  if (runtime) return runtime;
  runtime = new GateRuntime(RED, process.env);
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
