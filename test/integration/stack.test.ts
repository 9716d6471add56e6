import net from "node:net";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../dev/config.ts";
import { assertPortFree, freePort } from "../../dev/ports.ts";
import { startStack } from "../../scripts/stack.ts";

describe("local stack start-up", () => {
  it("names every taken port and its env var at once, and leaves nothing running", async () => {
    const base = loadConfig();
    const ports = {
      api: await freePort(), postgres: await freePort(), neonRelay: await freePort(),
      qstash: await freePort(), upstashRelay: await freePort(), mqtt: await freePort(),
    };
    const blockers = [ports.qstash, ports.api].map((p) => net.createServer().listen(p, "127.0.0.1"));
    await Promise.all(blockers.map((b) => new Promise((r) => b.once("listening", r))));
    try {
      const err = await startStack({ ...base, ports, stateDir: "/nonexistent-never-created", mqttUrl: undefined }, { worker: "wrangler" })
        .catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      const message = (err as Error).message;
      expect(message).toContain(`port ${ports.qstash} (qstash emulator)`);
      expect(message).toContain("REDFORGE_QSTASH_PORT");
      expect(message).toContain(`port ${ports.api} (api (wrangler dev))`);
      expect(message).toContain("REDFORGE_API_PORT");
      // Nothing was started: the free ports are still free.
      for (const p of [ports.postgres, ports.neonRelay, ports.mqtt]) await expect(assertPortFree(p, "x")).resolves.toBeUndefined();
    } finally {
      for (const b of blockers) b.close();
    }
  });
});
