/**
 * JSON views of stored state, with the field names @upstash/qstash's types use
 * (Message, DlqMessage, Schedule). Bodies that are not valid UTF-8 go out as
 * *Base64 fields, as QStash does.
 */
import { canonicalHeaderName } from "./parse.ts";
import type { DeliverySpec, DlqEntry, StoredMessage, StoredSchedule } from "./types.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });
function bodyFields(body: Buffer, name = "body"): Record<string, string> {
  if (body.length === 0) return {};
  try {
    return { [name]: utf8.decode(body) };
  } catch {
    return { [`${name}Base64`]: body.toString("base64") };
  }
}

function headerJson(h: Record<string, string>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [canonicalHeaderName(k), [v]]));
}

function specJson(s: DeliverySpec) {
  return {
    method: s.method,
    header: headerJson(s.headers),
    ...bodyFields(s.body),
    ...(s.retryDelay !== undefined ? { retryDelayExpression: s.retryDelay } : {}),
    ...(s.labels?.length ? { label: s.labels[0], labels: s.labels } : {}),
  };
}

export function messageJson(m: StoredMessage) {
  return {
    messageId: m.messageId,
    url: m.url,
    topicName: "",
    ...specJson(m),
    maxRetries: m.maxRetries,
    notBefore: m.notBefore,
    createdAt: m.createdAt,
    ...(m.scheduleId ? { scheduleId: m.scheduleId } : {}),
  };
}

export function dlqJson(d: DlqEntry) {
  return {
    ...messageJson(d.message),
    dlqId: d.dlqId,
    ...(d.responseStatus !== undefined ? { responseStatus: d.responseStatus } : {}),
    ...(d.responseHeader ? { responseHeader: d.responseHeader } : {}),
    ...(d.responseBody ? bodyFields(d.responseBody, "responseBody") : {}),
  };
}

export function scheduleJson(s: StoredSchedule) {
  return {
    scheduleId: s.scheduleId,
    cron: s.cron,
    createdAt: s.createdAt,
    destination: s.spec.url,
    ...specJson(s.spec),
    retries: s.spec.maxRetries,
    ...(s.delayMs ? { delay: Math.round(s.delayMs / 1000) } : {}),
    isPaused: s.isPaused,
    ...(s.lastScheduleTime !== undefined ? { lastScheduleTime: s.lastScheduleTime } : {}),
    ...(s.nextScheduleTime !== undefined && !s.isPaused ? { nextScheduleTime: s.nextScheduleTime } : {}),
    lastScheduleStates: s.lastScheduleStates,
  };
}
