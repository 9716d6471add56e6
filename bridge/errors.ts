/**
 * The one error a bridge command fails with: a product code the control plane
 * shows beside the message. Both drivers and every handler throw this (or an
 * error the executor maps onto `internal`), so an operator sees the same code
 * for the same failure whichever driver ran the instance.
 */
export const BRIDGE_ERROR_CODES = [
  // The command itself
  "invalid_args", "invalid_command", "not_implemented", "unsupported",
  // The instance or runtime it names
  "not_found", "not_running", "still_serving", "conflict",
  // Starting Node-RED (create, start) and green (deployment.prepare)
  "start_failed", "start_timeout", "green_failed", "green_timeout", "no_free_port",
  // Node-RED's Admin API
  "missing_node_types", "flows_conflict", "no_gate", "node_red_error",
  // The platform and the bridge's own state
  "kubernetes_error", "state_corrupt", "bridge_state_error", "interrupted", "report_undelivered", "internal",
] as const;
export type BridgeErrorCode = (typeof BRIDGE_ERROR_CODES)[number];

export class BridgeError extends Error {
  constructor(readonly code: BridgeErrorCode, message: string, readonly details?: unknown) {
    super(message);
    this.name = "BridgeError";
  }
}
