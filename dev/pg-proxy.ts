/**
 * The relay's WebSocket sessions, authenticated the way Neon's proxy does it:
 * the relay asks the client for its password in cleartext (over the tunnel,
 * as Neon does over TLS), logs in to Postgres itself, and serves the client a
 * backend from a pool of logged-in ones.
 *
 * Why: a plain tunnel made the driver do SCRAM-SHA-256 itself, and
 * `@neondatabase/serverless` computes the 4,096-iteration PBKDF2 with its
 * bundled pure-JS SHA-256: ~140 ms of CPU per connect, paid by every write
 * transaction of the Worker (docs/performance.md). Against Neon the driver
 * sends its password pipelined and never hashes anything; with this relay the
 * local stack pays what production pays (a round trip, no PBKDF2), and the
 * driver's production default `pipelineConnect: "password"` works too.
 *
 * A backend returns to the pool only when its client said goodbye (Terminate)
 * with nothing in flight; the relay then runs ROLLBACK and DISCARD ALL on it
 * (session settings, prepared statements, temp tables, LISTENs and session
 * advisory locks all go), as pgbouncer's session pooling does. A client that
 * vanishes mid-session takes its backend with it.
 */
import net from "node:net";
import type { WebSocket, RawData } from "ws";
import {
  CANCEL_REQUEST, GSSENC_REQUEST, MessageBoundaries, PROTOCOL_3, SSL_REQUEST, ScramClient, WireReader,
  authentication, errorFields, fatal, md5Password, passwordMessage, passwordOf, readyForQuery, simpleQuery,
  startupParameters, terminate,
} from "./pg-wire.ts";

export interface Backend {
  socket: net.Socket;
  /** ParameterStatus and BackendKeyData from its login, replayed to every client it serves. */
  greeting: Buffer;
}

/** A login Postgres refused: its ErrorResponse goes to the client as is. */
class LoginRefused extends Error {
  constructor(readonly wire: Buffer) {
    super(errorFields(wire.subarray(5)).M ?? "login refused");
  }
}

const CONNECT_TIMEOUT_MS = 10_000;

