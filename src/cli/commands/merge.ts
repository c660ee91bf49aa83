import type { Command } from "commander";
import { byteProgress } from "../progress.js";
import { InvalidRequestError } from "../../core/errors.js";
import { bakeAdapterFork, mergeFork } from "../../forge/merge/merge-fork.js";
import { MERGE_METHODS, type MergeMethod } from "../../forge/merge/merge-models.js";
import { formatImportReport, importReport, type ImportReport } from "../import-report.js";
import { HOME_FLAG, HOME_FLAG_HELP, withStore } from "../store-access.js";

interface MergeFlags {
  method?: string;
  adapter?: string;
  scale?: string;
  weights?: string;
  base?: string;
  name?: string;
  home?: string;
  json?: boolean;
}

/**
 * Registers `grove merge REF REF…`: merges models of the store (linear, slerp or
 * task-arithmetic) and imports the result as a `merge` fork of all its inputs, with the
 * recipe (method, weights, input digests); with `--adapter`, bakes a LoRA adapter into its base
 * (a `merge` fork of both). Prints what `grove import` prints.
 *
 * @example
 * grove merge tiny:a tiny:b --method slerp --weights 0.5,0.5 --name tiny:ab
 * grove merge tiny:chat tiny:code --method task-arithmetic --base tiny:base --weights 0.6,0.4 --json
 * grove merge --adapter tiny:lora --name tiny:lora-merged
 */
export function registerMergeCommand(program: Command): void {
  program
    .command("merge")
    .description("merge models of the store tensor by tensor and store the result as a merge fork")
    .argument("[refs...]", "models to merge: names, digests or unique digest prefixes (with --adapter: the model to bake it into, default its parent)")
    .option("--method <method>", `how to combine them: ${MERGE_METHODS.join(", ")}`)
    .option("--adapter <ref>", "bake this LoRA adapter fork into its base (W + alpha/r·B·A), making a full model that serves without it")
    .option("--scale <s>", "with --adapter: multiply the adapter (default 1)")
    .option("--weights <list>", "one weight per model, comma-separated, e.g. 0.5,0.5")
    .option("--base <ref>", "common ancestor for task-arithmetic: base + Σ wᵢ·(modelᵢ − base)")
    .option("--name <family:tag>", "name to point at the merged model")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (refs: string[], flags: MergeFlags) => {
      if (flags.adapter !== undefined) {
        const adapter = flags.adapter;
        if (flags.method !== undefined || flags.weights !== undefined || flags.base !== undefined) {
          throw new InvalidRequestError("--adapter takes no --method, --weights or --base: name the model to bake into as the one argument", { param: "adapter" });
        }
        if (refs.length > 1) throw new InvalidRequestError(`--adapter bakes into one model, got ${refs.length}`, { param: "adapter" });
        const scale = flags.scale === undefined ? undefined : Number(flags.scale);
        if (scale !== undefined && (flags.scale!.trim() === "" || !Number.isFinite(scale))) throw new InvalidRequestError(`--scale must be a number, got '${flags.scale}'`, { param: "scale" });
        const report = await withStore(flags.home, async (store) =>
          importReport(store, await bakeAdapterFork(store, { adapter, ...(refs[0] === undefined ? {} : { base: refs[0] }), ...(scale === undefined ? {} : { scale }), ...(flags.name === undefined ? {} : { name: flags.name }) })),
        );
        return void process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatImportReport(report));
      }
      if (flags.method === undefined) throw new InvalidRequestError("--method is required (or --adapter to bake an adapter)", { param: "method" });
      if (flags.scale !== undefined) throw new InvalidRequestError("--scale goes with --adapter", { param: "scale" });
      if (refs.length === 0) throw new InvalidRequestError("Name the models to merge", { param: "refs" });
      const method = parseMethod(flags.method);
      const weights = flags.weights === undefined ? undefined : parseWeights(flags.weights);
      const report: ImportReport = await withStore(flags.home, async (store) => {
        const progress = byteProgress("merging");
        try {
          const result = await mergeFork(store, {
            models: refs,
            method,
            ...(weights === undefined ? {} : { weights }),
            ...(flags.base === undefined ? {} : { base: flags.base }),
            ...(flags.name === undefined ? {} : { name: flags.name }),
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

function parseMethod(value: string): MergeMethod {
  if (!(MERGE_METHODS as readonly string[]).includes(value)) {
    throw new InvalidRequestError(`Unknown --method '${value}'; valid: ${MERGE_METHODS.join(", ")}`, { param: "method" });
  }
  return value as MergeMethod;
}

function parseWeights(value: string): number[] {
  const parts = value.split(",").map((part) => part.trim());
  const weights = parts.map(Number);
  const bad = parts.find((part, index) => part === "" || !Number.isFinite(weights[index]));
  if (bad !== undefined) throw new InvalidRequestError(`--weights must be comma-separated finite numbers, got '${value}'`, { param: "weights" });
  return weights;
}
