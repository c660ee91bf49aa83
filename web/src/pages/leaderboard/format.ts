/**
 * How the Leaderboard page writes numbers. Memory and sizes use binary units (KiB, MiB, GiB)
 * because that is how `grove plan` states its limits and reasons, and how budgets are typed.
 */

/** `120.3 KiB`, `153.8 MiB`, `1.37 GiB`. */
export function formatBinaryBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/**
 * A quality metric with enough digits to tell close forks apart: quantized forks often differ
 * in the third decimal of a perplexity, and a KL divergence can be 1e-6.
 */
export function formatMetric(value: number): string {
  const size = Math.abs(value);
  if (size === 0) return "0";
  if (size < 0.001) return value.toExponential(2);
  if (size < 100) return value.toFixed(4);
  if (size < 10_000) return value.toFixed(2);
  return Math.round(value).toLocaleString("en");
}

/** `12.3456 ±0.1234`: a metric and its standard error; the metric alone when the error is unknown. */
export function formatWithError(value: number, error: number | null | undefined, format: (value: number) => string = formatMetric): string {
  return typeof error === "number" ? `${format(value)} ±${format(error)}` : format(value);
}

/** A speed or a duration: `1,680.0`, `5.3`. */
export function formatRate(value: number): string {
  return value.toLocaleString("en", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
}
