/**
 * How every page writes numbers, sizes, money, times and model labels: one module, so that a
 * size reads the same on the Models, Leaderboard and Operations pages. Sizes use binary units
 * (KiB, MiB, GiB) everywhere, because that is how `grove plan` states its limits and reasons,
 * how budgets are typed, and how the loaded models' memory is reported.
 */

const integer = new Intl.NumberFormat("en-US");

/** `120.3 KiB`, `153.8 MiB`, `1.37 GiB`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 40) return `${(bytes / 2 ** 40).toFixed(2)} TiB`;
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** 12,345 */
export function formatCount(value: number): string {
  return integer.format(value);
}

/** `4.2M`, `1.1B`: a parameter count the way model cards quote it. */
export function formatParameterCount(count: number): string {
  for (const [size, suffix] of [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "K"],
  ] as const) {
    if (count >= size) return `${(count / size).toFixed(count / size < 10 ? 2 : 1)}${suffix}`;
  }
  return String(count);
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

/** A speed or a duration: `1,680.0`, `5.3`. */
/** `12.3456 ±0.1234`: a metric and its standard error; the metric alone when the error is unknown. */
export function formatWithError(value: number, error: number | null | undefined, format: (value: number) => string = formatMetric): string {
  return typeof error === "number" ? `${format(value)} ±${format(error)}` : format(value);
}

export function formatRate(value: number): string {
  return value.toLocaleString("en", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
}

/** $0.0123: enough digits for the fractions of a cent that metered requests cost. */
export function formatUsd(value: number): string {
  return `$${value.toFixed(value !== 0 && Math.abs(value) < 0.01 ? 6 : 2)}`;
}

/** 2 min 5 s, 3 h 4 min: idle times. */
export function formatSeconds(seconds: number): string {
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole} s`;
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
}

/** A date and time in the reader's zone, to the minute, e.g. "Nov 29, 2026, 08:21". */
export function formatDateTime(iso: string): string {
  return new Date(iso).toLocaleString("en-US", { dateStyle: "medium", timeStyle: "short", hour12: false });
}

/** `sha256:3f2a9c01…` → `3f2a9c01…` (12 hex digits), as the CLI shows a digest. */
export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}

/** A model's label: its first name, else its short digest. */
export function modelLabel(names: readonly string[], digest: string): string {
  return names[0] ?? shortDigest(digest);
}

/** The reference a card address uses: the first name, else the full digest. */
export function modelRef(names: readonly string[], digest: string): string {
  return names[0] ?? digest;
}
