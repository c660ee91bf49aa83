/**
 * Ollama's `keep_alive`: how long a model stays loaded after a request, in milliseconds.
 * `Infinity` keeps it loaded (a negative value); 0 unloads it once the request ends.
 *
 * It follows ollama/ollama `api/types.go` (`Duration.UnmarshalJSON`) and `envconfig.KeepAlive`:
 * a JSON number is seconds (fractions allowed), a string is a Go duration (`"5m"`, `"1h30m"`,
 * `"1.5h"`, `"250ms"`, `"-1m"`), and, as the environment variable reads it, a string of digits is
 * seconds (`"300"`, `"-1"`). Anything negative means forever.
 */
export const KEEP_FOREVER = Number.POSITIVE_INFINITY;

/** Longest finite keep-alive accepted; past it the value is forever (Go's durations stop near 292 years). */
const MAX_FINITE_MS = 100 * 365 * 24 * 3_600_000;

const GO_UNITS: Readonly<Record<string, number>> = Object.freeze({
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
});

/**
 * Milliseconds from a keep-alive value, or `undefined` when it is not one.
 *
 * @example
 * parseKeepAlive("5m")     // 300000
 * parseKeepAlive("1h30m")  // 5400000
 * parseKeepAlive(30)       // 30000
 * parseKeepAlive(-1)       // Infinity
 * parseKeepAlive("later")  // undefined
 */
export function parseKeepAlive(value: string | number): number | undefined {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return undefined;
    return value < 0 ? KEEP_FOREVER : bounded(value * 1000);
  }
  const text = value.trim();
  if (/^[-+]?\d+$/.test(text)) {
    const seconds = Number(text);
    return seconds < 0 ? KEEP_FOREVER : bounded(seconds * 1000);
  }
  const milliseconds = parseGoDuration(text);
  if (milliseconds === undefined) return undefined;
  return milliseconds < 0 ? KEEP_FOREVER : bounded(milliseconds);
}

/** Go's `time.ParseDuration` grammar: an optional sign, then one or more `<decimal><unit>`. */
function parseGoDuration(text: string): number | undefined {
  const match = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text);
  if (!match) return undefined;
  let total = 0;
  for (const part of match[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * GO_UNITS[part[2]!]!;
  }
  return match[1] === "-" ? -total : total;
}

function bounded(milliseconds: number): number {
  return milliseconds > MAX_FINITE_MS ? KEEP_FOREVER : Math.round(milliseconds);
}

/** A keep-alive as people write it back: `forever`, `0s`, `5m`, `1h30m`, `1.5s`. */
export function formatKeepAlive(milliseconds: number): string {
  if (milliseconds === KEEP_FOREVER) return "forever";
  if (milliseconds === 0) return "0s";
  let rest = milliseconds;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = rest / 1000;
  return `${hours > 0 ? `${hours}h` : ""}${minutes > 0 ? `${minutes}m` : ""}${seconds > 0 ? `${Number(seconds.toFixed(3))}s` : ""}`;
}
