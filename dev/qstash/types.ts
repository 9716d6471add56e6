/**
 * Shapes shared by the QStash emulator's modules. Times are unix milliseconds
 * throughout, as in QStash's own JSON (createdAt, notBefore, nextScheduleTime).
 */

export const HTTP_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** Everything needed to deliver a message, as decided at publish time. */
export interface DeliverySpec {
  /** The destination exactly as published; also the JWT `sub` the Receiver compares. */
  url: string;
  method: HttpMethod;
  /** Forwarded headers (Upstash-Forward- prefix removed) plus Content-Type, canonical case. */
  headers: Record<string, string>;
  body: Buffer;
  maxRetries: number;
  timeoutMs: number;
  /** Upstash-Retry-Delay expression (ms, over `retried`); replaces the default backoff. */
  retryDelay?: string;
  labels?: string[];
}

export type MessageState = "CREATED" | "RETRY" | "IN_PROGRESS";

export interface StoredMessage extends DeliverySpec {
  messageId: string;
  createdAt: number;
  /** When the next attempt is due (first delivery, or the pending retry). */
  notBefore: number;
  /** Retries done so far; sent as Upstash-Retried on the next attempt. */
  retried: number;
  state: MessageState;
  scheduleId?: string;
  dedupKey?: string;
}

export interface DlqEntry {
  dlqId: string;
  message: StoredMessage;
  failedAt: number;
  responseStatus?: number;
  responseHeader?: Record<string, string[]>;
  responseBody?: Buffer;
  error?: string;
}

export interface StoredSchedule {
  scheduleId: string;
  cron: string;
  createdAt: number;
  /** Template for each firing's message (url = the schedule's destination). */
  spec: DeliverySpec;
  delayMs: number;
  isPaused: boolean;
  lastScheduleTime?: number;
  nextScheduleTime?: number;
  /** messageId → outcome of the most recent firing, as QStash reports it. */
  lastScheduleStates: Record<string, "IN_PROGRESS" | "SUCCESS" | "FAIL">;
}

/** Outcome of one delivery attempt. */
export interface AttemptResult {
  ok: boolean;
  status?: number;
  headers?: Record<string, string[]>;
  body?: Buffer;
  error?: string;
  /** Set when the destination asked for a specific retry time (Retry-After & co). */
  retryAfterMs?: number;
  /** 489 + Upstash-NonRetryable-Error: straight to the DLQ. */
  nonRetryable?: boolean;
}

/** Thrown for client mistakes; the API turns it into a 4xx JSON answer. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "ApiError";
  }
}
