/**
 * The commands, each on the generated OpenAPI client (protocol/api/client.ts):
 * paths, bodies and answers are the API's own types, no hand-written fetch.
 * Each returns the process's exit code (exitCodes.ts).
 */
import { readFile } from "node:fs/promises";
import { createApiClient, type ApiClient, type ApiBody, type components } from "../protocol/api/client.ts";
import { UsageError, type Command, type Globals, type Source } from "./args.ts";
import { EXIT, exitFor, isFinal, type ExitCode, type WorkKind } from "./exitCodes.ts";
import { deploymentLines, promotionLines, rolloutLines, waitUntilFinal } from "./progress.ts";

export interface Io {
  /** Results: the one JSON document with --json, or human lines. */
  out(line: string): void;
  /** Progress and diagnostics (stderr with --json, so stdout stays parseable). */
  note(line: string): void;
  readStdin(): Promise<string>;
  fetch?: typeof globalThis.fetch;
}

/** The API answered with its error shape, or could not be reached: exit 4. */
export class ApiFailure extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

type Answer<T> = { data?: T; error?: unknown; response: Response };

function must<T>(what: string, r: Answer<T>): T {
  if (r.data !== undefined && r.response.ok) return r.data;
  const e = (r.error as { error?: { code?: string; message?: string } } | undefined)?.error;
  throw new ApiFailure(r.response.status, e?.code ?? `http_${r.response.status}`, `${what}: ${e?.message ?? r.response.statusText}`);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Flows = NonNullable<ApiBody<"/api/deployments", "post">["flows"]>;

/** A Node-RED flow file: the array itself, or Node-RED's `{flows, rev}` export. */
export async function readFlowsFile(path: string): Promise<Flows> {
  let text: string;
  try { text = await readFile(path, "utf8"); } catch (err) { throw new UsageError(`cannot read ${path}: ${(err as Error).message}`); }
  let json: unknown;
  try { json = JSON.parse(text); } catch { throw new UsageError(`${path} is not JSON`); }
  const flows = Array.isArray(json) ? json : (json as { flows?: unknown })?.flows;
  if (!Array.isArray(flows) || flows.some((n) => typeof n !== "object" || n === null || Array.isArray(n))) {
    throw new UsageError(`${path}: expected a Node-RED flow file (an array of nodes, or {"flows": [...]})`);
  }
  return flows as Flows;
}

export class Commands {
  private readonly api: ApiClient;

  constructor(private readonly globals: Globals, private readonly io: Io) {
    this.api = createApiClient({ baseUrl: globals.url, ...(globals.apiKey ? { token: globals.apiKey } : {}), ...(io.fetch ? { fetch: io.fetch } : {}) });
  }

  private result(json: unknown, text: string[]): void {
    if (this.globals.json) this.io.out(JSON.stringify(json, null, 2));
    else for (const line of text) this.io.out(line);
  }

  private requireKey(): void {
    if (!this.globals.apiKey) throw new ApiFailure(401, "unauthenticated", "set REDFORGE_API_KEY to an API key (redforge login explains how to create one)");
  }

  run(command: Command): Promise<ExitCode> {
    if (command.kind !== "login" && command.kind !== "help") this.requireKey();
    switch (command.kind) {
      case "help": return Promise.resolve(EXIT.completed);
      case "login": return this.login(command);
      case "instances-ls": return this.instances(command.selector);
      case "deploy": return this.deploy(command);
      case "rollout": return this.rollout(command);
      case "promote": return this.promote(command.pipeline, command.stage, command.source, command.wait);
      case "status": return this.status(command.id);
      case "rollback": return this.rollback(command.deploymentId, command.wait);
    }
  }

  private async login(c: Extract<Command, { kind: "login" }>): Promise<ExitCode> {
    if (!c.username) {
      // No username: check the API key CI would use.
      this.requireKey();
      const me = must("who am I", await this.api.GET("/api/auth/me"));
      this.result(me, [`API key works: ${me.username} (role ${me.role}, team ${me.team}) at ${this.globals.url}`]);
      return EXIT.completed;
    }
    if (!c.passwordStdin) throw new UsageError("login: pass the password on stdin with --password-stdin (never as an argument: it would show in ps and shell history)");
    const password = (await this.io.readStdin()).replace(/\r?\n$/, "");
    const session = must("log in", await this.api.POST("/api/auth/login", { body: { username: c.username, password } }));
    // Nothing is stored: the session lives only as long as this process; CI uses an API key.
    if (c.createKey) {
      const authed = createApiClient({ baseUrl: this.globals.url, token: session.token, ...(this.io.fetch ? { fetch: this.io.fetch } : {}) });
      const key = must("create API key", await authed.POST("/api/api-keys", { body: { name: c.createKey } }));
      this.result({ user: session.user, apiKey: key }, [
        `Logged in as ${session.user.username} (role ${session.user.role}). New API key "${key.name}" (shown only now):`,
        key.key,
        `Store it as the CI secret REDFORGE_API_KEY. Revoke it with DELETE /api/api-keys/${key.id}.`,
      ]);
      return EXIT.completed;
    }
    this.result({ user: session.user }, [
      `Logged in as ${session.user.username} (role ${session.user.role}). Nothing was stored.`,
      "For CI, create an API key: redforge login --username NAME --password-stdin --create-key ci",
      `  (or POST ${this.globals.url}/api/api-keys with a session token) and set it as REDFORGE_API_KEY.`,
    ]);
    return EXIT.completed;
  }

  private async instances(selector?: string): Promise<ExitCode> {
    const items: components["schemas"]["InstanceSummary"][] = [];
    let cursor: string | undefined;
    do {
      const page = must("list instances", await this.api.GET("/api/instances", { params: { query: { limit: 200, ...(selector ? { selector } : {}), ...(cursor ? { cursor } : {}) } } }));
      items.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    const labels = (l: Record<string, string> | undefined) => Object.entries(l ?? {}).map(([k, v]) => `${k}=${v}`).join(",") || "-";
    this.result({ items }, items.length
      ? items.map((i) => `${i.id}  ${i.name.padEnd(24)} ${i.status.padEnd(10)} ${labels((i as { labels?: Record<string, string> }).labels)}`)
      : [`no instances${selector ? ` match ${selector}` : ""}`]);
    return EXIT.completed;
  }

  private async instanceId(ref: string): Promise<string> {
    if (UUID.test(ref)) return ref;
    const page = must("find instance", await this.api.GET("/api/instances", { params: { query: { q: ref.slice(0, 63), limit: 200 } } }));
    const found = page.items.filter((i) => i.name === ref);
    if (found.length !== 1) throw new ApiFailure(404, "instance_not_found", found.length ? `several instances are named ${ref}; give its id` : `no instance named ${ref}`);
    return found[0]!.id;
  }

  private wait<T>(kind: WorkKind, read: () => Promise<T>, lines: (s: T) => Promise<string[]> | string[], status: (s: T) => string) {
    return waitUntilFinal(read, lines, (s) => isFinal(kind, status(s)), { timeoutMs: this.globals.timeoutMs, intervalMs: this.globals.intervalMs, progress: (l) => this.io.note(l) });
  }

  /** The exit code of a wait: 3 on timeout, else what the final status means. */
  private finish(kind: WorkKind, status: string, timedOut: boolean, json: unknown, summary: string): ExitCode {
    // The closing line a CI log ends with (progress already showed each state once).
    const text = `result: ${summary}`;
    if (timedOut) {
      this.io.note(`timed out after ${this.globals.timeoutMs / 1000} s; it goes on in the control plane (redforge status ${(json as { id: string }).id})`);
      this.result(json, [text]);
      return EXIT.timeout;
    }
    this.result(json, [text]);
    return exitFor(kind, status) ?? EXIT.completed;
  }

  private readDeployment = async (id: string) => must("read deployment", await this.api.GET("/api/deployments/{id}", { params: { path: { id } } }));
  private readRollout = async (id: string) => must("read rollout", await this.api.GET("/api/rollouts/{id}", { params: { path: { id } } }));
  private readPromotion = async (id: string) => must("read promotion", await this.api.GET("/api/pipelines/promotions/{id}", { params: { path: { id } } }));

  private async deploy({ instance, flowsFile, wait, timing }: Extract<Command, { kind: "deploy" }>): Promise<ExitCode> {
    const flows = await readFlowsFile(flowsFile);
    const instanceId = await this.instanceId(instance);
    const started = must("start deployment", await this.api.POST("/api/deployments", { body: { instanceId, flows, ...timing } as ApiBody<"/api/deployments", "post"> }));
    this.io.note(`deployment ${started.id} started on instance ${instanceId}`);
    if (!wait) { this.result(started, [`deployment ${started.id}: ${started.status}`]); return EXIT.completed; }
    const { state, timedOut } = await this.wait("deployment", () => this.readDeployment(started.id), deploymentLines, (d) => d.status);
    return this.finish("deployment", state.status, timedOut, state, `deployment ${state.id}: ${state.status}${state.error ? ` (${state.error.code})` : ""}`);
  }

  private async rollout(c: Extract<Command, { kind: "rollout" }>): Promise<ExitCode> {
    const source = "flowsFile" in c.source ? { flows: await readFlowsFile(c.source.flowsFile) } : { versionId: c.source.versionId };
    const body = {
      selector: c.selector, ...source,
      ...(c.waves ? { waves: c.waves } : {}), ...(c.parallelism ? { parallelism: c.parallelism } : {}),
      ...(c.failureBudget ? { failureBudget: c.failureBudget } : {}), ...(c.onFailure ? { onFailure: c.onFailure } : {}),
      ...(c.pause ? { pause: c.pause } : {}), ...(c.description ? { description: c.description } : {}),
      ...(Object.keys(c.timing).length ? { deployment: c.timing } : {}),
    } as ApiBody<"/api/rollouts", "post">;
    const started = must("start rollout", await this.api.POST("/api/rollouts", { body }));
    this.io.note(`rollout ${started.id} started: ${started.summary.total} instance(s) in ${started.waves.length} wave(s)`);
    if (!c.wait) { this.result(started, [`rollout ${started.id}: ${started.status}`]); return EXIT.completed; }
    return this.waitRollout(started.id);
  }

  private async waitRollout(id: string): Promise<ExitCode> {
    const { state, timedOut } = await this.wait("rollout", () => this.readRollout(id), rolloutLines, (r) => r.status);
    const s = state.summary;
    return this.finish("rollout", state.status, timedOut, state, `rollout ${state.id}: ${state.status} (${s.completed} completed, ${s.failed} failed, ${s.pending} pending of ${s.total})`);
  }

  private async pipelineId(ref: string): Promise<string> {
    if (UUID.test(ref)) return ref;
    let cursor: string | undefined;
    do {
      const page = must("find pipeline", await this.api.GET("/api/pipelines", { params: { query: { limit: 200, ...(cursor ? { cursor } : {}) } } }));
      const hit = page.items.find((p) => p.name === ref);
      if (hit) return hit.id;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    throw new ApiFailure(404, "pipeline_not_found", `no pipeline named ${ref}`);
  }

  private async promote(pipeline: string, stage: string, source: Source, wait: boolean): Promise<ExitCode> {
    const body = ("flowsFile" in source ? { flows: await readFlowsFile(source.flowsFile) } : source) as ApiBody<"/api/pipelines/{id}/stages/{stage}/promote", "post">;
    const id = await this.pipelineId(pipeline);
    const started = must("promote", await this.api.POST("/api/pipelines/{id}/stages/{stage}/promote", { params: { path: { id, stage } }, body }));
    if (!wait) {
      this.result(started, promotionLines(started));
      return started.status === "failed" || started.status === "rejected" ? EXIT.failed : EXIT.completed;
    }
    // While it rolls out, the rollout's waves are the progress worth seeing.
    const lines = async (p: typeof started) => [...promotionLines(p), ...(p.status === "rolling_out" && p.rolloutId ? rolloutLines(await this.readRollout(p.rolloutId)) : [])];
    const { state, timedOut } = await this.wait("promotion", () => this.readPromotion(started.id), lines, (p) => p.status);
    return this.finish("promotion", state.status, timedOut, state, `promotion ${state.id} (stage ${state.stage}): ${state.status}${state.rolloutId ? `, rollout ${state.rolloutId}` : ""}`);
  }

  /** Whatever the id names: a deployment, a rollout or a promotion. */
  private async status(id: string): Promise<ExitCode> {
    const tries: [WorkKind, () => Promise<Answer<{ status: string }>>, (s: never) => string[]][] = [
      ["deployment", () => this.api.GET("/api/deployments/{id}", { params: { path: { id } } }), deploymentLines as (s: never) => string[]],
      ["rollout", () => this.api.GET("/api/rollouts/{id}", { params: { path: { id } } }), rolloutLines as (s: never) => string[]],
      ["promotion", () => this.api.GET("/api/pipelines/promotions/{id}", { params: { path: { id } } }), promotionLines as (s: never) => string[]],
    ];
    for (const [kind, read, lines] of tries) {
      const answer = await read();
      if (answer.response.status === 404) continue;
      const state = must(`read ${kind}`, answer);
      this.result({ kind, ...state }, lines(state as never));
      return exitFor(kind, state.status) ?? EXIT.completed;
    }
    throw new ApiFailure(404, "not_found", `no deployment, rollout or promotion ${id}`);
  }

  private async rollback(id: string, wait: boolean): Promise<ExitCode> {
    const answer = must("roll back", await this.api.POST("/api/deployments/{id}/rollback", { params: { path: { id } } }));
    this.io.note(`deployment ${id}: rollback requested`);
    if (!wait) { this.result(answer, [`deployment ${id}: ${answer.status}`]); return EXIT.completed; }
    const { state, timedOut } = await this.wait("deployment", () => this.readDeployment(id), deploymentLines, (d) => d.status);
    if (timedOut) return this.finish("deployment", state.status, true, state, `deployment ${id}: ${state.status}`);
    this.result(state, [`result: deployment ${id}: ${state.status}`]);
    // Asked for a rollback: rolled_back is the success here.
    return state.status === "rolled_back" ? EXIT.completed : EXIT.failed;
  }
}
