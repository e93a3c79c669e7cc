// A time-series chart on uPlot (small and fast for thousands of 5 s samples), coloured from
// the theme's CSS variables and resized with its container.

import { useEffect, useRef } from "react";
import uPlot from "uplot";
import { timeTicks } from "../lib/format";

export interface Series {
  label: string;
  /** A CSS variable name holding the colour, e.g. `--chart-1`. */
  color: string;
  values: (number | null)[];
  fill?: boolean;
}

const HEIGHT = 180;

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

export function TimeChart({ x, series, label, unit, theme }: { x: number[]; series: Series[]; label: string; unit?: string; theme: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join("|");

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const axisColor = cssVar("--text-muted");
    const grid = cssVar("--border");
    const opts: uPlot.Options = {
      width: el.clientWidth || 400,
      height: HEIGHT,
      padding: [8, 8, 0, 0],
      cursor: { drag: { x: false, y: false } },
      legend: { show: true, live: true },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        {
          stroke: axisColor,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid },
          // Room for "13:05" or "Mar 1" with a gap, and labels that short: uPlot's own
          // ("1:05:30 PM") ran into each other on a narrow card.
          space: 64,
          values: (u, splits) => timeTicks(splits, (u.scales.x?.max ?? 0) - (u.scales.x?.min ?? 0)),
        },
        {
          stroke: axisColor,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid },
          size: 48,
          values: (_u, vals) => vals.map((v) => (v >= 1000 ? `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k` : String(Math.round(v * 10) / 10)) + (unit ?? "")),
        },
      ],
      series: [
        {},
        ...series.map((s) => {
          const c = cssVar(s.color);
          return {
            label: s.label,
            stroke: c,
            width: 2,
            fill: s.fill ? `${c}22` : undefined,
            points: { show: false },
            spanGaps: false,
            value: (_u: uPlot, v: number | null) => (v == null ? "—" : `${Math.round(v * 10) / 10}${unit ?? ""}`),
          };
        }),
      ],
    };
    const data = [x, ...series.map((s) => s.values)] as uPlot.AlignedData;
    plot.current = new uPlot(opts, data, el);
    let lastWidth = el.clientWidth;
    const ro = new ResizeObserver(() => {
      if (el.clientWidth !== lastWidth) {
        lastWidth = el.clientWidth;
        plot.current?.setSize({ width: el.clientWidth, height: HEIGHT });
      }
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // Recreated when the series or the theme change; data updates go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, theme, unit]);

  useEffect(() => {
    plot.current?.setData([x, ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [x, series]);

  return <div className="chart-box" ref={box} role="img" aria-label={label} />;
}
