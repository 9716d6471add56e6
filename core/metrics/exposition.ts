/**
 * Renders series in the Prometheus text exposition format (0.0.4) or, when
 * the scraper asks for it, OpenMetrics 1.0. The differences that matter: an
 * OpenMetrics counter family is named without `_total` in its TYPE line, and
 * the body ends with `# EOF`.
 */
import type { SeriesDef } from "./series.ts";

export type Labels = Record<string, string>;

export interface Sample {
  labels: Labels;
  value: number;
}

/** A histogram's raw state: per-bucket counts (not cumulative; index = bucket, the last is +Inf), sum, count. */
export interface HistogramSample {
  labels: Labels;
  buckets: number[];
  sum: number;
  count: number;
}

export type Family = { def: SeriesDef; samples: Sample[] } | { def: SeriesDef & { buckets: readonly number[] }; histograms: HistogramSample[] };

export type Format = "prometheus" | "openmetrics";

export const CONTENT_TYPES: Record<Format, string> = {
  prometheus: "text/plain; version=0.0.4; charset=utf-8",
  openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8",
};

/** OpenMetrics only when the Accept header names it (Prometheus sends both, OpenMetrics first, when enabled). */
export function negotiate(accept: string | undefined): Format {
  return accept && /application\/openmetrics-text/i.test(accept) ? "openmetrics" : "prometheus";
}

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  if (extra) pairs.push(extra);
  return pairs.length ? `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}` : "";
}

function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export function render(families: Family[], format: Format): string {
  const out: string[] = [];
  for (const family of families) {
    const { def } = family;
    const familyName = format === "openmetrics" && def.type === "counter" ? def.name.replace(/_total$/, "") : def.name;
    out.push(`# HELP ${familyName} ${escapeHelp(def.help)}`, `# TYPE ${familyName} ${def.type}`);
    if ("samples" in family) {
      for (const s of family.samples) out.push(`${def.name}${labelText(s.labels)} ${num(s.value)}`);
      continue;
    }
    for (const h of family.histograms) {
      let cumulative = 0;
      family.def.buckets.forEach((le, i) => {
        cumulative += h.buckets[i] ?? 0;
        out.push(`${def.name}_bucket${labelText(h.labels, ["le", num(le)])} ${cumulative}`);
      });
      cumulative += h.buckets[family.def.buckets.length] ?? 0;
      out.push(`${def.name}_bucket${labelText(h.labels, ["le", "+Inf"])} ${cumulative}`);
      out.push(`${def.name}_sum${labelText(h.labels)} ${num(h.sum)}`, `${def.name}_count${labelText(h.labels)} ${h.count}`);
    }
  }
  if (format === "openmetrics") out.push("# EOF");
  return `${out.join("\n")}\n`;
}
