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
/** Width of one character of a 12 px label, an estimate on the wide side (no font metrics here). */
export const LABEL_CHAR_WIDTH = 7;
/** Height of a 12 px label's box. */
export const LABEL_HEIGHT = 14;
/** Values all positive and this many times apart are drawn on a logarithmic axis. */
export const LOG_SCALE_RATIO = 10;

/** An axis's ticks and how a value maps to [0, 1] along it. */
interface Scale {
  ticks: number[];
  log: boolean;
  at: (value: number) => number;
}

/**
 * Linear ticks over the values, or logarithmic ones when every value is positive and the
 * largest is {@link LOG_SCALE_RATIO} or more times the smallest (perplexity of a trained model
 * beside an untrained one; sizes of a family of several sizes), so that close models do not
 * collapse into one corner. Values that are all non-negative get no tick below zero.
 */
function scaleOf(values: readonly number[]): Scale {
  const finite = values.filter(Number.isFinite);
  const low = Math.min(...finite);
  const high = Math.max(...finite);
  const log = finite.length > 1 && low > 0 && high / low >= LOG_SCALE_RATIO;
  const ticks = log ? logTicks(finite) : niceTicks(padded(finite));
  const transform = log ? Math.log10 : (value: number) => value;
  const [first, last] = [transform(ticks[0]!), transform(ticks[ticks.length - 1]!)];
  return { ticks, log, at: (value) => (transform(value) - first) / (last - first) };
}

/** A label's box, in SVG coordinates. */
interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

const overlaps = (a: Box, b: Box): boolean => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

/**
 * Where each label goes: beside its point (above right, below right, above left, below left),
 * else stepped further up or down until it overlaps no other label, no point, nothing
 * `reserved` (the legend) and stays in the chart. Front points are placed first, so their labels get the nearest places. Returns the
 * text's anchor (left end of the baseline) per point, in the input order.
 */
function placeLabels(points: readonly { x: number; y: number; label: string; onFront: boolean }[], bounds: Box, reserved: readonly Box[]): { x: number; y: number }[] {
  const pointBoxes = points.map((point): Box => ({ left: point.x - 5, top: point.y - 5, right: point.x + 5, bottom: point.y + 5 }));
  const placed: Box[] = [...reserved];
  const anchors: { x: number; y: number }[] = new Array(points.length);
  const order = points.map((_, index) => index).sort((a, b) => Number(points[b]!.onFront) - Number(points[a]!.onFront) || points[a]!.x - points[b]!.x);
  for (const index of order) {
    const point = points[index]!;
    const width = point.label.length * LABEL_CHAR_WIDTH;
    const boxAt = (x: number, baseline: number): Box => ({ left: x, top: baseline - LABEL_HEIGHT + 3, right: x + width, bottom: baseline + 3 });
    const candidates: [number, number][] = [];
    const right = point.x + 8;
    const left = point.x - 8 - width;
    for (let step = 0; step <= 12; step++) {
      const lift = step * LABEL_HEIGHT;
      for (const x of [right, left]) candidates.push([x, point.y - 8 - lift], [x, point.y + 8 + LABEL_HEIGHT - 3 + lift]);
    }
    const fits = (box: Box): boolean =>
      box.left >= bounds.left && box.right <= bounds.right && box.top >= bounds.top && box.bottom <= bounds.bottom &&
      !placed.some((other) => overlaps(box, other)) && !pointBoxes.some((other, otherIndex) => otherIndex !== index && overlaps(box, other));
    const chosen = candidates.find(([x, baseline]) => fits(boxAt(x, baseline))) ?? candidates[0]!;
    placed.push(boxAt(chosen[0], chosen[1]));
    anchors[index] = { x: round(chosen[0]), y: round(chosen[1]) };
  }
  return anchors;
}

/**
 * The quality-versus-cost chart as a standalone SVG document, written by hand (no dependency):
 * axes with ticks and titles (logarithmic where the values span a factor of
 * {@link LOG_SCALE_RATIO}), one point per model labelled with its name (labels moved apart
 * where points crowd, with a leader line back to a moved label's point), the front's points
 * highlighted and joined by a line in cost order, dominated points muted. A single point or
 * equal values get a padded range, so every point sits inside the plot.
 */
