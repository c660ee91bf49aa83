import { resolve } from "node:path";
import type { Command } from "commander";
import { RELATIONS, type Relation } from "../../store/registry.js";
import { byteProgress } from "../progress.js";
import { checkInputFile } from "../input-file.js";
import { formatImportReport, importReport } from "../import-report.js";
import { DATABASE_FLAG, HOME_FLAG, HOME_FLAG_HELP, REGISTRY_DATABASE_FLAG_HELP, withStore } from "../store-access.js";

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

