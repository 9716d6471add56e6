/**
 * `REDFORGE_CONSOLE_DEV=1 npm start`: the console from Vite's dev server with
 * hot module replacement, on the public port (8787), in front of the Worker.
 * Vite answers the app's own files and proxies the API (/api, /ws with its
 * WebSocket upgrades, /metrics) to the Worker, which then listens on a free
 * port of its own: the browser still sees one origin, so the session, the
 * WebSockets and the cookies-free token flow work exactly as when the Worker
 * serves the built app. The built app's CSP (set by the Worker) does not apply
 * to Vite's pages; `npm start` without the flag is the production-like path.
 */
import { createServer, type ViteDevServer } from "vite";
import { fileURLToPath } from "node:url";

export const CONSOLE_DEV = process.env.REDFORGE_CONSOLE_DEV === "1";

export async function startConsoleDev(opts: { host: string; port: number; workerUrl: string }): Promise<ViteDevServer> {
  const api = { target: opts.workerUrl, changeOrigin: true };
  const server = await createServer({
    configFile: fileURLToPath(new URL("../app/vite.config.ts", import.meta.url)),
    logLevel: "info",
    server: {
      host: opts.host,
      port: opts.port,
      strictPort: true,
      proxy: { "/api": api, "/metrics": api, "/ws": { ...api, ws: true } },
    },
  });
  await server.listen();
  return server;
}
