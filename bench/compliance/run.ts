/**
 * bench/compliance: what retention buys and what the compliance routes cost,
 * on the local stack (wrangler dev, embedded Postgres through the Neon relay).
 *   1. AUDIT valid chained audit rows (written straight to Postgres with the
 *      same hash function): GET /api/audit/verify over the whole chain;
 *   2. POST /api/reports (audit_trail, json) over the newest REPORT rows, and its download;
 *   3. the retention purge (signed job call, as QStash sends it) removing all
 *      but the newest 10% of audit rows behind a checkpoint, plus HEALTH
 *      instance_health rows past retention: duration and rows/s;
 *   4. verify again, now starting at the checkpoint;
 *   5. POST /api/admin/reseal over SEALED instances whose secrets are in the v1 format.
 *   npx tsx bench/compliance/run.ts     (BENCH_AUDIT=100000 BENCH_HEALTH=100000 BENCH_REPORT=20000 BENCH_SEALED=2000)
 */
import pg from "pg";
import { auditRowHash } from "../../db/auditChain.ts";
import { signDelivery } from "../../dev/qstash/deliver.ts";
import { fromBase64, randomBytes, toBase64 } from "../../protocol/encoding.ts";
import { startTestStack, type TestStack } from "../../test/harness/testStack.ts";

const AUDIT = Number(process.env.BENCH_AUDIT ?? 100_000);
const HEALTH = Number(process.env.BENCH_HEALTH ?? 100_000);
const REPORT = Number(process.env.BENCH_REPORT ?? 20_000);
const SEALED = Number(process.env.BENCH_SEALED ?? 2_000);
const DAY = 86_400_000;

let stack: TestStack;
let token: string;

