import { describe, it, expect } from "vitest";
import net from "node:net";
import { assertPortFree, freePort, PortInUseError } from "../../dev/ports.ts";

describe("port checks", () => {
  it("names the service and the env var when a port is taken", async () => {
    const port = await freePort();
    const srv = net.createServer().listen(port, "127.0.0.1");
    await new Promise((r) => srv.once("listening", r));
    try {
      const err = await assertPortFree(port, "neon relay", "REDFORGE_NEON_RELAY_PORT").catch((e) => e);
      expect(err).toBeInstanceOf(PortInUseError);
      expect(err.message).toContain(`port ${port} (neon relay) is already in use`);
      expect(err.message).toContain("REDFORGE_NEON_RELAY_PORT");
    } finally {
      srv.close();
    }
    await expect(assertPortFree(port, "neon relay")).resolves.toBeUndefined();
  });
});

describe("freePort", () => {
  it("hands out distinct bindable ports outside the OS's ephemeral range, so a port-0 listener cannot take one before its caller binds it", async () => {
    const [lo = NaN, hi = NaN] = (await import("node:fs")).readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    const ports: number[] = [];
    for (let i = 0; i < 40; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    for (const p of ports) expect(p < lo || p > hi, `port ${p} inside ${lo}-${hi}`).toBe(true);
    // Every one is free: a server binds it.
    for (const p of ports.slice(0, 5)) await expect(assertPortFree(p, "test")).resolves.toBeUndefined();
  });
});
