import { Chart, LinearScale, LineElement, PointElement, ScatterController, Tooltip, type ChartDataset } from "chart.js";
import { useEffect, useRef } from "preact/hooks";
import { formatBytes, formatMetric, formatRate } from "../../format.js";
import type { Front, FrontCost, FrontModel } from "./leaderboard-api.js";

// Only what a scatter with a joined front needs, so the bundle carries no other chart types. The
// legend is HTML below the canvas: real text, and the canvas's colours then belong to the points.
Chart.register(ScatterController, LineElement, PointElement, LinearScale, Tooltip);

/** The costs a front can use, as the chart names them. */
export const COST_AXES: readonly { cost: FrontCost; label: string; format: (value: number) => string }[] = [
  { cost: "size", label: "File size", format: formatBytes },
  { cost: "peakRssBytes", label: "Peak memory", format: formatBytes },
  { cost: "decodeTokensPerSecond", label: "Decode tokens/s", format: formatRate },
];

const FRONT_COLOUR = "#1f6f43";
const DOMINATED_COLOUR = "rgba(89, 99, 110, 0.35)";

/** A model's label on the chart and in the text. */
export function frontLabel(model: { names: string[]; digest: string }): string {
  return model.names[0] ?? model.digest.replace(/^sha256:/, "").slice(0, 12);
}

function direction(higherIsBetter: boolean): string {
  return higherIsBetter ? "higher is better" : "lower is better";
}

/** The axis titles of a front, e.g. `perplexity (lower is better)`. */
export function axisTitles(front: Front): { x: string; y: string } {
  const cost = COST_AXES.find((axis) => axis.cost === front.cost.metric);
  return {
    x: `${cost?.label ?? front.cost.metric} (${direction(front.cost.higherIsBetter)})`,
    y: `${front.quality.metric === front.task ? front.task : `${front.quality.metric} on ${front.task}`} (${direction(front.quality.higherIsBetter)})`,
  };
}

/** What the chart says, for the canvas's `aria-label`: the axes, the count, and who is on the front. */
export function describeFront(front: Front): string {
  const { x, y } = axisTitles(front);
  const placed = front.front.length + front.dominated.length;
  const names = (models: FrontModel[]) => models.map(frontLabel).join(", ");
  return `Scatter chart of ${y} against ${x} for ${placed} model${placed === 1 ? "" : "s"}. ` +
    `On the Pareto front: ${names(front.front) || "none"}.` +
    (front.dominated.length > 0 ? ` Dominated: ${names(front.dominated)}.` : "");
}

/**
 * The quality-versus-cost scatter: the front's points joined by a line in the accent colour,
 * dominated points dimmed; the tooltip names the model. Drawn once per front, without animation
 * (a test reads the pixels, and motion adds nothing to a handful of points).
 */
export function FrontChart({ front }: { front: Front }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (canvas.current === null) return;
    const costAxis = COST_AXES.find((axis) => axis.cost === front.cost.metric);
    const { x, y } = axisTitles(front);
    const point = (model: FrontModel) => ({ x: model.cost, y: model.quality });
    const groups = [front.front, front.dominated];
    const datasets: ChartDataset<"scatter">[] = [
      { label: "Pareto front", data: front.front.map(point), showLine: true, borderColor: FRONT_COLOUR, backgroundColor: FRONT_COLOUR, pointRadius: 6, pointHoverRadius: 8 },
      { label: "Dominated", data: front.dominated.map(point), borderColor: DOMINATED_COLOUR, backgroundColor: DOMINATED_COLOUR, pointRadius: 5, pointHoverRadius: 7 },
    ];
    const chart = new Chart(canvas.current, {
      type: "scatter",
      data: { datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { title: { display: true, text: x }, ticks: { callback: (value) => (costAxis ? costAxis.format(Number(value)) : String(value)) } },
          y: { title: { display: true, text: y }, ticks: { callback: (value) => formatMetric(Number(value)) } },
        },
        plugins: {
          // Another page may have registered chart.js's legend (registration is global): this chart's is HTML.
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: (item) => {
                const model = groups[item.datasetIndex]?.[item.dataIndex];
                if (model === undefined) return "";
                return `${frontLabel(model)} (${model.quantization}): ${front.quality.metric} ${formatMetric(model.quality)}, ${costAxis?.label ?? front.cost.metric} ${costAxis ? costAxis.format(model.cost) : model.cost}`;
              },
            },
          },
        },
      },
    });
    return () => chart.destroy();
  }, [front]);
  return (
    <figure class="front-figure">
      <div class="front-chart">
        <canvas ref={canvas} role="img" aria-label={describeFront(front)} />
      </div>
      <figcaption class="front-legend" aria-hidden="true">
        <span class="swatch on-front" /> Pareto front (joined by a line) <span class="swatch dominated" /> Dominated
      </figcaption>
    </figure>
  );
}
