#!/usr/bin/env node
// `npm test`: the node layer and the workers layer, side by side in two vitest processes.
// One vitest with both projects (test/vitest.config.ts) runs them one after the other, because
// their worker counts differ (node: two files at a time; workers: one, as its files share one
// database); the workers layer mostly waits on workerd and Postgres, so overlapping the two
// roughly halves the wall time on 2 cores (docs/ci.md).
//
// Extra arguments go to both vitests (e.g. a file filter). REDFORGE_TEST_REPORT_DIR=<dir> adds a
// JSON report per layer (<dir>/node.json, <dir>/workers.json), which .ci/run reads for its verdict.
// The workers layer's output is kept in a file and printed after the node layer's, in one piece.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

// With a filter, the layer holding none of the named files must not fail for it.
const args = process.argv.length > 2 ? [...process.argv.slice(2), "--passWithNoTests"] : [];
// The verdict comes from the JSON reports as well as the exit codes: a vitest whose teardown ends the
// process early can exit 0 with failed tests (seen in CI), and `npm test` must not say green then.
const reportDir = process.env.REDFORGE_TEST_REPORT_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "redforge-reports-"));

// Database stalls (dev/stallWatch.ts) from both layers land in one file beside the reports.
process.env.REDFORGE_STALL_LOG ??= path.join(reportDir, "stalls.log");

function vitest(layer, stdio) {
  const report = ["--reporter=default", "--reporter=json", `--outputFile=${path.join(reportDir, `${layer}.json`)}`];
  const child = spawn("npx", ["vitest", "run", "--config", `test/vitest.${layer}.config.ts`, ...report, ...args], { stdio, env: process.env });
  return child;
}

const workersLog = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "redforge-test-")), "workers.log");
const logFd = fs.openSync(workersLog, "w");
const workers = vitest("workers", ["ignore", logFd, logFd]);
const workersDone = new Promise((resolve) => workers.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
const node = vitest("node", "inherit");
const nodeDone = new Promise((resolve) => node.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));

// Ctrl-C stops both layers (and their stacks, through vitest's own teardown).
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { workers.kill(sig); node.kill(sig); });

const nodeCode = await nodeDone;
if (workers.exitCode === null) console.log("\n== node layer finished; waiting for the workers layer …");
const workersCode = await workersDone;
fs.closeSync(logFd);
console.log("\n== the workers layer (test/vitest.workers.config.ts)\n");
process.stdout.write(fs.readFileSync(workersLog, "utf8"));
/** Failed tests and files in a layer's report; a missing or unreadable report counts as a failure. */
function failures(layer) {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(reportDir, `${layer}.json`), "utf8"));
    return { tests: r.numFailedTests, files: r.numFailedTestSuites, passed: r.numPassedTests };
  } catch {
    return { tests: 0, files: 1, passed: 0, missing: true };
  }
}
if (fs.existsSync(process.env.REDFORGE_STALL_LOG)) {
  console.log(`\n== database stalls seen (dev/stallWatch.ts: a statement or transaction older than 8 s)\n`);
  process.stdout.write(fs.readFileSync(process.env.REDFORGE_STALL_LOG, "utf8"));
}
const verdict = { node: failures("node"), workers: failures("workers") };
console.log(`\n== npm test: node layer exit ${nodeCode} (${JSON.stringify(verdict.node)}), workers layer exit ${workersCode} (${JSON.stringify(verdict.workers)})`);
const failed = nodeCode !== 0 || workersCode !== 0 || Object.values(verdict).some((v) => v.tests > 0 || v.files > 0);
process.exit(failed ? 1 : 0);
