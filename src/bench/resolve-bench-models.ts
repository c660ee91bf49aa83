import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { EngineError } from "../core/errors.js";

/** A generated model the bench knows how to make with `grove create`. */
export interface BenchModelPreset {
  /** `grove create --preset` value. */
  readonly preset: string;
  /** `grove create --dtype` value. */
  readonly dtype: string;
}

/** The generated models, by the name `--models` takes. Seed 1 always, so every run benchmarks the same bytes. */
export const BENCH_MODEL_PRESETS: Readonly<Record<string, BenchModelPreset>> = {
  small: { preset: "small", dtype: "f16" },
  "llama-1b": { preset: "llama-1b", dtype: "q8_0" },
};

/** A model file to benchmark. */
export interface BenchModel {
  /** Name in the report: the preset name, or the file name for `--model`. */
  readonly name: string;
  /** Absolute path of the GGUF file. */
  readonly path: string;
  /** How it was made, for the report, e.g. `grove create --preset small --seed 1 --dtype f16`. */
  readonly origin: string;
}

/** Inputs of {@link resolveBenchModels}. */
export interface ResolveBenchModelsOptions {
  /** Preset names from {@link BENCH_MODEL_PRESETS}, already validated. */
  readonly presets: readonly string[];
  /** GGUF files given with `--model`, already checked to exist. */
  readonly files: readonly string[];
  /** Where generated models are kept between runs, e.g. `~/.cache/grove/bench-models`. */
  readonly cacheDirectory: string;
  /** Path of `bin/grove.js`. */
  readonly groveBin: string;
  /** Progress messages (stderr). */
  readonly progress: (message: string) => void;
}

/**
 * Returns the models to benchmark: the `--model` files as they are, and each preset from the
 * cache, generating it first with Grove's own CLI (`grove create`) when it is missing. The
 * generator runs as a child process, so the bench depends on its command line only. A file
 * is written under a temporary name and renamed when complete, so an interrupted run never
 * leaves a truncated model in the cache.
 */
export async function resolveBenchModels(options: ResolveBenchModelsOptions): Promise<BenchModel[]> {
  const models: BenchModel[] = options.files.map((path) => ({ name: basename(path), path, origin: "--model" }));
  for (const name of options.presets) {
    const { preset, dtype } = BENCH_MODEL_PRESETS[name]!;
    const createArgs = ["create", "--preset", preset, "--seed", "1", "--dtype", dtype];
    const path = join(options.cacheDirectory, `${preset}-seed1-${dtype}.gguf`);
    const origin = `grove ${createArgs.join(" ")}`;
    if (existsSync(path)) {
      options.progress(`model ${name}: reusing ${path}`);
    } else {
      await mkdir(options.cacheDirectory, { recursive: true });
      const partial = join(options.cacheDirectory, `${preset}-seed1-${dtype}.partial-${process.pid}.gguf`);
      options.progress(`model ${name}: generating with ${origin} (once; cached in ${options.cacheDirectory})`);
      try {
        await runGrove(options.groveBin, [...createArgs, "--out", partial]);
        await rename(partial, path);
      } finally {
        await rm(partial, { force: true });
      }
    }
    models.push({ name, path, origin });
  }
  return models;
}

/** Runs the Grove CLI; its output goes to our stderr so that stdout keeps only results. */
async function runGrove(groveBin: string, args: string[]): Promise<void> {
  const child = spawn(process.execPath, [groveBin, ...args], { stdio: ["ignore", 2, 2] });
  const code = await new Promise<number | string>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (exitCode, signal) => resolve(signal ?? exitCode ?? 1));
  });
  if (code !== 0) throw new EngineError(`grove ${args.join(" ")} failed (${code})`);
}
