import { stat } from "node:fs/promises";
import type { Command } from "commander";
import { InvalidModelFileError, InvalidRequestError } from "../../core/errors.js";
import { inspectGgufFile, type GgufInspection } from "../../gguf/gguf-inspect.js";
import type { MetadataScalar, MetadataValueSummary } from "../../gguf/gguf-metadata-summary.js";

interface InspectFlags {
  json?: boolean;
  tensors?: boolean;
}

/** Options of {@link formatInspection}. */
export interface FormatInspectionOptions {
  /** Append the tensor table. @default false */
  tensors?: boolean;
}

/**
 * Registers `grove inspect FILE`: the validator's verdict and summary, every metadata key (long
 * arrays summarised) and, with `--tensors`, the tensor table of any GGUF file, without
 * importing it. Exits 1 when the file is missing, not GGUF, or fails validation (after
 * printing what could be read).
 *
 * @example
 * grove inspect model.gguf
 * grove inspect model.gguf --tensors --json
 */
export function registerInspectCommand(program: Command): void {
  program
    .command("inspect")
    .description("show the metadata, tensors and validation verdict of any GGUF file, without importing it")
    .argument("<file>", "GGUF file to read")
    .option("--tensors", "also list every tensor: name, shape, type and bytes")
    .option("--json", "print the result as JSON")
    .action(async (file: string, flags: InspectFlags) => {
      await checkInputFile(file, "file");
      const inspection = await inspectGgufFile(file);
      if (flags.json) {
        // Without --tensors the table is left out (JSON.stringify drops undefined).
        process.stdout.write(`${JSON.stringify(flags.tensors ? inspection : { ...inspection, tensors: undefined })}\n`);
      } else {
        process.stdout.write(formatInspection(inspection, { tensors: flags.tensors === true }));
      }
      // After the report, so that the reason stands next to what the file holds.
      if (inspection.problem !== undefined) throw new InvalidModelFileError(inspection.problem);
    });
}

/**
 * Refuses a path that is not an existing regular file with an InvalidRequestError naming
 * `param`, before any parsing.
 */
export async function checkInputFile(path: string, param: string): Promise<void> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new InvalidRequestError(
      error.code === "ENOENT" ? `No such file: ${path}` : `Cannot read ${path} (${error.code ?? error.message})`,
      { param, cause: error },
    );
  });
  if (!info.isFile()) throw new InvalidRequestError(`${path} is not a regular file`, { param });
}

/** The human-readable report of `grove inspect`. */
export function formatInspection(inspection: GgufInspection, options: FormatInspectionOptions = {}): string {
  const lines: string[] = [];
  const field = (label: string, value: string): void => void lines.push(`${label.padEnd(14)} ${value}`);
  field("file", inspection.path);
  field("size", `${formatBytes(inspection.fileSize)} (${inspection.fileSize} bytes)`);
  field("format", `GGUF v${inspection.version}, ${inspection.metadataCount} metadata keys, ${inspection.tensorCount} tensors`);
  const adapterType = inspection.summary?.adapterType;
  const valid = adapterType === undefined ? "valid: llama.cpp can load it" : `valid: a ${adapterType} adapter, loaded onto a base model (grove import --base)`;
  field("verdict", inspection.problem === undefined ? valid : `invalid: ${inspection.problem}`);
  const summary = inspection.summary;
  if (summary && adapterType !== undefined) {
    field("architecture", summary.architecture);
    if (summary.name !== undefined) field("name", summary.name);
    field("parameters", `${formatCount(summary.parameterCount)} (${summary.parameterCount})`);
    if (summary.fileType !== undefined) field("file type", summary.fileType);
  } else if (summary) {
    field("architecture", summary.architecture);
    if (summary.name !== undefined) field("name", summary.name);
    field("parameters", `${formatCount(summary.parameterCount)} (${summary.parameterCount})`);
    if (summary.fileType !== undefined) field("file type", summary.fileType);
    field("context", String(summary.contextLength));
    field("embedding", String(summary.embeddingLength));
    field("layers", String(summary.blockCount));
    field("heads", `${summary.headCount} (${summary.headCountKv} KV)`);
    field("feed forward", String(summary.feedForwardLength));
    field("vocabulary", summary.vocabularySize > 0 ? `${summary.vocabularySize} tokens (${summary.tokenizerModel})` : "none");
    field("chat template", summary.chatTemplate === undefined ? "none" : `${summary.chatTemplate.length} characters`);
  }
  lines.push("", `metadata (${inspection.metadataCount} keys)`);
  lines.push(renderTable(["KEY", "TYPE", "VALUE"], inspection.metadata.map((entry) => [entry.key, entry.type, formatMetadataValue(entry)])));
  if (options.tensors) {
    lines.push("", `tensors (${inspection.tensorCount})`);
    const rows = inspection.tensors.map((tensor) => [tensor.name, formatShape(tensor.shape), tensor.type, tensor.bytes === undefined ? "?" : String(tensor.bytes)]);
    lines.push(renderTable(["NAME", "SHAPE", "TYPE", "BYTES"], rows, [false, false, false, true]));
  }
  return `${lines.join("\n")}\n`;
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

/** A shape in ggml order, e.g. `64 × 512`. */
export function formatShape(shape: readonly number[] | undefined): string {
  return shape === undefined ? "-" : shape.join(" × ");
}

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

function formatCount(count: number): string {
  if (count >= 1e9) return `${(count / 1e9).toFixed(2)}B`;
  if (count >= 1e6) return `${(count / 1e6).toFixed(2)}M`;
  if (count >= 1e3) return `${(count / 1e3).toFixed(1)}K`;
  return String(count);
}

function clip(text: string, width: number): string {
  const line = text.replace(/[\r\n\t]/g, " ");
  return line.length <= width ? line : `${line.slice(0, Math.max(1, width - 1))}…`;
}
