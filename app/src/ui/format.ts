/** How numbers read in the console: sizes, money, counts, instants. Pure, unit-tested. */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "—";
  let v = Math.abs(bytes);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
  const digits = u === 0 || v >= 100 ? 0 : 1;
  return `${bytes < 0 ? "-" : ""}${v.toFixed(digits)} ${UNITS[u]}`;
}

/** The API sends costs as decimal strings (exact); a person reads cents, or more digits below a cent. */
export function formatUsd(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === "") return "—";
  const n = typeof value === "number" ? value : Number(value);
  if (!Number.isFinite(n)) return "—";
  if (n !== 0 && Math.abs(n) < 0.01) return `$${n.toPrecision(2)}`;
  return `$${n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** 1234 → "1,234"; 1_250_000 → "1.25M" when compact. */
export function formatCount(n: number | null | undefined, compact = false): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  if (!compact || Math.abs(n) < 10_000) return n.toLocaleString("en-US");
  for (const [div, suffix] of [[1e9, "B"], [1e6, "M"], [1e3, "k"]] as const) {
    if (Math.abs(n) >= div) return `${Number((n / div).toPrecision(3))}${suffix}`;
  }
  return String(n);
}

/** Used vs limit as a fraction for a <meter>, and words for it; null limit is "no limit". */
export function usageOf(used: number, limit: number | null): { ratio: number | null; words: string } {
  if (limit === null) return { ratio: null, words: `${formatCount(used)} (no limit)` };
  const ratio = limit === 0 ? (used > 0 ? 1 : 0) : Math.min(1, used / limit);
  return { ratio, words: `${formatCount(used)} of ${formatCount(limit)} (${Math.round((limit === 0 ? ratio : used / limit) * 100)} %)` };
}

/** An instant for a table cell: "2026-12-02 11:59:51" in local time, sortable and dense. */
export function formatInstant(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A <input type="datetime-local"> value (local time) as the ISO instant the API wants; empty stays absent. */
export function localInputToIso(value: string): string | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}
