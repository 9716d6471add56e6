/**
 * The JavaScript that Session 11 took out of an instance creation, timed in
 * Node's V8 (workerd runs the same engine) without a stack or a machine's
 * noise: the batch's two inserts built by drizzle vs compiled once
 * (db/compiledInsert.ts), and a session token verified by jose vs answered
 * again from the isolate (functions/auth/tokens.ts). Microseconds per call.
 *   npx tsx bench/api/creation-js.ts   (N=20000)
 */
import { neon } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-http";
import { jwtVerify } from "jose";
import type { Db } from "../../db/client.ts";
import { compiledInsert } from "../../db/compiledInsert.ts";
import { flowVersions, instances } from "../../db/schema.ts";
import { issueSessionToken, verifySessionToken } from "../../functions/auth/tokens.ts";

const N = Number(process.env.N ?? 20_000);
const db = drizzle(neon("postgres://u:p@127.0.0.1:1/db")) as unknown as Db;
type Item = { _prepare(): { getQuery(): { sql: string; params: unknown[] } } };

const insertInstance = compiledInsert((d, v: typeof instances.$inferInsert) => d.insert(instances).values(v).returning());
const insertFlowVersion = compiledInsert((d, v: typeof flowVersions.$inferInsert) => d.insert(flowVersions).values(v));
const values = (i: number) => ({
  id: crypto.randomUUID(), name: `rate-${i}`, clusterId: crypto.randomUUID(), flows: [], resources: {}, env: {}, stack: "5.0", labels: {},
  secretsSealed: null, secretNames: [], team: "t", createdBy: crypto.randomUUID(), credentialSecretSealed: "sealed",
});

async function time(label: string, run: (i: number) => unknown): Promise<void> {
  for (let i = 0; i < 2_000; i++) await run(i); // warm the JIT as a long-lived isolate is
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await run(i);
  console.log(`${label.padEnd(58)} ${((1000 * (performance.now() - t0)) / N).toFixed(1).padStart(7)} µs`);
}

// What the batch does with each item: _prepare() and getQuery() (drizzle-orm/neon-http/session.js).
const asBatch = (q: unknown) => (q as Item)._prepare().getQuery();
await time("both inserts, drizzle builds them (before)", (i) => {
  const v = values(i);
  asBatch(db.insert(instances).values(v).returning());
  asBatch(db.insert(flowVersions).values({ instanceId: v.id, version: 1, flows: [], digest: "d", createdBy: v.createdBy }));
});
await time("both inserts, compiled once per isolate (after)", (i) => {
  const v = values(i);
  asBatch(insertInstance(db, v));
  asBatch(insertFlowVersion(db, { instanceId: v.id, version: 1, flows: [], digest: "d", createdBy: v.createdBy }));
});

const secret = "s".repeat(32);
const { token } = await issueSessionToken({ sub: crypto.randomUUID(), username: "u", role: "admin" }, secret, 900);
const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
await time("session token, jose verifies it (before)", () => jwtVerify(token, key, { issuer: "redforge", audience: "redforge-api", algorithms: ["HS256"] }));
await time("session token, verified before in this isolate (after)", () => verifySessionToken(token, secret));
