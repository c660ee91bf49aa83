import type { Command } from "commander";
import { QUANTIZE_TOOL, quantizeFork } from "../../forge/quantize/quantize-fork.js";
import { IMATRIX_QUANTIZE_TYPE_NAMES, QUANTIZE_TYPE_NAMES, parseQuantizeType } from "../../forge/quantize/quantize-types.js";
import { withProgress } from "../progress.js";
import { importReport, type ImportReport } from "../import-report.js";
import { formatBytes, describeModel } from "../format.js";
import { HOME_FLAG, HOME_FLAG_HELP, withStore } from "../store-access.js";

interface QuantizeFlags {
  type: string;
  imatrix?: string;
  name?: string;
  home?: string;
  json?: boolean;
}

/** The recipe tool name of `grove quantize` (defined beside quantizeFork). */
export { QUANTIZE_TOOL };

/** What `grove quantize --json` prints: the import report plus the type and bits per weight. */
export interface QuantizeReport extends ImportReport {
  type: string;
  /** File size × 8 / parameter count (metadata and higher-precision tensors included). */
  bitsPerWeight: number;
}

/**
 * Registers `grove quantize REF --type TYPE`: quantizes a model of the store with the shipped
 * libllama (in a child process) and imports the result as a `quantized` fork of it, with the
 * recipe (tool, version, type, input digest). Same input and type → same digest.
 *
 * @example
 * grove quantize small:f16 --type Q4_K_M --name small:q4
 * grove quantize sha256:3f2a --type q8_0 --json
 * grove quantize small:f16 --type IQ2_XS --imatrix small.imatrix.gguf
 */
export function registerQuantizeCommand(program: Command): void {
  program
    .command("quantize")
    .description("quantize a model of the store with llama.cpp and store the result as a quantized fork")
    .argument("<ref>", "name, digest or unique digest prefix of the model to quantize")
    .requiredOption("--type <type>", `quantization type: ${QUANTIZE_TYPE_NAMES.join(", ")}; with --imatrix also ${IMATRIX_QUANTIZE_TYPE_NAMES.join(", ")}`)
    .option("--imatrix <file>", "importance matrix from llama-imatrix (GGUF), needed by IQ1_*, IQ2_* and Q2_K_S")
    .option("--name <family:tag>", "name to point at the quantized model")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (ref: string, flags: QuantizeFlags) => {
      const type = parseQuantizeType(flags.type);
      const report = await withStore(flags.home, async (store) => {
        const result = await withProgress(`quantizing to ${type}`, { unit: "count" }, (bar) =>
          quantizeFork(store, {
            model: ref,
            type,
            ...(flags.imatrix === undefined ? {} : { imatrix: flags.imatrix }),
            ...(flags.name === undefined ? {} : { name: flags.name }),
            ...(bar.drawn ? { onProgress: (done: number, total: number) => bar.update(done, total, "tensors") } : {}),
          }),
        );
        const base = await importReport(store, result.import);
        return { ...base, type: result.type, bitsPerWeight: result.bitsPerWeight } satisfies QuantizeReport;
      });
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatQuantizeReport(report));
    });
}

/** `quantized  sha256:…  small:q4  3.4 MB  4.96 bits/weight` and its lineage line. */
export function formatQuantizeReport(report: QuantizeReport): string {
  const names = report.names.length > 0 ? `  ${report.names.join(", ")}` : "";
  const verb = report.created ? "quantized" : "already in the store";
  const lines = [`${verb}  ${report.digest}${names}  ${formatBytes(report.size)}  ${report.bitsPerWeight.toFixed(2)} bits/weight (${report.type})`];
  for (const parent of report.parents) lines.push(`lineage   ${parent.relation} from ${describeModel(parent.digest, parent.names)}`);
  return `${lines.join("\n")}\n`;
}
