/**
 * Selection for the bulk endpoints (cancel messages, list/delete/retry DLQ).
 * Every present field must match; values within one field are alternatives.
 */
import type { StoredMessage } from "./types.ts";

export interface Filter {
  /** messageIds for messages, dlqIds for the DLQ */
  ids?: string[];
  messageId?: string[];
  url?: string[];
  scheduleId?: string[];
  label?: string[];
  responseStatus?: number[];
}

export function matches(f: Filter, id: string, m: StoredMessage, responseStatus?: number): boolean {
  if (f.ids && !f.ids.includes(id)) return false;
  if (f.messageId && !f.messageId.includes(m.messageId)) return false;
  if (f.url && !f.url.includes(m.url)) return false;
  if (f.scheduleId && !(m.scheduleId && f.scheduleId.includes(m.scheduleId))) return false;
  if (f.label && !m.labels?.some((l) => f.label!.includes(l))) return false;
  if (f.responseStatus && !(responseStatus !== undefined && f.responseStatus.includes(responseStatus))) return false;
  return true;
}