/** Logs in to Postgres with the client's own startup packet and password. */
export function openBackend(host: string, port: number, startup: Buffer, password: string): Promise<Backend> {
  const user = startupParameters(startup).user ?? "";
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    const reader = new WireReader();
    const greeting: Buffer[] = [];
    let scram: ScramClient | undefined;
    const timer = setTimeout(() => fail(new Error(`no login to ${host}:${port} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const onMessage = (type: string, body: Buffer, raw: Buffer): boolean => {
      if (type === "E") throw new LoginRefused(raw);
      if (type === "Z") return true;
      if (type !== "R") {
        greeting.push(raw); // ParameterStatus, BackendKeyData, NoticeResponse
        return false;
      }
      const code = body.readInt32BE(0);
      if (code === 3) socket.write(passwordMessage(password));
      else if (code === 5) socket.write(passwordMessage(md5Password(user, password, body.subarray(4, 8))));
      else if (code === 10) {
        if (!body.subarray(4).toString("utf8").split("\0").includes("SCRAM-SHA-256")) throw new Error("no SASL mechanism the relay speaks");
        scram = new ScramClient(password);
        socket.write(scram.initialResponse());
      } else if (code === 11 && scram) socket.write(scram.continueResponse(body.subarray(4).toString("utf8")));
      else if (code === 12 && scram) scram.verifyFinal(body.subarray(4).toString("utf8"));
      else if (code !== 0) throw new Error(`authentication method ${code} is not supported by the relay`);
      return false;
    };
    socket.on("data", (chunk: Buffer) => {
      reader.push(chunk);
      try {
        for (let m = reader.message(); m; m = reader.message()) {
          if (!onMessage(m.type, m.body, m.raw)) continue;
          clearTimeout(timer);
          socket.removeAllListeners("data");
          socket.removeAllListeners("error");
          socket.removeAllListeners("close");
          socket.on("error", () => socket.destroy());
          resolve({ socket, greeting: Buffer.concat(greeting) });
          return;
        }
      } catch (err) {
        fail(err as Error);
      }
    });
    socket.on("connect", () => socket.write(startup));
    socket.on("error", fail);
    socket.on("close", () => fail(new Error("Postgres closed the connection during login")));
  });
}

/** Idle logged-in backends by (address, startup packet, password). */
export class BackendPool {
  private readonly idle = new Map<string, Backend[]>();
  /** Logins made, and sessions served from an idle backend (for tests and benches). */
  readonly stats = { opened: 0, reused: 0 };

  constructor(private readonly maxIdlePerKey = 32, private readonly idleMs = 10_000) {}

  async acquire(key: string, open: () => Promise<Backend>): Promise<Backend> {
    const list = this.idle.get(key);
    while (list?.length) {
      const b = list.pop()!;
      clearTimeout((b as IdleBackend).idleTimer);
      b.socket.removeAllListeners("data");
      b.socket.removeAllListeners("close");
      b.socket.removeAllListeners("error");
      b.socket.on("error", () => b.socket.destroy());
      if (!b.socket.destroyed && b.socket.readyState === "open") {
        this.stats.reused++;
        return b;
      }
    }
    const b = await open();
    this.stats.opened++;
    return b;
  }

  release(key: string, b: Backend): void {
    const list = this.idle.get(key) ?? [];
    if (list.length >= this.maxIdlePerKey) return end(b);
    this.idle.set(key, list);
    list.push(b);
    const drop = () => {
      const at = list.indexOf(b);
      if (at >= 0) list.splice(at, 1);
      b.socket.destroy();
    };
    // Idle backends still get asynchronous messages (a notice, a FATAL before
    // an admin or DROP DATABASE ... FORCE terminates them): read and ignore.
    b.socket.on("data", () => {});
    b.socket.on("close", drop);
    b.socket.on("error", drop);
    (b as IdleBackend).idleTimer = setTimeout(() => {
      const at = list.indexOf(b);
      if (at >= 0) list.splice(at, 1);
      end(b);
    }, this.idleMs).unref();
  }

  closeAll(): void {
    for (const list of this.idle.values()) for (const b of list.splice(0)) end(b);
  }
}

interface IdleBackend extends Backend {
  idleTimer?: ReturnType<typeof setTimeout>;
}

function end(b: Backend): void {
  b.socket.removeAllListeners("data");
  b.socket.on("error", () => {});
  b.socket.end(terminate());
  setTimeout(() => b.socket.destroy(), 2_000).unref();
}

/** Bytes from Postgres not yet flushed to the WebSocket before we stop reading (a big result set). */
const HIGH_WATER = 4 * 1024 * 1024;

const toBuffer = (data: RawData) => (Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));

/**
 * One client WebSocket: startup, cleartext password, a pooled backend, then
 * bytes both ways. `host`/`port` is the (loopback) Postgres the client named.
 */
export function proxySession(ws: WebSocket, host: string, port: number, pool: BackendPool, log: (l: string) => void): void {
  const reader = new WireReader();
  let phase: "startup" | "password" | "login" | "open" | "done" = "startup";
  let startup: Buffer = Buffer.alloc(0);
  let key = "";
  let backend: Backend | undefined;
  const early: Buffer[] = [];

  const refuse = (wire: Buffer) => {
    phase = "done";
    ws.send(wire, () => ws.close(1000));
  };

  ws.on("message", (data: RawData) => {
    const chunk = toBuffer(data);
    if (phase === "open") return void forward(chunk);
    if (phase === "login") return void early.push(chunk);
    if (phase === "done") return;
    reader.push(chunk);
    try {
      handshake();
    } catch (err) {
      refuse(fatal("08P01", `relay: ${(err as Error).message}`));
    }
  });
  ws.on("close", () => {
    if (phase === "open" && backend) backend.socket.destroy(); // gone mid-session: what it left is unknown
    phase = "done";
  });
  ws.on("error", () => ws.terminate());

  function handshake(): void {
    while (phase === "startup") {
      const packet = reader.startupPacket();
      if (!packet) return;
      const code = packet.readInt32BE(4);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        ws.send(Buffer.from("N")); // no TLS inside the tunnel (Neon terminates TLS on the WebSocket)
      } else if (code === CANCEL_REQUEST) {
        // A cancel carries the real backend's key (replayed in the greeting): pass it on as is.
        phase = "done";
        net.connect({ host, port }).on("error", () => {}).end(packet);
        ws.close(1000);
      } else if (code === PROTOCOL_3) {
        startup = packet;
        phase = "password";
        ws.send(authentication(3));
      } else {
        throw new Error(`unsupported protocol ${code >> 16}.${code & 0xffff}`);
      }
    }
    if (phase !== "password") return;
    const m = reader.message();
    if (!m) return;
    // Neon's driver sends this before being asked (pipelineConnect "password"), queries may follow it.
    if (m.type !== "p") throw new Error(`expected a password message, got '${m.type}'`);
    const password = passwordOf(m.body);
    const rest = reader.rest();
    if (rest.length) early.push(rest);
    phase = "login";
    key = `${host}:${port}\0${startup.toString("latin1")}\0${password}`;
    pool.acquire(key, () => openBackend(host, port, startup, password)).then(
      (b) => {
        if (phase !== "login") return pool.release(key, b); // the client left while we logged in; b is clean
        backend = b;
        phase = "open";
        ws.send(Buffer.concat([authentication(0), b.greeting, readyForQuery("I")]));
        wire(b);
        for (const c of early.splice(0)) forward(c);
      },
      (err: Error) => {
        log(`[ws] login to ${host}:${port} failed: ${err.message}`);
        refuse(err instanceof LoginRefused ? err.wire : fatal("08006", `relay: ${err.message}`));
      },
    );
  }

  const fromClient = new MessageBoundaries();
  const fromServer = new MessageBoundaries();
  /** ReadyForQuery messages still owed: one per simple Query, Sync or FunctionCall sent. */
  let owed = 0;
  let unsent = 0;

  function wire(b: Backend): void {
    b.socket.on("data", (chunk: Buffer) => {
      fromServer.feed(chunk, (type) => { if (type === "Z") owed--; });
      unsent += chunk.length;
      ws.send(chunk, { binary: true }, () => {
        unsent -= chunk.length;
        if (unsent < HIGH_WATER / 2 && b.socket.isPaused()) b.socket.resume();
      });
      if (unsent > HIGH_WATER) b.socket.pause();
    });
    b.socket.on("error", (err) => log(`[ws] ${host}:${port}: ${err.message}`));
    b.socket.on("close", () => {
      if (phase === "open") ws.close(1000);
      phase = "done";
    });
  }

  function forward(chunk: Buffer): void {
    const b = backend!;
    let terminateAt: number | undefined;
    fromClient.feed(chunk, (type, start) => {
      if (type === "Q" || type === "S" || type === "F") owed++;
      else if (type === "X" && terminateAt === undefined) terminateAt = start;
    });
    if (terminateAt === undefined) {
      if (!b.socket.write(chunk)) {
        ws.pause();
        b.socket.once("drain", () => ws.resume());
      }
      return;
    }
    // Terminate: the client is done with the session, not the backend with Postgres.
    if (terminateAt > 0) b.socket.write(chunk.subarray(0, terminateAt));
    phase = "done";
    ws.close(1000);
    const clean = terminateAt >= 0 && owed === 0 && fromServer.atBoundary;
    if (clean) recycle(b);
    else b.socket.destroy();
  }

  function recycle(b: Backend): void {
    b.socket.removeAllListeners("data");
    b.socket.removeAllListeners("close");
    b.socket.removeAllListeners("error");
    const replies = new MessageBoundaries();
    let ready = 0;
    let failed = false;
    b.socket.on("data", (chunk: Buffer) => {
      replies.feed(chunk, (type) => {
        if (type === "E") failed = true;
        if (type === "Z") ready++;
      });
      if (ready < 2 || !replies.atBoundary) return;
      b.socket.removeAllListeners("data");
      b.socket.removeAllListeners("error");
      b.socket.removeAllListeners("close");
      if (failed || replies.lastStatus !== "I") b.socket.destroy();
      else pool.release(key, b);
    });
    b.socket.on("error", () => b.socket.destroy());
    b.socket.on("close", () => {});
    // ROLLBACK outside a transaction is only a warning; DISCARD ALL may not run inside one.
    b.socket.write(Buffer.concat([simpleQuery("ROLLBACK"), simpleQuery("DISCARD ALL")]));
  }
}
