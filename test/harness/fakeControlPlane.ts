/**
 * A stand-in for the control plane's bridge endpoints, on 127.0.0.1, for
 * bridge tests: the token route and the report webhook verify Standard
 * Webhook signatures with the production verifier (and refuse replayed ids),
 * the link route checks the bearer token and speaks the ClusterLink frames,
 * redelivering unanswered commands on every new connection. Knobs let a test
 * refuse tokens, revoke them, fail reports, or refuse upgrades.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { bridgePaths } from "../../protocol/paths.ts";
import { bridgeFrameSchema, type BridgeFrame, type Command } from "../../protocol/commands.ts";
import { reportSchema, type Report } from "../../protocol/reports.ts";
import { verifyWebhook } from "../../protocol/webhooks.ts";

export interface ReceivedReport {
  report: Report;
  webhookId: string;
  at: number;
}

export class FakeControlPlane {
  url = "";
  readonly tokenRequests: { bridgeVersion?: string; webhookId: string; at: number }[] = [];
  /** Every upgrade attempt: the status answered and when. */
  readonly upgrades: { status: number; at: number; token?: string }[] = [];
  readonly frames: (BridgeFrame & { at: number })[] = [];
  readonly reports: ReceivedReport[] = [];
  /** Requests refused, with the reason. */
  readonly refused: { path: string; status: number; reason: string }[] = [];
  readonly knobs = { refuseTokens: false, refuseUpgrades: 0, failReports: 0, tokenTtlMs: 600_000 };

  private readonly seenIds = new Set<string>();
  private readonly tokens = new Map<string, number>();
  private readonly pending = new Map<string, Command>();
  private readonly sockets = new Set<WebSocket>();
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly server = http.createServer((req, res) => this.onRequest(req, res));

  constructor(readonly clusterId: string, readonly secret: string) {
    this.server.on("upgrade", (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Puts a command in the outbox and sends it if a bridge is connected. */
  enqueue(command: Command): void {
    this.pending.set(command.id, command);
    this.deliver(command);
  }

  /** Sends a command again regardless of the outbox, as a redelivery would. */
  deliver(command: Command): void {
    this.sendRaw({ kind: "command", command });
  }

  /** Sends any frame, garbage included, to the connected bridge. */
  sendRaw(frame: unknown): void {
    for (const ws of this.sockets) ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  outbox(): Command[] {
    return [...this.pending.values()];
  }

  dropConnections(): void {
    for (const ws of this.sockets) ws.terminate();
  }

  revokeTokens(): void {
    this.tokens.clear();
  }

  close(): Promise<void> {
    this.dropConnections();
    this.wss.close();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Signature, freshness and replay, exactly as the control plane checks them. */
  private async verified(req: http.IncomingMessage, body: string): Promise<{ id: string } | { reason: string }> {
    const headers = { get: (name: string) => (req.headers[name.toLowerCase()] as string | undefined) ?? null };
    const check = await verifyWebhook([this.secret], headers, body);
    if (!check.ok) return { reason: check.reason };
    if (this.seenIds.has(check.id)) return { reason: "replayed" };
    this.seenIds.add(check.id);
    return { id: check.id };
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const path = new URL(req.url!, "http://x").pathname;
      const work = req.method === "POST" && path === bridgePaths.token(this.clusterId) ? this.onToken(req, res, body)
        : req.method === "POST" && path === bridgePaths.reports(this.clusterId) ? this.onReport(req, res, body)
        : Promise.resolve(reply(res, 404, { error: { code: "not_found", message: path } }));
      work.catch((err: unknown) => reply(res, 500, { error: { code: "internal", message: String(err) } }));
    });
  }

  private async onToken(req: http.IncomingMessage, res: http.ServerResponse, body: string): Promise<void> {
    const check = await this.verified(req, body);
    if ("reason" in check || this.knobs.refuseTokens) {
      const reason = "reason" in check ? check.reason : "refused by test";
      this.refused.push({ path: req.url!, status: 401, reason });
      return reply(res, 401, { error: { code: "invalid_signature", message: reason } });
    }
    this.tokenRequests.push({ bridgeVersion: (JSON.parse(body) as { bridgeVersion?: string }).bridgeVersion, webhookId: check.id, at: Date.now() });
    const token = `tok_${crypto.randomUUID()}`;
    const expiresAt = Date.now() + this.knobs.tokenTtlMs;
    this.tokens.set(token, expiresAt);
    reply(res, 200, { token, expiresAt: new Date(expiresAt).toISOString() });
  }

  private async onReport(req: http.IncomingMessage, res: http.ServerResponse, body: string): Promise<void> {
    const check = await this.verified(req, body);
    if ("reason" in check) {
      this.refused.push({ path: req.url!, status: 401, reason: check.reason });
      return reply(res, 401, { error: { code: "invalid_signature", message: check.reason } });
    }
    if (this.knobs.failReports > 0) {
      this.knobs.failReports--;
      this.refused.push({ path: req.url!, status: 503, reason: "failing by test" });
      return reply(res, 503, { error: { code: "unavailable", message: "failing by test" } });
    }
    const parsed = reportSchema.safeParse(JSON.parse(body));
    if (!parsed.success) {
      this.refused.push({ path: req.url!, status: 400, reason: parsed.error.message });
      return reply(res, 400, { error: { code: "validation_failed", message: parsed.error.message } });
    }
    const report = parsed.data;
    this.reports.push({ report, webhookId: check.id, at: Date.now() });
    if (report.type === "command.result" || (report.type === "health.report" && report.commandId)) this.pending.delete(report.commandId!);
    reply(res, 202, { accepted: true });
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
    const refuse = (status: number) => {
      this.upgrades.push({ status, at: Date.now(), token });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    if (new URL(req.url!, "http://x").pathname !== bridgePaths.link(this.clusterId)) return refuse(404);
    if (this.knobs.refuseUpgrades > 0) {
      this.knobs.refuseUpgrades--;
      return refuse(503);
    }
    if (!token || (this.tokens.get(token) ?? 0) < Date.now()) return refuse(401);
    this.upgrades.push({ status: 101, at: Date.now(), token });
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onLink(ws));
  }

  private onLink(ws: WebSocket): void {
    // One bridge per cluster: a newer connection replaces the old one, as the ClusterLink does.
    for (const old of this.sockets) old.close(4000, "replaced by a newer connection");
    this.sockets.add(ws);
    ws.on("close", () => this.sockets.delete(ws));
    ws.on("message", (data) => {
      const parsed = bridgeFrameSchema.safeParse(JSON.parse(data.toString()));
      if (parsed.success) this.frames.push({ ...parsed.data, at: Date.now() });
    });
    ws.send(JSON.stringify({ kind: "welcome", clusterId: this.clusterId, pending: this.pending.size }));
    for (const command of this.pending.values()) ws.send(JSON.stringify({ kind: "command", command }));
  }
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

export function startFakeControlPlane(opts: { clusterId: string; secret: string }): Promise<FakeControlPlane> {
  return new FakeControlPlane(opts.clusterId, opts.secret).listen();
}
