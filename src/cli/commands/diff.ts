import { byteProgress } from "../progress.js";
import type { Command } from "commander";
import { diffGgufFiles, type GgufDiff, type TensorDifference } from "../../gguf/gguf-diff.js";
import { existsSync } from "node:fs";
import { HOME_FLAG, HOME_FLAG_HELP, withStore } from "../store-access.js";
import { checkInputFile } from "../input-file.js";
import { formatBytes, formatMetadataValue, formatShape, renderTable } from "../format.js";

interface DiffFlags {
  json?: boolean;
  home?: string;
}

/** A file path as given, or the blob of a store REF (name, digest or unique prefix). */
async function resolveInput(input: string, home: string | undefined, param: string): Promise<string> {
  if (existsSync(input)) {
    await checkInputFile(input, param);
    return input;
  }
  if (/[/\\]|\.gguf$/i.test(input)) {
    await checkInputFile(input, param); // throws the "No such file" error
    return input;
  }
  return withStore(home, async (store) => (await store.show(input)).path);
}

/** Diffs hashing less than this many bytes finish in about a second: no progress bar. */
const PROGRESS_BAR_MIN_BYTES = 256 * 1024 * 1024;

const STATUS_LABELS: Record<TensorDifference["status"], string> = {
  same: "same",
  changed: "changed",
  "only-in-a": "only in A",
  "only-in-b": "only in B",
};

/**
 * Registers `grove diff A B`: metadata differences and a per-tensor table (shape, type, and
 * whether the data changed, by SHA-256 of each tensor's bytes) between two GGUF files.
 * Exits 0 whether or not they differ (`identical` in `--json` says which).
 *
 * @example
 * grove diff base.gguf finetune.gguf
 * grove diff base.gguf base-q8_0.gguf --json
 * grove diff small:f16 small:q8
 */
export function registerDiffCommand(program: Command): void {
  program
    .command("diff")
    .description("compare two GGUF files or store models: metadata keys, and each tensor's shape, type and data")
    .argument("<a>", "first GGUF file or store REF (A)")
    .argument("<b>", "second GGUF file or store REF (B)")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (inputA: string, inputB: string, flags: DiffFlags) => {
      const pathA = await resolveInput(inputA, flags.home, "a");
      const pathB = await resolveInput(inputB, flags.home, "b");
      const diff = await diffWithProgress(pathA, pathB);
      process.stdout.write(flags.json ? `${JSON.stringify(diff)}\n` : formatDiff(diff));
    });
}

async function diffWithProgress(pathA: string, pathB: string): Promise<GgufDiff> {
  const progress = byteProgress("hashing tensors", PROGRESS_BAR_MIN_BYTES);
  try {
    return await diffGgufFiles(pathA, pathB, { onProgress: progress.onProgress });
  } finally {
    progress.stop();
  }
}

/** The human-readable report of `grove diff`. */
export function formatDiff(diff: GgufDiff): string {
  const lines: string[] = [];
  for (const [label, side] of [["A", diff.a], ["B", diff.b]] as const) {
    lines.push(`${label}  ${side.path} (${formatBytes(side.fileSize)}, ${side.metadataCount} metadata keys, ${side.tensorCount} tensors)`);
  }
  lines.push("", diff.identical ? "identical: same metadata and tensor data" : "different");
  const count = (status: string): number => diff.metadata.filter((entry) => entry.status === status).length;
  lines.push("", `metadata: ${count("changed")} changed, ${count("added")} added in B, ${count("removed")} removed from A`);
  if (diff.metadata.length > 0) {
    const rows = diff.metadata.map((entry) => {
      const a = entry.a ? `${entry.a.type} ${formatMetadataValue(entry.a, 40)}` : "-";
      const b = entry.b ? `${entry.b.type} ${formatMetadataValue(entry.b, 40)}` : "-";
      return [entry.status, entry.key, a, b];
    });
    lines.push(renderTable(["STATUS", "KEY", "A", "B"], rows));
  }
  const counts = diff.tensorCounts;
  lines.push(
    "",
    `tensors: ${counts.changed} changed, ${counts.same} same, ${counts["only-in-a"]} only in A, ${counts["only-in-b"]} only in B`,
  );
  const rows = diff.tensors.map((tensor) => [
    tensor.name,
    formatShape(tensor.shapeA),
    formatShape(tensor.shapeB),
    tensor.typeA ?? "-",
    tensor.typeB ?? "-",
    tensor.changes ? `${STATUS_LABELS[tensor.status]} (${tensor.changes.join(", ")})` : STATUS_LABELS[tensor.status],
  ]);
  lines.push(renderTable(["NAME", "SHAPE A", "SHAPE B", "TYPE A", "TYPE B", "STATUS"], rows));
  return `${lines.join("\n")}\n`;
}
