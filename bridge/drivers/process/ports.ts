/**
 * Ports for the process driver's runtimes and fronts: anywhere the OS offers,
 * or inside a configured range (edge boxes whose firewall opens only that range).
 */
import net from "node:net";
import fs from "node:fs/promises";
import path from "node:path";
import { BridgeError } from "../../errors.ts";

export type PortRange = [number, number];

/** True if nothing listens on host:port (an exclusive bind succeeds). */
export function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A port the OS considers free right now (the local stack and tests use it too: dev/ports.ts). */
export function osPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A port nothing listens on and no known instance holds. Stopped instances keep
 * their ports while nothing listens there, so "free at the OS" is not enough:
 * handing one out again would make that instance's next start fail with EADDRINUSE.
 */
export async function allocatePort(host: string, reserved: Set<number>, range?: PortRange): Promise<number> {
  if (!range) {
    // The OS picks from its whole ephemeral range, so a held port comes back only rarely.
    for (let tries = 0; tries < 20; tries++) {
      const port = await osPort(host);
      if (!reserved.has(port)) return port;
    }
    throw new BridgeError("no_free_port", "no free port: the OS keeps offering ports that instances hold");
  }
  const [from, to] = range;
  for (let port = from; port <= to; port++) {
    if (!reserved.has(port) && (await portFree(port, host))) return port;
  }
  throw new BridgeError("no_free_port", `no free port left in ${from}-${to} for another Node-RED instance`);
}

/** Ports recorded by every instance saved under stateDir, running or not. */
export async function savedPorts(stateDir: string): Promise<number[]> {
  const ids = await fs.readdir(stateDir).catch(() => [] as string[]);
  const ports = await Promise.all(ids.map(async (id) => {
    type Saved = { port?: unknown; frontPort?: unknown; portB?: unknown };
    // A corrupt file holds no port we can read; that instance refuses to start until it is repaired (state_corrupt).
    const saved = await fs.readFile(path.join(stateDir, id, "instance.json"), "utf8").then((t) => JSON.parse(t) as Saved, (): Saved => ({})).catch((): Saved => ({}));
    return [saved.port, saved.frontPort, saved.portB].filter((p): p is number => typeof p === "number");
  }));
  return ports.flat();
}

/**
 * The one way the driver gets ports: picks run one at a time ("is it free?" is
 * asynchronous, so two concurrent picks could both hear yes), and a picked port
 * stays claimed until its owner has written it to instance.json (from where
 * savedPorts() sees it) and releases the claim.
 */
export class PortAllocator {
  private readonly claimed = new Set<number>();
  private picking: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: { host: string; stateDir: string; range?: PortRange }) {}

  /**
   * One port per entry of `keep`: the kept port while it is free (the
   * instance's own, from its instance.json), otherwise a new one that nobody
   * holds. The caller must `release` them once they are saved, or on failure.
   */
  claim(keep: Array<number | undefined>): Promise<number[]> {
    const next = this.picking.then(() => this.pick(keep));
    this.picking = next.catch(() => undefined);
    return next;
  }

  release(ports: Iterable<number>): void {
    for (const p of ports) this.claimed.delete(p);
  }

  private async pick(keep: Array<number | undefined>): Promise<number[]> {
    const own = new Set(keep);
    const reserved = new Set([...this.claimed, ...(await savedPorts(this.opts.stateDir)).filter((p) => !own.has(p))]);
    const picked: number[] = [];
    try {
      for (const kept of keep) {
        const reuse = kept !== undefined && !reserved.has(kept) && (await portFree(kept, this.opts.host));
        const port = reuse ? kept : await allocatePort(this.opts.host, reserved, this.opts.range);
        reserved.add(port);
        this.claimed.add(port);
        picked.push(port);
      }
    } catch (err) {
      this.release(picked);
      throw err;
    }
    return picked;
  }
}
