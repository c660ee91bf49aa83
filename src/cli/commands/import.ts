import { resolve } from "node:path";
import type { Command } from "commander";
import type { ImportResult, ModelStore } from "../../store/model-store.js";
import { RELATIONS, type Relation } from "../../store/registry.js";
import { byteProgress } from "../progress.js";
import { checkInputFile, formatBytes } from "./inspect.js";
import { DATABASE_FLAG, describeModel, HOME_FLAG, HOME_FLAG_HELP, namesByDigest, REGISTRY_DATABASE_FLAG_HELP, withStore, type EdgeView } from "./store-commands.js";

interface ImportFlags {
  name?: string;
  base: string[];
  relation?: string;
  home?: string;
  database?: string;
  json?: boolean;
}

/** Files smaller than this are copied and hashed in about a second: no bar. */
const IMPORT_BAR_MIN_BYTES = 256 * 1024 * 1024;

/** What `grove import --json` and `grove pull --json` print about the model that entered the store. */
export interface ImportReport {
  digest: ImportResult["model"]["digest"];
  /** The name pointed at it by this command, when one was given. */
  name?: string;
  /** Every name it has now. */
  names: string[];
  size: number;
  /** False when the registry already had the model. */
  created: boolean;
  /** Its parents, with relation and recipe. */
  parents: EdgeView[];
  model: ImportResult["model"];
}

/**
 * Registers `grove import FILE`: validates a GGUF file, stores it by digest (a copy; the file
 * stays) and records its name and lineage. Importing the same file again stores nothing new.
 *
 * @example
 * grove import small.gguf --name small:f32
 * grove import small-q8.gguf --name small:q8 --base small:f32 --relation quantized
 * grove import merged.gguf --base a:latest --base b:latest --relation merge --json
 * grove import lora.gguf --name small:lora --base small:f32   # a LoRA adapter: relation adapter
 */
export function registerImportCommand(program: Command): void {
  program
    .command("import")
    .description("validate a GGUF file and add it to the store, with a name and its lineage")
    .argument("<file>", "GGUF file to import (copied; the file stays)")
    .option("--name <family:tag>", "name to point at the model")
    .option("--base <ref>", "the model it derives from (repeat for a merge); needs --relation, implied (adapter) for a LoRA adapter", (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option("--relation <relation>", `how it derives from its base: ${RELATIONS.join(", ")}`)
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (file: string, flags: ImportFlags) => {
      const path = resolve(file);
      const report = await withStore(flags, async (store) => {
        await checkInputFile(path, "file");
        const progress = byteProgress("importing", IMPORT_BAR_MIN_BYTES);
        try {
          const result = await store.importFile(path, {
            ...(flags.name === undefined ? {} : { name: flags.name }),
            ...(flags.base.length === 0 ? {} : { bases: flags.base }),
            ...(flags.relation === undefined ? {} : { relation: flags.relation as Relation }),
            onProgress: progress.onProgress,
          });
          return importReport(store, result);
        } finally {
          progress.stop();
        }
      });
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatImportReport(report));
    });
}

/** The report of an import: the model, its names and all its parents (not only the edges this import added). */
export async function importReport(store: ModelStore, result: ImportResult): Promise<ImportReport> {
  const names = await namesByDigest(store);
  const parents = await store.parentsOf(result.model.digest);
  return {
    digest: result.model.digest,
    ...(result.name === undefined ? {} : { name: result.name }),
    names: names.get(result.model.digest) ?? [],
    size: result.model.size,
    created: result.created,
    parents: parents.map((edge) => ({ digest: edge.parent, names: names.get(edge.parent) ?? [], relation: edge.relation, recipe: edge.recipe })),
    model: result.model,
  };
}

/**
 * Two or more lines for people:
 * `imported  sha256:…  small:q8  6.2 MB` then `lineage   quantized from small:f32 (sha256:3f2a…)`.
 */
export function formatImportReport(report: ImportReport): string {
  const verb = report.created ? "imported" : "already in the store";
  const names = report.names.length > 0 ? `  ${report.names.join(", ")}` : "";
  const lines = [`${verb}  ${report.digest}${names}  ${formatBytes(report.size)}`];
  if (report.parents.length === 0) lines.push("lineage   none (a root)");
  for (const parent of report.parents) lines.push(`lineage   ${parent.relation} from ${describeModel(parent.digest, parent.names)}`);
  return `${lines.join("\n")}\n`;
}
