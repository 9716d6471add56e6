/**
 * The alert kinds' thresholds as form fields, mirroring core/alerts/kinds.ts
 * (the API checks them on write; its message lands at the field its
 * `details` path names, e.g. `params.minutes`). An empty field is left out, so
 * the API fills in its default.
 */
export type ParamField =
  | { key: string; label: string; type: "number"; hint: string; required?: boolean }
  | { key: string; label: string; type: "choice"; options: readonly string[]; hint: string }
  | { key: string; label: string; type: "numbers"; hint: string };

export const KIND_PARAMS: Record<string, readonly ParamField[]> = {
  instance_down: [],
  instance_not_ready: [{ key: "minutes", label: "For minutes", type: "number", hint: "not ready this long before it fires (default 5)" }],
  crash_loop: [],
  deployment_failed: [{ key: "withinHours", label: "Within hours", type: "number", hint: "a failed or rolled-back deployment this recent (default 24)" }],
  bridge_disconnected: [{ key: "minutes", label: "For minutes", type: "number", hint: "no bridge connected this long (default 2)" }],
  cluster_warning: [],
  webhook_signature_failures: [{ key: "perSecond", label: "Per second", type: "number", hint: "refused webhook signatures per second since the last evaluation", required: true }],
  ai_budget: [
    { key: "metric", label: "Metric", type: "choice", options: ["tokens", "cost"], hint: "tokens against the team's quota, or cost (USD)" },
    { key: "dailyBudget", label: "Daily budget", type: "number", hint: "per UTC day; required for cost, else the quota's tokens" },
    { key: "thresholdsPercent", label: "Thresholds %", type: "numbers", hint: "comma separated (default 80, 100)" },
  ],
  audit_chain: [],
};

export const KIND_WORDS: Record<string, string> = {
  instance_down: "an instance failed, or stopped while it should run",
  instance_not_ready: "an instance's health says not ready",
  crash_loop: "an instance keeps crashing on start",
  deployment_failed: "an instance's latest deployment failed or rolled back",
  bridge_disconnected: "a cluster running the team's instances has no bridge",
  cluster_warning: "a cluster running the team's instances has a warning from its bridge (e.g. its broker drops held work)",
  webhook_signature_failures: "refused webhook signatures grow fast",
  ai_budget: "the team's LLM usage nears its daily budget",
  audit_chain: "the audit chain does not verify",
};

export const ALERT_KINDS = Object.keys(KIND_PARAMS);

/**
 * What the person typed, as the API's `params`: numbers where they look like numbers, and otherwise the text
 * itself (the API's message then says what is wrong, next to the field).
 */
export function paramsFromForm(kind: string, read: (key: string) => string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of KIND_PARAMS[kind] ?? []) {
    const raw = read(f.key).trim();
    if (raw === "") continue;
    if (f.type === "choice") out[f.key] = raw;
    else if (f.type === "number") out[f.key] = Number.isFinite(Number(raw)) ? Number(raw) : raw;
    else out[f.key] = raw.split(",").map((s) => s.trim()).filter(Boolean).map((s) => (Number.isFinite(Number(s)) ? Number(s) : s));
  }
  return out;
}

/** A rule's stored params as the form shows them. */
export function paramText(value: unknown): string {
  if (value === undefined || value === null) return "";
  return Array.isArray(value) ? value.join(", ") : String(value);
}

/** The form's fields for formErrors: each kind's params by path, then `params` for anything else under it. */
export function ruleFields(kind: string): string[] {
  return ["team", "name", "kind", "severity", "clearEvaluations", "enabled", "params", ...(KIND_PARAMS[kind] ?? []).map((f) => `params.${f.key}`)];
}

export interface AlertEvent {
  event: "fleet:alert";
  data: { alertId: string; ruleId: string | null; team: string; kind: string; severity: string; subject: string; subjectName: string | null; status: string; summary: string; timestamp: string };
}

export function isAlertEvent(m: unknown): m is AlertEvent {
  const e = m as AlertEvent | null;
  return !!e && e.event === "fleet:alert" && typeof e.data?.alertId === "string" && typeof e.data.status === "string";
}

type AlertLike = { id: string; status: string; summary: string; updatedAt: string };

/** A `fleet:alert` frame onto a list of alerts; `unknown` when the alert is not in it (a new one: re-read). */
export function applyAlertEvent<T extends AlertLike>(items: readonly T[], { data }: AlertEvent): { items: T[]; unknown: boolean } {
  if (!items.some((a) => a.id === data.alertId)) return { items: [...items], unknown: true };
  return {
    unknown: false,
    items: items.map((a) => (a.id !== data.alertId ? a : { ...a, status: data.status as T["status"], summary: data.summary, updatedAt: data.timestamp })),
  };
}
