/** Job paths, shared by the Worker's routes and the schedule sync script (which runs in Node). */
export const HEALTH_SWEEP_PATH = "/api/jobs/health-sweep";
export const COMPLIANCE_EXPORT_PATH = "/api/jobs/compliance-export";
export const RETENTION_PURGE_PATH = "/api/jobs/retention-purge";

/**
 * The control plane's bridge endpoints, relative to its base URL. The bridge
 * builds every URL it calls from these (and the link's ws:// one from `link`);
 * ids are path-encoded here, once.
 */
const id = (clusterId: string) => encodeURIComponent(clusterId);
export const bridgePaths = {
  /** POST, signed: a short-lived cluster token for the link. */
  token: (clusterId: string) => `/api/clusters/${id(clusterId)}/token`,
  /** GET + WebSocket upgrade with the token: the command channel. */
  link: (clusterId: string) => `/api/clusters/${id(clusterId)}/link`,
  /** POST, signed: command results, status changes, health reports. */
  reports: (clusterId: string) => `/api/webhooks/clusters/${id(clusterId)}`,
  /** POST, signed: batches of AI decision records. */
  aiDecisions: (clusterId: string) => `/api/webhooks/clusters/${id(clusterId)}/ai-decisions`,
  /** POST, signed: batches of dead letters from the instances' `redforge/dlq/+`. */
  deadLetters: (clusterId: string) => `/api/webhooks/clusters/${id(clusterId)}/dead-letters`,
  /** POST, signed: collect operators' pending dead-letter replays and report earlier ones. */
  deadLetterReplays: (clusterId: string) => `/api/webhooks/clusters/${id(clusterId)}/dead-letters/replays`,
  /** POST, signed: the approved-model policies covering each of the cluster's instances. */
  modelPolicies: (clusterId: string) => `/api/webhooks/clusters/${id(clusterId)}/model-policies`,
} as const;

/** `base` (http or https, no trailing slash needed) joined with a bridge path; `ws: true` for the link's WebSocket URL. */
export function controlPlaneUrl(base: string, path: string, opts: { ws?: boolean } = {}): string {
  const root = base.replace(/\/+$/, "");
  return `${opts.ws ? root.replace(/^http/, "ws") : root}${path}`;
}
