/**
 * VERIFY's default: a smoke request through each gated `http in` entry of the
 * new flows. Which entries the control plane picks from the flows
 * (durable/deploymentRun/entries.ts), and how the bridge judges the answers
 * (bridge/deploy/smoke.ts) against a real HTTP server standing in for green.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatedHttpEntries, verifyChecks } from "../../durable/deploymentRun/entries.ts";
import { runSmoke, smokeEntry } from "../../bridge/deploy/smoke.ts";
import { smokeChecksSchema } from "../../protocol/commands.ts";

const tab = { id: "t1", type: "tab" };
const httpIn = (id: string, url: string, method: string, wires: string[], more: Record<string, unknown> = {}) => ({ id, type: "http in", z: "t1", url, method, wires: [wires], ...more });
const gate = (id: string, wires: string[]) => ({ id, type: "redforge-gate", z: "t1", source: "input", wires: [wires] });
const fn = (id: string, wires: string[]) => ({ id, type: "function", z: "t1", wires: [wires] });
const response = (id: string) => ({ id, type: "http response", z: "t1", wires: [] });

describe("the entries VERIFY smokes by default", () => {
  it("every http in that reaches a gate and then an http response, with route parameters filled in", () => {
    const flows = [
      tab,
      httpIn("a", "/work", "post", ["ga"]), gate("ga", ["fa"]), fn("fa", ["ra"]), response("ra"),
      httpIn("b", "orders/:id/*", "get", ["gb"]), gate("gb", ["lo"]),
      { id: "lo", type: "link out", z: "t1", links: ["li"], wires: [] }, { id: "li", type: "link in", z: "t1", wires: [["rb"]] }, response("rb"),
      // Not smoked: ungated, no response (would only time out), DELETE, disabled, on a disabled tab.
      httpIn("c", "/plain", "post", ["rc"]), response("rc"),
      httpIn("d", "/fire-and-forget", "post", ["gd"]), gate("gd", []),
      httpIn("e", "/things", "delete", ["ge"]), gate("ge", ["re"]), response("re"),
      httpIn("f", "/off", "get", ["gf"], { d: true }), gate("gf", ["rf"]), response("rf"),
      { id: "t2", type: "tab", disabled: true }, { ...httpIn("g", "/hidden", "get", ["gg"]), z: "t2" }, { ...gate("gg", ["rg"]), z: "t2" }, { ...response("rg"), z: "t2" },
      // Loops do not hang the walk; a duplicate route is smoked once.
      httpIn("h", "/work", "post", ["h"]),
      httpIn("i", "/work", "post", ["gi"]), gate("gi", ["ri"]), response("ri"),
    ];
    expect(gatedHttpEntries(flows)).toEqual([
      { method: "POST", path: "/work" },
      { method: "GET", path: "/orders/smoke/smoke" },
    ]);
  });

  it("are sent unless the caller opts out or gives its own sample; an explicit list is sent as is; none leaves the key out", () => {
    const flows = [tab, httpIn("a", "/work", "post", ["ga"]), gate("ga", ["ra"]), response("ra")];
    const base = smokeChecksSchema.parse({});
    expect(verifyChecks(base, flows).entries).toEqual([{ method: "POST", path: "/work" }]);
    expect(verifyChecks(smokeChecksSchema.parse({ entries: false }), flows)).not.toHaveProperty("entries");
    const sample = smokeChecksSchema.parse({ http: { path: "/work" } });
    expect(verifyChecks(sample, flows)).not.toHaveProperty("entries");
    expect(verifyChecks({ ...sample, entries: true }, flows).entries).toHaveLength(1);
    const listed = [{ method: "DELETE" as const, path: "/cache", timeoutMs: 2_000 }];
    expect(verifyChecks(smokeChecksSchema.parse({ entries: listed }), flows).entries).toEqual(listed);
    // Flows without a gated entry (and a bridge from before entries): the key is not sent at all.
    expect(verifyChecks(base, [tab])).not.toHaveProperty("entries");
    expect(smokeChecksSchema.safeParse({ entries: [{ method: "GET", path: "no-slash" }] }).success).toBe(false);
  });
});

describe("the bridge's smoke request through an entry", () => {
  let server: Server;
  let base: string;
  const seen: Array<{ method: string; url: string; smoke: string | undefined; body: string }> = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => { body += c; });
      req.on("end", () => {
        seen.push({ method: req.method!, url: req.url!, smoke: req.headers["x-redforge-smoke"] as string | undefined, body });
        if (req.url === "/hang") return; // never answers
        const status = req.url === "/broken" ? 500 : req.url === "/picky" ? 400 : 200;
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ status }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it("passes below 500 (a 4xx is an answer), fails on 5xx, cannot decide without an answer in time", async () => {
    expect(await smokeEntry(base, { method: "POST", path: "/work" })).toEqual({ name: "entry POST /work", outcome: "passed", detail: "status 200" });
    expect(await smokeEntry(base, { method: "PUT", path: "/picky" })).toMatchObject({ outcome: "passed", detail: "status 400" });
    expect(await smokeEntry(base, { method: "GET", path: "/broken" })).toMatchObject({ outcome: "failed", detail: expect.stringMatching(/^status 500/) });
    expect(await smokeEntry(base, { method: "GET", path: "/hang", timeoutMs: 300 })).toMatchObject({ outcome: "inconclusive", detail: expect.stringMatching(/^no answer within 300 ms/) });
    expect(seen.find((r) => r.url === "/work")).toEqual({ method: "POST", url: "/work", smoke: "1", body: "{}" });
    expect(seen.find((r) => r.url === "/broken")).toMatchObject({ method: "GET", body: "" });
  });

  it("a green that answers an entry with 5xx fails VERIFY even with no sample request given", async () => {
    const target = {
      base, mqttConfigured: true,
      probe: async () => ({ live: true, ready: true, missingNodeTypes: [] }),
      rev: async () => "rev-2",
      gate: async () => ({ mqtt: "connected" }) as never,
    };
    const checks = smokeChecksSchema.parse({ entries: [{ method: "POST", path: "/work" }, { method: "GET", path: "/broken" }] });
    const verdict = await runSmoke(target, checks, "rev-2");
    expect(verdict.verdict).toBe("failed");
    expect(verdict.checks.map((c) => `${c.name}:${c.outcome}`)).toEqual(["health:passed", "revision:passed", "entry POST /work:passed", "entry GET /broken:failed", "mqtt:passed"]);
    const ok = await runSmoke(target, smokeChecksSchema.parse({ entries: [{ method: "POST", path: "/work" }] }), "rev-2");
    expect(ok.verdict).toBe("passed");
  });
});
