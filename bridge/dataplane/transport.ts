/**
 * One request to a data plane's control socket, answers parsed with the
 * protocol's schemas. Two failure kinds, because the client treats them
 * differently: DataPlaneUnreachable (nothing listens: start one) and
 * DataPlaneCallFailed (it answered with an error: the caller's problem).
 */
import http from "node:http";
import type { z } from "zod";
import { errorBody, pingResult, type DataPlaneErrorCode } from "./protocol.ts";

export class DataPlaneUnreachable extends Error {}

export class DataPlaneCallFailed extends Error {
  constructor(readonly code: DataPlaneErrorCode, message: string) {
    super(message);
  }
}

// One keep-alive connection pool per process: a hand-over is a handful of calls in a row.
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** `fresh`: a new connection, never a pooled one (a ping must reach whoever listens on the path now). */
export function requestDataPlane<S extends z.ZodType>(socketPath: string, method: "GET" | "POST", route: string, body: unknown, schema: S, timeoutMs: number, fresh = false): Promise<z.infer<S>> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({
      socketPath, method, path: route, agent: fresh ? false : agent, timeout: timeoutMs,
      headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {},
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        let json: unknown;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          return reject(new Error(`data plane answered ${route} with a body that is not JSON (status ${res.statusCode})`));
        }
        if (res.statusCode !== 200) {
          const err = errorBody.safeParse(json);
          return reject(err.success ? new DataPlaneCallFailed(err.data.error.code, err.data.error.message) : new Error(`data plane answered ${route} with status ${res.statusCode}`));
        }
        const parsed = schema.safeParse(json);
        if (!parsed.success) return reject(new Error(`data plane answered ${route} with an unexpected shape: ${parsed.error.message}`));
        resolve(parsed.data);
      });
    });
    req.on("timeout", () => req.destroy(new Error(`data plane did not answer ${route} within ${timeoutMs} ms`)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      // Nothing listens (never started, killed: a stale socket file) or the connection dropped as it died.
      if (err.code === "ENOENT" || err.code === "ECONNREFUSED" || err.code === "ECONNRESET" || err.code === "EPIPE") {
        return reject(new DataPlaneUnreachable(`data plane at ${socketPath} is not reachable (${err.code})`));
      }
      reject(err);
    });
    req.end(payload);
  });
}

/** A bridge's open lease on its data plane (lease.ts). */
export interface Lease {
  /** Resolves when the connection ends (the data plane died or stopped). */
  ended: Promise<void>;
  /** Lets go (the bridge closes or restarts on purpose). */
  release(): void;
}

/** Opens `POST /lease` on its own connection (never pooled: it stays open) and resolves once the data plane granted it. */
export function openLease(socketPath: string, leaseMs: number | undefined, timeoutMs = 30_000): Promise<Lease> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(leaseMs === undefined ? {} : { leaseMs });
    let endedResolve!: () => void;
    const ended = new Promise<void>((r) => { endedResolve = r; });
    const req = http.request({ socketPath, method: "POST", path: "/lease", agent: false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } });
    const timer = setTimeout(() => req.destroy(new Error(`data plane did not grant a lease within ${timeoutMs} ms`)), timeoutMs);
    req.on("response", (res) => {
      if (res.statusCode !== 200) {
        clearTimeout(timer);
        res.resume();
        req.destroy();
        return reject(new Error(`data plane refused the lease (status ${res.statusCode})`));
      }
      res.once("data", () => {
        clearTimeout(timer);
        // Nothing keeps the bridge's event loop alive for this connection: a bridge that is done may exit.
        req.socket?.unref();
        resolve({ ended, release: () => req.destroy() });
      });
      res.on("data", () => {});
      res.once("close", endedResolve);
    });
    req.on("error", (err) => {
      clearTimeout(timer);
      endedResolve();
      reject(err);
    });
    req.end(payload);
  });
}

export function pingDataPlane(socketPath: string, timeoutMs = 5_000): Promise<z.infer<typeof pingResult>> {
  return requestDataPlane(socketPath, "GET", "/ping", undefined, pingResult, timeoutMs, true);
}