async function api(method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
  const t0 = performance.now();
  const res = await fetch(`${stack.apiUrl}${p}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    body: body !== undefined ? (typeof body === "string" ? body : JSON.stringify(body)) : undefined,
  });
  const buf = Buffer.from(await res.arrayBuffer());
  const ms = performance.now() - t0;
  let json: any = null;
  try { json = JSON.parse(buf.toString("utf8")); } catch { /* a file */ }
  if (res.status >= 400) throw new Error(`${method} ${p}: ${res.status} ${buf.toString("utf8").slice(0, 300)}`);
  return { ms, body: json, bytes: buf.byteLength };
}

async function job(path: string, body: unknown) {
  const text = JSON.stringify(body);
  const url = `${stack.apiUrl}${path}`;
  const signature = await signDelivery(stack.cfg.qstash.currentSigningKey, url, Buffer.from(text));
  return api("POST", path, text, { "Upstash-Signature": signature });
}

/** Appends `n` rows to the chain, timestamps `start + i ms`, in multi-row inserts. */
async function appendChain(db: pg.Client, n: number, start: number): Promise<void> {
  const tail = await db.query("select hash from audit_logs order by id desc limit 1");
  let prev: string = tail.rows[0]?.hash ?? "0".repeat(64);
  for (let done = 0; done < n;) {
    const batch = Math.min(2_000, n - done);
    const values: unknown[] = [];
    const tuples: string[] = [];
    for (let i = 0; i < batch; i++) {
      const timestamp = new Date(start + done + i);
      const entry = { userId: null, action: "BENCH_EVENT", resourceType: "bench", resourceId: String(done + i), details: { i: done + i }, ipAddress: null, userAgent: null, statusCode: null };
      const hash = await auditRowHash(prev, timestamp, entry);
      const k = values.length;
      tuples.push(`($${k + 1}, 'BENCH_EVENT', 'bench', $${k + 2}, $${k + 3}, $${k + 4}, $${k + 5})`);
      values.push(timestamp, entry.resourceId, JSON.stringify(entry.details), prev, hash);
      prev = hash;
    }
    await db.query(`insert into audit_logs (timestamp, action, resource_type, resource_id, details, prev_hash, hash) values ${tuples.join(",")}`, values);
    done += batch;
  }
}

async function sealV1(plaintext: string, keyB64: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", fromBase64(keyB64), "AES-GCM", false, ["encrypt"]);
  const iv = randomBytes(12);
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, new TextEncoder().encode(plaintext));
  return `v1.${toBase64(iv)}.${toBase64(new Uint8Array(ct))}`;
}

const rate = (n: number, ms: number) => `${Math.round(n / (ms / 1000)).toLocaleString("en-US")}/s`;

async function main() {
  stack = await startTestStack({ worker: "wrangler" });
  const db = new pg.Client({ connectionString: stack.workerVars.DATABASE_URL });
  await db.connect();
  try {
    const login = await fetch(`${stack.apiUrl}/api/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: stack.cfg.worker.adminPassword }) });
    token = ((await login.json()) as { token: string }).token;
    const cluster = await api("POST", "/api/clusters", { name: "bench" });
    const instance = await api("POST", "/api/instances", { name: "bench-1", clusterId: cluster.body.id });

    const start = Date.now() + 1_000;
    let t0 = performance.now();
    await appendChain(db, AUDIT, start);
    console.log(`seeded ${AUDIT} audit rows in ${Math.round(performance.now() - t0)} ms`);
    const verifyAll = await api("GET", "/api/audit/verify");
    if (!verifyAll.body.ok) throw new Error(`chain does not verify: ${JSON.stringify(verifyAll.body)}`);

    const from = new Date(start + AUDIT - REPORT).toISOString();
    const report = await api("POST", "/api/reports", { kind: "audit_trail", from, to: new Date(start + AUDIT).toISOString() });
    const download = await api("GET", report.body.downloadUrl);

    await db.query(`insert into instance_health (instance_id, checked_at, state, live, ready)
      select $1, now() - interval '30 days' - (g * interval '1 ms'), 'running', true, true from generate_series(1, $2) g`, [instance.body.id, HEALTH]);
    await api("PUT", "/api/config", { retention: { audit_logs: 1, ai_decision_logs: null, instance_health: 7 } });
    // As of one day after the row that starts the newest 10%: everything older is past a 1-day retention.
    const keep = Math.ceil(AUDIT / 10);
    const at = new Date(start + AUDIT - keep + DAY).toISOString();
    const purge = await job("/api/jobs/retention-purge", { at, batchSize: 10_000, maxBatches: 100 });
    const tables = Object.fromEntries(purge.body.tables.map((t: any) => [t.table, t]));
    const verifyAfter = await api("GET", "/api/audit/verify");
    if (!verifyAfter.body.ok) throw new Error(`chain does not verify after the purge: ${JSON.stringify(verifyAfter.body)}`);

    // Instances whose secrets predate key ids (v1): re-seal moves them to v2 under the current key.
    const key = stack.workerVars.REDFORGE_ENCRYPTION_KEY!;
    const sealed = await sealV1("bench-credential-secret", key);
    await db.query(`insert into instances (name, cluster_id, credential_secret_sealed, secrets_sealed, secret_names, status, desired_state)
      select 'sealed-' || g, $1, $2, $2, '[]', 'stopped', 'stopped' from generate_series(1, $3) g`, [cluster.body.id, sealed, SEALED]);
    t0 = performance.now();
    const reseal = await api("POST", "/api/admin/reseal", { batchSize: 500 });

    const line = (k: string, v: string) => console.log(`${k.padEnd(58)} ${v}`);
    console.log("");
    line(`verify, whole chain (${verifyAll.body.rows} rows)`, `${Math.round(verifyAll.ms)} ms (${rate(verifyAll.body.rows, verifyAll.ms)})`);
    line(`report audit_trail json (${REPORT} rows, ${report.body.size} bytes)`, `${Math.round(report.ms)} ms`);
    line("report download", `${Math.round(download.ms)} ms (${download.bytes} bytes)`);
    line(`purge audit_logs (${tables.audit_logs.deleted} rows, checkpoint ${tables.audit_logs.checkpointId})`, "");
    line(`purge instance_health (${tables.instance_health.deleted} rows)`, "");
    line("purge job, both tables", `${Math.round(purge.ms)} ms (${rate(tables.audit_logs.deleted + tables.instance_health.deleted, purge.ms)})`);
    line(`verify after purge, from checkpoint (${verifyAfter.body.rows} rows)`, `${Math.round(verifyAfter.ms)} ms`);
    line(`reseal (${reseal.body.resealed} v1 values → v2, ${reseal.body.current} already current)`, `${Math.round(reseal.ms)} ms (${rate(reseal.body.resealed, reseal.ms)})`);
  } finally {
    await db.end();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
