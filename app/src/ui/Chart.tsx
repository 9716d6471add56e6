/**
 * A time-series or bar chart on uPlot (canvas, ~50 KB, fast with thousands of
 * points). Colours come from the stylesheet's variables, so it follows the dark
 * theme; the size follows the container. A canvas says nothing to a screen
 * reader, so every chart carries a one-line summary as its accessible name.
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { createEffect, onCleanup, onMount } from "solid-js";

export interface ChartSeries {
  label: string;
  /** A CSS variable name of styles.css (e.g. "--accent") or a colour. */
  color: string;
  /** Which y scale: "y" (left) or a second one, drawn on the right. */
  scale?: string;
  format?: (v: number) => string;
  /** Draw as steps (a state such as ready 0/1) rather than a line. */
  stepped?: boolean;
  bars?: boolean;
}

export interface ChartProps {
  /** x values: seconds since the epoch for time charts, or 0..n-1 for categories. */
  x: number[];
  ys: (number | null)[][];
  series: ChartSeries[];
  summary: string;
  height?: number;
  /** Category labels for the x axis (a bar chart over names instead of time). */
  categories?: string[];
  scales?: Record<string, { range?: [number, number] }>;
  testId?: string;
}

function cssColor(v: string): string {
  if (!v.startsWith("--")) return v;
  return getComputedStyle(document.documentElement).getPropertyValue(v).trim() || "#888";
}

export function Chart(props: ChartProps) {
  let host!: HTMLDivElement;
  let plot: uPlot | undefined;

  const options = (width: number): uPlot.Options => {
    const axisColor = cssColor("--muted");
    const grid = { stroke: cssColor("--border"), width: 1 };
    const rightScale = props.series.find((s) => s.scale && s.scale !== "y")?.scale;
    const firstFormat = props.series.find((s) => !s.scale || s.scale === "y")?.format;
    const rightFormat = props.series.find((s) => s.scale === rightScale)?.format;
    const cats = props.categories;
    return {
      width, height: props.height ?? 180,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      // Category (bar) charts: one slot per name, and every value scale from zero.
      scales: cats
        ? { x: { time: false, range: [-0.5, cats.length - 0.5] }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] }, ...(rightScale ? { [rightScale]: { range: (_u: uPlot, _min: number, max: number) => [0, max > 0 ? max * 1.1 : 1] as [number, number] } } : {}), ...(props.scales ?? {}) }
        : { x: { time: true }, ...(props.scales ?? {}) },
      axes: [
        { stroke: axisColor, grid, ticks: grid, ...(cats ? { values: (_u, splits) => splits.map((i) => cats[i] ?? ""), splits: () => cats.map((_, i) => i) } : {}) },
        { stroke: axisColor, grid, ticks: grid, size: 72, ...(firstFormat ? { values: (_u, splits) => splits.map(firstFormat) } : {}) },
        ...(rightScale ? [{ scale: rightScale, side: 1 as const, stroke: axisColor, grid: { show: false }, size: 80,
          // A stepped state (ready 0/1) has two values, not a numeric scale's ticks.
          ...(props.series.some((s) => s.scale === rightScale && s.stepped) ? { splits: () => [0, 1] } : {}), ...(rightFormat ? { values: (_u: uPlot, splits: number[]) => splits.map(rightFormat) } : {}) }] : []),
      ],
      series: [
        cats ? { label: "", value: (_u, i) => (i === null ? "" : cats[i] ?? "") } : {},
        ...props.series.map((s): uPlot.Series => ({
          label: s.label,
          stroke: cssColor(s.color),
          width: 1.5,
          scale: s.scale ?? "y",
          ...(s.format ? { value: (_u: uPlot, v: number | null) => (v === null ? "—" : s.format!(v)) } : {}),
          ...(s.stepped ? { paths: uPlot.paths.stepped!({ align: 1 }) } : {}),
          ...(s.bars ? { paths: uPlot.paths.bars!({ size: [0.6, 60] }), fill: cssColor(s.color), points: { show: false } } : {}),
        })),
      ],
    };
  };

  const data = (): uPlot.AlignedData => [props.x, ...props.ys] as uPlot.AlignedData;

  onMount(() => {
    plot = new uPlot(options(Math.max(200, host.clientWidth)), data(), host);
    const resize = new ResizeObserver(() => plot?.setSize({ width: Math.max(200, host.clientWidth), height: props.height ?? 180 }));
    resize.observe(host);
    onCleanup(() => { resize.disconnect(); plot?.destroy(); plot = undefined; });
  });
  createEffect(() => { const d = data(); plot?.setData(d); });

  return <div class="chart" ref={host} role="img" aria-label={props.summary} data-testid={props.testId} />;
}
