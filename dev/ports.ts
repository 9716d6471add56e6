import net from "node:net";
import { readFileSync } from "node:fs";
import { osPort, portFree } from "../bridge/drivers/process/ports.ts";

/** Thrown when a configured port is taken; the message says which knob moves it. */
export class PortInUseError extends Error {
  constructor(readonly port: number, readonly what: string, readonly envVar?: string) {
    super(
      `port ${port} (${what}) is already in use` +
        (envVar ? `; stop whatever holds it or set ${envVar} to a free port` : ""),
    );
    this.name = "PortInUseError";
  }
}

/** Resolves if nothing listens on host:port, rejects with PortInUseError otherwise. */
export function assertPortFree(port: number, what: string, envVar?: string, host = "127.0.0.1"): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" || err.code === "EACCES" ? new PortInUseError(port, what, envVar) : err),
    );
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve()));
  });
}

/** True when something accepts TCP connections on host:port within timeoutMs. */
export function isReachable(port: number, host = "127.0.0.1", timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok: boolean) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/**
 * The OS's ephemeral range ([low, high]); every port-0 listener (a Node-RED the
 * process driver starts, a test's own server) and every outgoing connection's
 * local port comes from it.
 */
function ephemeralRange(): [number, number] {
  try {
    const [lo = NaN, hi = NaN] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi) && lo > 0 && hi >= lo) return [lo, hi];
  } catch { /* not Linux */ }
  return [49152, 65535]; // IANA's dynamic range, the default elsewhere
}

// Handed out by this process recently: a caller often asks for several before binding any.
const handedOut = new Map<number, number>();
const HELD_MS = 10 * 60_000;

/**
 * A port that is free now, picked at random *below* the OS's ephemeral range.
 * A port the OS offers for port 0 can be claimed by any other port-0 listener
 * in the gap before its caller binds it (clean-clone CI failed when wrangler's
 * inspector port, picked that way, went to a parallel test's server during
 * wrangler's few seconds of start-up); below the range only another freePort
 * caller can take it, and the random pick over thousands of ports makes that rare.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const [lo] = ephemeralRange();
  const from = Math.max(10_000, lo - 12_000);
  const now = Date.now();
  for (const [p, at] of handedOut) if (now - at > HELD_MS) handedOut.delete(p);
  if (lo - from >= 1_000) {
    for (let tries = 0; tries < 64; tries++) {
      const port = from + Math.floor(Math.random() * (lo - from));
      if (handedOut.has(port) || !(await portFree(port, host))) continue;
      handedOut.set(port, now);
      return port;
    }
  }
  return osPort(host); // no room below the range (or all taken): the OS's choice
}

/** Binds a server and resolves once it listens, rejecting (not crashing) when the bind fails. */
export function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host, exclusive: true }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
