import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from "chart.js";
import { useEffect, useRef } from "preact/hooks";
import { bucketLabel, type UsageChartData, type UsageMeasure } from "./usage-series.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

/** Colours of the stacked series, told apart also by their order in the legend. */
const PALETTE = ["#1f6f43", "#0a58ca", "#b35c00", "#7b3fa0", "#b42318", "#0f7b8a", "#6b6b00", "#a0466e"];

export interface UsageChartProps {
  readonly data: UsageChartData;
  readonly measure: UsageMeasure;
  /** Read by screen readers instead of the canvas; the totals table holds the numbers. */
  readonly description: string;
}

/** Stacked bars of tokens or requests per hour or day, one colour per model or key. */
export function UsageChart({ data, measure, description }: UsageChartProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<"bar"> | undefined>(undefined);

  useEffect(() => {
    chart.current = new Chart(canvas.current!, {
      type: "bar",
      data: { labels: [], datasets: [] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
    return () => chart.current?.destroy();
  }, []);

  useEffect(() => {
    const current = chart.current;
    if (!current) return;
    current.data.labels = data.buckets.map(bucketLabel);
    current.data.datasets = data.series.map((series, position) => ({
      label: series.label,
      data: series.values,
      backgroundColor: PALETTE[position % PALETTE.length],
    }));
    const y = current.options.scales?.["y"];
    if (y) y.title = { display: true, text: measure };
    current.update();
  }, [data, measure]);

  return (
    <div class="usage-chart">
      <canvas ref={canvas} role="img" aria-label={description} />
    </div>
  );
}
