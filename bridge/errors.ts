/**
 * The one error a bridge command fails with: a product code the control plane
 * shows beside the message. Both drivers and every handler throw this (or an
 * error the executor maps onto it), so an operator sees the same code for the
 * same failure whichever driver ran the instance.
 */
export const BRIDGE_ERROR_CODES = [
  "invalid_args", "not_implemented", "not_found", "not_running", "still_serving", "green_failed",
  "missing_node_types", "flows_conflict", "node_red_error", "kubernetes_error", "report_undelivered", "internal",
] as const;
export type BridgeErrorCode = (typeof BRIDGE_ERROR_CODES)[number];

export class BridgeError extends Error {
  constructor(readonly code: BridgeErrorCode, message: string, readonly details?: unknown) {
    super(message);
    this.name = "BridgeError";
  }
}
