/**
 * Failures of the storage, memory and file-converter nodes, with the agent
 * error code the primitive answers (protocol/agents/messageContract.ts):
 * invalid_input (400, fix the message), store_unavailable / converter_unavailable
 * (503, try later), store_rejected (502, fix the configuration).
 */
"use strict";

class StoreError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "StoreError";
    this.code = code;
  }
}

const invalid = (message) => new StoreError("invalid_input", message);

// Node socket errors that mean "nobody answered": worth a retry later.
const UNREACHABLE = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EPIPE", "ECONNABORTED"]);

/**
 * A Postgres (node-postgres) failure as a StoreError: connection problems and
 * a server shutting down or out of resources are store_unavailable; anything
 * the server refused (auth, permission, SQL) is store_rejected.
 */
function fromPgError(err, what) {
  if (err instanceof StoreError) return err;
  const code = String((err && err.code) || "");
  const message = `${what}: ${(err && err.message) || err}`;
  const sqlstate = /^[0-9A-Z]{5}$/.test(code) ? code : "";
  const down = UNREACHABLE.has(code) || /^(08|53|57P)/.test(sqlstate) || (!sqlstate && /timeout|terminated|connect/i.test(String(err && err.message)));
  return new StoreError(down ? "store_unavailable" : "store_rejected", message);
}

/** A fetch() failure (no HTTP answer at all) as a StoreError of `code`. */
function fromFetchError(err, code, what) {
  const cause = err && err.cause ? `${err.cause.code || ""} ${err.cause.message || ""}`.trim() : "";
  return new StoreError(code, `${what}: ${err && err.name === "TimeoutError" ? "timed out" : (err && err.message) || err}${cause ? ` (${cause})` : ""}`);
}

module.exports = { StoreError, invalid, fromPgError, fromFetchError, UNREACHABLE };
