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
