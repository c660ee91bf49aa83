/**
 * Sizes and durations as people write them in flags, variables and config files, parsed into
 * bytes and milliseconds. Both return `undefined` for text they cannot read, so the config
 * layer can name the flag and the variable in its own error.
 */

const BYTE_UNITS: Readonly<Record<string, number>> = Object.freeze({
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
});

const DURATION_UNITS: Readonly<Record<string, number>> = Object.freeze({
  ms: 1,
  "": 1000,
  s: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
});

/**
 * Bytes from `2GiB`, `512MiB`, `1.5GB`, `2G` (= GiB, as llama.cpp and Ollama read it) or a plain
 * number of bytes; `0`, `off` and `none` are 0 (no budget).
 *
 * @example parseByteSize("2GiB") // 2147483648
 */
export function parseByteSize(text: string | number): number | undefined {
  if (typeof text === "number") return Number.isFinite(text) && text >= 0 ? Math.floor(text) : undefined;
  const trimmed = text.trim().toLowerCase();
  if (trimmed === "off" || trimmed === "none") return 0;
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(trimmed);
  if (!match) return undefined;
  const unit = BYTE_UNITS[match[2]!];
  return unit === undefined ? undefined : Math.floor(Number(match[1]) * unit);
}

/**
 * Milliseconds from `10m`, `30s`, `1h`, `250ms` or a plain number of seconds; `0`, `off` and
 * `never` are 0 (never).
 *
 * @example parseDuration("10m") // 600000
 */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === "number") return Number.isFinite(text) && text >= 0 ? Math.floor(text * 1000) : undefined;
  const trimmed = text.trim().toLowerCase();
  if (trimmed === "off" || trimmed === "never") return 0;
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(trimmed);
  if (!match) return undefined;
  const unit = DURATION_UNITS[match[2]!];
  return unit === undefined ? undefined : Math.floor(Number(match[1]) * unit);
}
