/** How the Models page writes sizes, counts, digests and model labels. */

const BYTE_UNITS = ["B", "KB", "MB", "GB", "TB"];

/** `1.2 MB`: decimal units, as disk sizes are usually quoted. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < BYTE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${BYTE_UNITS[unit]}`;
}

/** `4.2M`, `1.1B`: a parameter count the way model cards quote it. */
export function formatCount(count: number): string {
  for (const [size, suffix] of [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]] as const) {
    if (count >= size) return `${(count / size).toFixed(count / size < 10 ? 2 : 1)}${suffix}`;
  }
  return String(count);
}

/** `sha256:3f2a9c01…` → `3f2a9c01`: enough of a digest to tell models apart at a glance. */
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

/** A local date and time, to the minute. */
export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