export function renderFrontChart(options: FrontChartOptions): string {
  const width = options.width ?? 720;
  const height = options.height ?? 480;
  const plot = { left: MARGIN.left, right: width - MARGIN.right, top: MARGIN.top, bottom: height - MARGIN.bottom };
  const xScale = scaleOf(options.points.map((point) => point.cost));
  const yScale = scaleOf(options.points.map((point) => point.quality));
  const x = (value: number): number => round(plot.left + xScale.at(value) * (plot.right - plot.left));
  const y = (value: number): number => round(plot.bottom + yScale.at(value) * (plot.top - plot.bottom));
  const formatX = options.cost.format ?? formatNumber;
  const formatY = options.quality.format ?? formatNumber;
  const titled = (axis: ChartAxis, scale: Scale): string => (scale.log ? `${axis.title}, log scale` : axis.title);

  const parts: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
  ];
  // Grid and ticks.
  for (const tick of xScale.ticks) {
    const at = x(tick);
    parts.push(`<line x1="${at}" y1="${plot.top}" x2="${at}" y2="${plot.bottom}" stroke="#eeeeee"/>`);
    parts.push(`<line x1="${at}" y1="${plot.bottom}" x2="${at}" y2="${plot.bottom + 5}" stroke="#333333"/>`);
    parts.push(`<text x="${at}" y="${plot.bottom + 18}" text-anchor="middle">${escapeXml(formatX(tick))}</text>`);
  }
  for (const tick of yScale.ticks) {
    const at = y(tick);
    parts.push(`<line x1="${plot.left}" y1="${at}" x2="${plot.right}" y2="${at}" stroke="#eeeeee"/>`);
    parts.push(`<line x1="${plot.left - 5}" y1="${at}" x2="${plot.left}" y2="${at}" stroke="#333333"/>`);
    parts.push(`<text x="${plot.left - 8}" y="${at + 4}" text-anchor="end">${escapeXml(formatY(tick))}</text>`);
  }
  // Axes and their titles.
  parts.push(`<line x1="${plot.left}" y1="${plot.bottom}" x2="${plot.right}" y2="${plot.bottom}" stroke="#333333"/>`);
  parts.push(`<line x1="${plot.left}" y1="${plot.top}" x2="${plot.left}" y2="${plot.bottom}" stroke="#333333"/>`);
  parts.push(`<text x="${round((plot.left + plot.right) / 2)}" y="${height - 16}" text-anchor="middle">${escapeXml(titled(options.cost, xScale))}</text>`);
  const yMiddle = round((plot.top + plot.bottom) / 2);
  parts.push(`<text x="18" y="${yMiddle}" text-anchor="middle" transform="rotate(-90 18 ${yMiddle})">${escapeXml(titled(options.quality, yScale))}</text>`);
  // The front line, in cost order.
  const front = options.points.filter((point) => point.onFront).sort((a, b) => a.cost - b.cost || a.quality - b.quality);
  if (front.length > 1) {
    const path = front.map((point) => `${x(point.cost)},${y(point.quality)}`).join(" ");
    parts.push(`<polyline points="${path}" fill="none" stroke="#1f6fb4" stroke-width="2"/>`);
  }
  const located = options.points.map((point) => ({ ...point, x: x(point.cost), y: y(point.quality) }));
  const legend: Box = { left: plot.right + 8, top: plot.top - 4, right: width, bottom: plot.top + 36 };
  const anchors = placeLabels(located, { left: 4, top: MARGIN.top - 8, right: width - 4, bottom: plot.bottom }, [legend]);
  // Dominated points first, so front points are drawn on top.
  const ordered = located.map((point, index) => ({ point, anchor: anchors[index]! })).sort((a, b) => Number(a.point.onFront) - Number(b.point.onFront));
  for (const { point, anchor } of ordered) {
    const [fill, text, radius] = point.onFront ? ["#1f6fb4", "#102a43", 6] : ["#bbbbbb", "#888888", 4.5];
    // A label moved away from its point is tied back to it.
    const moved = Math.abs(anchor.y - (point.y - 8)) > LABEL_HEIGHT / 2 && Math.abs(anchor.y - (point.y + 8 + LABEL_HEIGHT - 3)) > LABEL_HEIGHT / 2;
    const labelWidth = point.label.length * LABEL_CHAR_WIDTH;
    const leaderX = anchor.x > point.x ? anchor.x : anchor.x + labelWidth;
    parts.push(
      `<g class="${point.onFront ? "front" : "dominated"}">` +
        (moved ? `<line x1="${point.x}" y1="${point.y}" x2="${round(leaderX)}" y2="${round(anchor.y - 4)}" stroke="${fill}" stroke-width="0.8"/>` : "") +
        `<circle cx="${point.x}" cy="${point.y}" r="${radius}" fill="${fill}" stroke="#ffffff"/>` +
        `<text x="${anchor.x}" y="${anchor.y}" fill="${text}">${escapeXml(point.label)}</text>` +
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

/**
 * Ticks of a logarithmic axis over positive values: 1, 2 and 5 × 10^k over up to three
 * decades, powers of ten beyond; the first at or below the smallest value less 4% of the span
 * (in log terms), the last at or above the largest plus 4%.
 */
export function logTicks(values: readonly number[]): number[] {
  const positive = values.filter((value) => Number.isFinite(value) && value > 0);
  if (positive.length === 0) return [1, 10];
  const [low, high] = [Math.min(...positive), Math.max(...positive)];
  const pad = (Math.log10(high) - Math.log10(low)) * 0.04;
  const [from, to] = [Math.log10(low) - pad, Math.log10(high) + pad];
  const factors = to - from > 3 ? [1] : [1, 2, 5];
  const candidates: number[] = [];
  for (let power = Math.floor(from) - 1; power <= Math.ceil(to) + 1; power++) {
    for (const factor of factors) candidates.push(Number((factor * 10 ** power).toPrecision(12)));
  }
  const first = candidates.filter((tick) => Math.log10(tick) <= from).at(-1)!;
  const last = candidates.find((tick) => Math.log10(tick) >= to)!;
  return candidates.filter((tick) => tick >= first && tick <= last);
}

/**
 * The values and 4% of their span beyond each end, so that no point sits on an axis; values
 * that are all zero or more are not padded below zero (a size or a perplexity has no negative
 * tick).
 */
function padded(values: readonly number[]): number[] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [];
  const [low, high] = [Math.min(...finite), Math.max(...finite)];
  const pad = (high - low) * 0.04;
  return [...finite, low >= 0 ? Math.max(0, low - pad) : low - pad, high + pad];
}

function formatNumber(value: number): string {
  return Number(value.toPrecision(4)).toString();
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
