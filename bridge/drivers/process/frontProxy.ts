/**
 * The stable front door of one instance: a port that never changes while the
 * Node-RED behind it may (a restart, and in blue-green deployments a switch
 * from blue to green). Plain HTTP forwarding; WebSocket upgrades are not
 * proxied yet.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"]);

export class FrontProxy {
  private target?: URL;
  url = "";
  private readonly server = http.createServer((req, res) => this.forward(req, res));

  constructor(private readonly host: string) {}

  async listen(port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.server.once("error", fail);
      this.server.listen(port, this.host, () => { this.server.off("error", fail); resolve(); });
    });
    const bound = (this.server.address() as AddressInfo).port;
    this.url = `http://${this.host}:${bound}`;
    return bound;
  }

  /** Where traffic goes from now on; requests already forwarded finish where they are. */
  setTarget(base: string | undefined): void {
    this.target = base ? new URL(base) : undefined;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const target = this.target;
    if (!target) return unavailable(res, "instance is not running");
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
    headers["x-forwarded-for"] = req.socket.remoteAddress ?? "";
    const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (up) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
    });
    upstream.on("error", () => unavailable(res, "instance did not answer"));
    req.pipe(upstream);
  }
}

function unavailable(res: http.ServerResponse, message: string): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(503, { "content-type": "application/json", "retry-after": "2" });
  res.end(JSON.stringify({ error: { code: "instance_unavailable", message } }));
}
