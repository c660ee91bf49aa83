import { basename } from "node:path";
import type { Command } from "commander";
import { parseLmEvalResults, sourceOf } from "../../results/import-lm-eval.js";
import { describeMachine } from "../../results/machine.js";
import { readBoundedFile } from "../../store/bounded-file.js";
import { renderTable } from "../format.js";
import { DATABASE_FLAG, HOME_FLAG, HOME_FLAG_HELP, withResults } from "../store-access.js";

/** The largest results file imported. */
const MAX_RESULTS_BYTES = 64 * 1024 * 1024;

/**
 * Registers `grove results import FILE --model REF` (an lm-evaluation-harness results JSON,
 * stored with its provenance and flagged `imported`: listed, never ranked beside Grove's own
 * measurements) and `grove results ls` (every stored result with its source).
 *
 * @example
 * grove results import results_2026-12-07.json --model small:f16
 * grove results ls --task hellaswag
 */
export function registerResultsCommands(program: Command): void {
  const results = program.command("results").description("stored measurements: list them, import other tools' results");
  results
    .command("import")
    .description("import an lm-evaluation-harness results JSON for a store model (kept apart from Grove's own measurements)")
    .argument("<file>", "lm-eval's results JSON (results_*.json)")
    .requiredOption("--model <ref>", "the store model the results are of")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, "the shared PostgreSQL database holding the registry and results (or GROVE_DATABASE_URL)")
    .option("--json", "print the stored results as JSON")
    .action(async (file: string, flags: { model: string; home?: string; database?: string; json?: boolean }) => {
      const bytes = await readBoundedFile(file, { limit: MAX_RESULTS_BYTES, what: "the results file", param: "file" });
      const stored = await withResults(flags, async (store, resultStore) => {
        const digest = (await store.resolve(flags.model)).digest;
        const records = parseLmEvalResults(bytes, basename(file), digest);
        for (const record of records) await resultStore.put(record);
        return records;
      });
      if (flags.json) return void process.stdout.write(`${JSON.stringify(stored)}\n`);
      const source = sourceOf(stored[0]!)!;
      process.stdout.write(`Imported ${stored.length} result${stored.length === 1 ? "" : "s"} from ${source.tool} ${source.version ?? "(version unknown)"} (${source.date ?? "date unknown"}, ${source.modelArgs ?? "no model_args"}): ${stored.map((record) => record.task).join(", ")}\nThey are flagged 'imported': listed by grove results ls, never ranked with Grove's own measurements.\n`);
    });
  results
    .command("ls")
    .description("list stored results, newest first, with where each came from")
    .option("--task <task>", "only this task")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, "the shared PostgreSQL database holding the registry and results (or GROVE_DATABASE_URL)")
    .option("--json", "print them as JSON")
    .action(async (flags: { task?: string; home?: string; database?: string; json?: boolean }) => {
      const rows = await withResults(flags, async (store, resultStore) => {
        const list = await resultStore.list(flags.task === undefined ? {} : { task: flags.task });
        const names = new Map((await store.list()).map((model) => [model.digest as string, model.names[0] ?? model.digest]));
        return list.map((result) => ({ result, model: names.get(result.modelDigest) ?? result.modelDigest.slice(0, 19) }));
      });
      if (flags.json) return void process.stdout.write(`${JSON.stringify(rows.map(({ result }) => result))}\n`);
      const format = (value: number | null): string => (value === null ? "-" : Math.abs(value) >= 100 ? value.toFixed(2) : value.toPrecision(4));
      const table = rows.map(({ result, model }) => {
        const source = sourceOf(result);
        return [
          model,
          result.task,
          Object.entries(result.metrics)
            .slice(0, 4)
            .map(([name, value]) => `${name} ${format(value)}${typeof result.standardErrors?.[name] === "number" ? ` ±${format(result.standardErrors[name])}` : ""}`)
            .join("  "),
          source === undefined
            ? `grove${result.kind === "cost" ? ` on ${describeMachine(result.machine)}` : ""}`
            : `IMPORTED: ${source.tool} ${source.version ?? "?"}${source.date === null ? "" : ` (${source.date.slice(0, 10)})`}`,
          result.createdAt.slice(0, 19),
        ];
      });
      process.stdout.write(`${renderTable(["MODEL", "TASK", "METRICS", "SOURCE", "STORED"], table)}\n`);
    });
}
