import net from "node:net";
import { osPort } from "../bridge/drivers/process/ports.ts";

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

/** Asks the OS for a free port (tests use this so parallel runs never collide). */
export const freePort = (host = "127.0.0.1"): Promise<number> => osPort(host);

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
