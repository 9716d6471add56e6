/**
 * Whether an instance can take a blue-green deployment now. `unknown` is what
 * the control plane writes when a command or health sweep goes unanswered in
 * time: under load it appears for tens of seconds while the instance serves.
 * The deployment's own steps will reach the instance if its cluster's bridge
 * is connected (and say so if they cannot), so `unknown` does not block then.
 */
const SERVING = new Set(["running"]);
const UNCERTAIN = new Set(["unknown"]);

export type Admission = { ok: true } | { ok: false; reason: string };

export function admitDeployment(status: string, bridgeConnected: boolean): Admission {
  if (SERVING.has(status)) return { ok: true };
  if (UNCERTAIN.has(status)) {
    return bridgeConnected ? { ok: true } : { ok: false, reason: `is ${status} and its cluster's bridge is not connected` };
  }
  return { ok: false, reason: `is ${status}` };
}
