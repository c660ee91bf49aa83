
import type { Command } from "commander";
import { InvalidModelFileError, } from "../../core/errors.js";
import { inspectGgufFile, type GgufInspection } from "../../gguf/gguf-inspect.js";
import { renderTable, formatBytes, formatCount, formatShape, formatMetadataValue } from "../format.js";
import { checkInputFile } from "../input-file.js";

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

