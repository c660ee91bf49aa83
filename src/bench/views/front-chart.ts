/** One model on the chart. */
export interface ChartPoint {
  /** Shown beside the point (escaped). */
  label: string;
  /** x. */
  cost: number;
  /** y. */
  quality: number;
  /** Highlighted and joined by the front line when true; muted when dominated. */
  onFront: boolean;
}

/** An axis: its title and how its tick values are written. */
export interface ChartAxis {
  /** e.g. `size — lower is better`. */
  title: string;
  /** How a value is written at a tick. @default a number of 4 significant digits */
  format?: (value: number) => string;
}

/** Input of {@link renderFrontChart}. */
export interface FrontChartOptions {
  title: string;
  cost: ChartAxis;
  quality: ChartAxis;
  points: readonly ChartPoint[];
  /** @default 720 */
  width?: number;
  /** @default 480 */
  height?: number;
}

const MARGIN = { left: 84, right: 150, top: 44, bottom: 64 };

/**
 * The quality-versus-cost chart as a standalone SVG document, written by hand (no dependency):
 * axes with ticks and titles, one point per model labelled with its name, the front's points
 * highlighted and joined by a line in cost order, dominated points muted. A single point or
 * equal values get a padded range, so every point sits inside the plot.
 */
export function renderFrontChart(options: FrontChartOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 480;
  const plot = { left: MARGIN.left, right: width - MARGIN.right, top: MARGIN.top, bottom: height - MARGIN.bottom };
  const xTicks = niceTicks(padded(options.points.map((point) => point.cost)));
  const yTicks = niceTicks(padded(options.points.map((point) => point.quality)));
  const scale = (value: number, ticks: number[], from: number, to: number): number => {
    const low = ticks[0]!;
    const high = ticks[ticks.length - 1]!;
    return from + ((value - low) / (high - low)) * (to - from);
  };
  const x = (value: number): number => round(scale(value, xTicks, plot.left, plot.right));
  const y = (value: number): number => round(scale(value, yTicks, plot.bottom, plot.top));
  const formatX = options.cost.format ?? formatNumber;
  const formatY = options.quality.format ?? formatNumber;

  const parts: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
  ];
  // Grid and ticks.
  for (const tick of xTicks) {
    const at = x(tick);
    parts.push(`<line x1="${at}" y1="${plot.top}" x2="${at}" y2="${plot.bottom}" stroke="#eeeeee"/>`);
    parts.push(`<line x1="${at}" y1="${plot.bottom}" x2="${at}" y2="${plot.bottom + 5}" stroke="#333333"/>`);
    parts.push(`<text x="${at}" y="${plot.bottom + 18}" text-anchor="middle">${escapeXml(formatX(tick))}</text>`);
  }
  for (const tick of yTicks) {
    const at = y(tick);
    parts.push(`<line x1="${plot.left}" y1="${at}" x2="${plot.right}" y2="${at}" stroke="#eeeeee"/>`);
    parts.push(`<line x1="${plot.left - 5}" y1="${at}" x2="${plot.left}" y2="${at}" stroke="#333333"/>`);
    parts.push(`<text x="${plot.left - 8}" y="${at + 4}" text-anchor="end">${escapeXml(formatY(tick))}</text>`);
  }
  // Axes and their titles.
  parts.push(`<line x1="${plot.left}" y1="${plot.bottom}" x2="${plot.right}" y2="${plot.bottom}" stroke="#333333"/>`);
  parts.push(`<line x1="${plot.left}" y1="${plot.top}" x2="${plot.left}" y2="${plot.bottom}" stroke="#333333"/>`);
  parts.push(`<text x="${round((plot.left + plot.right) / 2)}" y="${height - 16}" text-anchor="middle">${escapeXml(options.cost.title)}</text>`);
  const yMiddle = round((plot.top + plot.bottom) / 2);
  parts.push(`<text x="18" y="${yMiddle}" text-anchor="middle" transform="rotate(-90 18 ${yMiddle})">${escapeXml(options.quality.title)}</text>`);
  // The front line, in cost order.
  const front = options.points.filter((point) => point.onFront).sort((a, b) => a.cost - b.cost || a.quality - b.quality);
  if (front.length > 1) {
    const path = front.map((point) => `${x(point.cost)},${y(point.quality)}`).join(" ");
    parts.push(`<polyline points="${path}" fill="none" stroke="#1f6fb4" stroke-width="2"/>`);
  }
  // Dominated points first, so front points are drawn on top.
  const ordered = [...options.points].sort((a, b) => Number(a.onFront) - Number(b.onFront));
  for (const point of ordered) {
    const [px, py] = [x(point.cost), y(point.quality)];
    const [fill, text, radius] = point.onFront ? ["#1f6fb4", "#102a43", 6] : ["#bbbbbb", "#888888", 4.5];
    parts.push(
      `<g class="${point.onFront ? "front" : "dominated"}">` +
        `<circle cx="${px}" cy="${py}" r="${radius}" fill="${fill}" stroke="#ffffff"/>` +
        `<text x="${round(px + 8)}" y="${round(py - 8)}" fill="${text}">${escapeXml(point.label)}</text>` +
        `</g>`,
    );
  }
  // Legend.
  const legendX = plot.right + 16;
  parts.push(`<circle cx="${legendX}" cy="${plot.top + 6}" r="6" fill="#1f6fb4"/><text x="${legendX + 12}" y="${plot.top + 10}">on the front</text>`);
  parts.push(`<circle cx="${legendX}" cy="${plot.top + 26}" r="4.5" fill="#bbbbbb"/><text x="${legendX + 12}" y="${plot.top + 30}">dominated</text>`);
  parts.push(`</svg>`);
  return `${parts.join("\n")}\n`;
}

/** Text safe inside an XML element or attribute. */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (character) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[character]!);
}

/**
 * Round tick values (1, 2 or 5 × 10^k apart, about five of them) whose first is at or below
 * the smallest value and whose last is at or above the largest. One value, or equal values,
 * get a range around them; no values, the range 0–1.
 */
export function niceTicks(values: readonly number[], count = 5): number[] {
  const finite = values.filter(Number.isFinite);
  let low = finite.length > 0 ? Math.min(...finite) : 0;
  let high = finite.length > 0 ? Math.max(...finite) : 1;
  if (low === high) {
    const pad = low === 0 ? 1 : Math.abs(low) * 0.1;
    low -= pad;
    high += pad;
  }
  const rough = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= rough)!;
  const first = Math.floor(low / step) * step;
  const ticks: number[] = [];
  for (let tick = first; tick < high + step / 2; tick += step) ticks.push(Number(tick.toPrecision(12)));
  if (ticks[ticks.length - 1]! < high) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks.length >= 2 ? ticks : [first, first + step];
}

/** The values and 4% of their span beyond each end, so that no point sits on an axis. */
function padded(values: readonly number[]): number[] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [];
  const [low, high] = [Math.min(...finite), Math.max(...finite)];
  const pad = (high - low) * 0.04;
  return [...finite, low - pad, high + pad];
}

function formatNumber(value: number): string {
  return Number(value.toPrecision(4)).toString();
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
