/**
 * Instance labels, validated as Kubernetes validates object labels
 * (apimachinery's IsQualifiedName / IsValidLabelValue), so a label set here
 * can be copied onto a Kubernetes object unchanged and a selector reads the
 * same in both worlds. Shared by the API, the selector parser and the console.
 */
import { z } from "zod";

/** A label name, and a value when not empty: at most 63 characters, alphanumeric at both ends, `-_.` inside. */
export const LABEL_NAME_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
/** A DNS-1123 subdomain (the optional key prefix, e.g. `redforge.io`), at most 253 characters. */
export const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const MAX_LABELS = 64;

/** Why `key` is not a valid label key, or null when it is. */
export function labelKeyProblem(key: string): string | null {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : null;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== null) {
    if (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN_RE.test(prefix)) {
      return `label key prefix "${prefix}" must be a DNS subdomain (lowercase alphanumerics, '-' and '.', at most 253 characters)`;
    }
  }
  if (name.length === 0 || name.length > 63 || !LABEL_NAME_RE.test(name)) {
    return `label name "${name}" must be 1-63 characters, alphanumeric at both ends, with '-', '_' or '.' inside`;
  }
  return null;
}

/** Why `value` is not a valid label value, or null when it is (empty is valid). */
export function labelValueProblem(value: string): string | null {
  if (value === "") return null;
  if (value.length > 63 || !LABEL_NAME_RE.test(value)) {
    return `label value "${value.slice(0, 80)}" must be empty or 1-63 characters, alphanumeric at both ends, with '-', '_' or '.' inside`;
  }
  return null;
}

export const labelKeySchema = z.string().max(317).superRefine((k, ctx) => {
  const problem = labelKeyProblem(k);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});
export const labelValueSchema = z.string().max(63).superRefine((v, ctx) => {
  const problem = labelValueProblem(v);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** An instance's labels: at most 64 `key: value` pairs. */
export const labelsSchema = z.record(labelKeySchema, labelValueSchema)
  .refine((m) => Object.keys(m).length <= MAX_LABELS, `at most ${MAX_LABELS} labels`)
  .meta({ description: "Kubernetes-style labels: key `[prefix/]name`, value empty or 1-63 characters (docs/rollouts.md)" });

/** A PATCH of labels: a string sets the label, null removes it. The result must still hold at most 64. */
export const labelsPatchSchema = z.record(labelKeySchema, labelValueSchema.nullable())
  .meta({ description: "label → value to set, or null to remove it" });

/** Applies a labels PATCH; the caller checks the result's size (it depends on what was there). */
export function applyLabelsPatch(current: Record<string, string>, patch: Record<string, string | null>): Record<string, string> {
  const next = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete next[k];
    else next[k] = v;
  }
  return next;
}
