/**
 * In-process MQTT broker for the local stack when no real broker (MQTT_URL)
 * is configured. aedes 1.2 speaks MQTT 3.1.1 only: clients must connect with
 * `protocolVersion: 4` (v5 CONNECTs are refused), and `$share/...` topics get
 * nothing — code that relies on shared subscriptions needs Mosquitto.
 * Sessions and retained messages live in memory and die with the process.
 */
import net from "node:net";
import type { RunningService } from "./config.ts";
import { assertPortFree, listen } from "./ports.ts";

export interface MqttBrokerOptions {
  port: number;
  host?: string;
  onLog?: (line: string) => void;
}

export async function startMqttBroker(opts: MqttBrokerOptions): Promise<RunningService> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.onLog ?? (() => {});
  await assertPortFree(opts.port, "mqtt broker", "REDFORGE_MQTT_PORT", host);

  // aedes 1.x is ESM-only and sets itself up asynchronously (persistence, $SYS heartbeat).
  const { Aedes } = await import("aedes");
  const broker = await Aedes.createBroker();
  broker.on("clientError", (client, err) => log(`client ${client?.id ?? "?"} error: ${err.message}`));
  broker.on("connectionError", (_client, err) => log(`connection error: ${err.message}`));

  const server = net.createServer(broker.handle);
  // Track sockets so close() cannot hang on a client that never disconnects.
  const sockets = new Set<net.Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });

  try {
    await listen(server, opts.port, host);
  } catch (err) {
    await new Promise<void>((r) => broker.close(() => r()));
    throw err;
  }
  const url = `mqtt://${host}:${opts.port}`;
  log(`aedes MQTT 3.1.1 broker listening on ${url}`);

  let closing: Promise<void> | undefined;
  return {
    name: "mqtt broker",
    url,
    close() {
      closing ??= (async () => {
        await new Promise<void>((r) => broker.close(() => r()));
        const serverClosed = new Promise<void>((r) => server.close(() => r()));
        for (const s of sockets) s.destroy();
        await serverClosed;
        log("mqtt broker stopped");
      })();
      return closing;
    },
  };
}
