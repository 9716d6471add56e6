/**
 * Ports for the process driver's instances: anywhere the OS offers, or inside
 * a configured range (edge boxes whose firewall opens only that range).
 */
import fs from "node:fs/promises";
import path from "node:path";
import { assertPortFree, freePort } from "../../../dev/ports.ts";

export type PortRange = [number, number];

export const portFree = (port: number, host: string) =>
  assertPortFree(port, "node-red", undefined, host).then(() => true, () => false);

/**
 * A port nothing listens on and no known instance holds. Stopped instances keep
 * their ports while nothing listens there, so "free at the OS" is not enough:
 * handing one out again would make that instance's next start fail with EADDRINUSE.
 */
export async function allocatePort(host: string, reserved: Set<number>, range?: PortRange): Promise<number> {
  if (!range) {
    // The OS picks from its whole ephemeral range, so a held port comes back only rarely.
    for (let tries = 0; tries < 20; tries++) {
      const port = await freePort(host);
      if (!reserved.has(port)) return port;
    }
    throw new Error("no free port: the OS keeps offering ports that instances hold");
  }
  const [from, to] = range;
  for (let port = from; port <= to; port++) {
    if (!reserved.has(port) && (await portFree(port, host))) return port;
  }
  throw Object.assign(new Error(`no free port left in ${from}-${to} for another Node-RED instance`), { code: "no_free_port" });
}

/** Ports recorded by every instance saved under stateDir, running or not. */
export async function savedPorts(stateDir: string): Promise<number[]> {
  const ids = await fs.readdir(stateDir).catch(() => [] as string[]);
  const ports = await Promise.all(ids.map(async (id) => {
    type Saved = { port?: unknown; frontPort?: unknown; portB?: unknown };
    const saved = await fs.readFile(path.join(stateDir, id, "instance.json"), "utf8").then((t) => JSON.parse(t) as Saved, (): Saved => ({}));
    return [saved.port, saved.frontPort, saved.portB].filter((p): p is number => typeof p === "number");
  }));
  return ports.flat();
}
