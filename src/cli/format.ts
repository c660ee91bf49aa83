import type { Digest } from "../core/digest.js";
import type { MetadataScalar, MetadataValueSummary } from "../gguf/gguf-metadata-summary.js";

// How the CLI writes tables, sizes, counts, digests and models for people: one module every command imports.

/** Aligned columns with a header row; `rightAligned` per column (numbers). */
export function renderTable(header: string[], rows: string[][], rightAligned: boolean[] = []): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const render = (cells: string[]): string =>
    cells
      .map((cell, column) => {
        if (column === cells.length - 1 && !rightAligned[column]) return cell;
        return rightAligned[column] ? cell.padStart(widths[column]) : cell.padEnd(widths[column]);
      })
      .join("  ")
      .trimEnd();
  return [render(header), ...rows.map(render)].join("\n");
}

/** Bytes for people: `342.2 KB`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} KB`;
  return `${bytes} B`;
}

export function formatCount(count: number): string {
  if (count >= 1e9) return `${(count / 1e9).toFixed(2)}B`;
  if (count >= 1e6) return `${(count / 1e6).toFixed(2)}M`;
  if (count >= 1e3) return `${(count / 1e3).toFixed(1)}K`;
  return String(count);
}

/** A shape in ggml order, e.g. `64 × 512`. */
export function formatShape(shape: readonly number[] | undefined): string {
  return shape === undefined ? "-" : shape.join(" × ");
}

/** One line for a metadata value: scalars quoted when strings, arrays as length, head and digest. */
export function formatMetadataValue(value: MetadataValueSummary, width = 72): string {
  // Quote text only: 64-bit integers also arrive as strings.
  const text = (item: MetadataScalar | undefined): string => (value.type.endsWith("str") || value.type.endsWith("str]") ? JSON.stringify(item) : String(item));
  if (value.length === undefined) return clip(text(value.value), width);
  const items = (value.items ?? []).map(text);
  const head = items.length === 0 ? "" : `: ${clip(items.join(", "), width - 30)}${value.length > items.length ? ", …" : ""}`;
  return `${value.length} items${head} (sha256 ${value.digest?.slice(0, 12) ?? "?"})`;
}

/** `sha256:` and the first 12 hex digits: `sha256:3f2a9c01d4e5…`. */
export function shortDigest(digest: Digest): string {
  return `${digest.slice(0, 19)}…`;
}

/** A model for people: `small:q8 (sha256:3f2a9c01d4e5…)`, or the short digest alone when unnamed. */
export function describeModel(digest: Digest, names: readonly string[]): string {
  return names.length > 0 ? `${names.join(", ")} (${shortDigest(digest)})` : shortDigest(digest);
}

function clip(text: string, width: number): string {
  const line = text.replace(/[\r\n\t]/g, " ");
  return line.length <= width ? line : `${line.slice(0, Math.max(1, width - 1))}…`;
}
