/**
 * What a CI job branches on (docs/ci.md): the process's exit code.
 * A run that ends in failure is 1 whatever failed; 4 means the CLI could not
 * get an answer it could act on (credentials, permissions, a refused request).
 */
export const EXIT = {
  /** The deployment, rollout or promotion completed (or the command did what it says). */
  completed: 0,
  /** It failed, was rolled back, aborted or rejected. */
  failed: 1,
  /** The command line is wrong: unknown command or option, missing argument, unreadable flow file. */
  usage: 2,
  /** --wait gave up after --timeout; the work goes on in the control plane. */
  timeout: 3,
  /** The API refused or could not be reached: bad or missing API key (401), permission (403), not found, conflict… */
  api: 4,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** What each kind of work ends in, and how that maps onto an exit code. */
const OUTCOMES = {
  deployment: { completed: ["completed"], failed: ["failed", "rolled_back"] },
  rollout: { completed: ["completed"], failed: ["failed", "aborted"] },
  promotion: { completed: ["completed"], failed: ["failed", "rejected"] },
} as const satisfies Record<string, { completed: readonly string[]; failed: readonly string[] }>;
export type WorkKind = keyof typeof OUTCOMES;

/** Terminal: the control plane will not change it any more. */
export function isFinal(kind: WorkKind, status: string): boolean {
  const o = OUTCOMES[kind];
  return (o.completed as readonly string[]).includes(status) || (o.failed as readonly string[]).includes(status);
}

/** The exit code of a final status (a status that is not final has none: the caller is still waiting). */
export function exitFor(kind: WorkKind, status: string): ExitCode | null {
  if ((OUTCOMES[kind].completed as readonly string[]).includes(status)) return EXIT.completed;
  if ((OUTCOMES[kind].failed as readonly string[]).includes(status)) return EXIT.failed;
  return null;
}
