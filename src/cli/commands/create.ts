import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { byteProgress } from "../progress.js";
import type { Command } from "commander";
import { InvalidRequestError } from "../../core/errors.js";
import {
  GENERATE_MODEL_DTYPES,
  generateModel,
  type GenerateModelDtype,
  type GenerateModelResult,
} from "../../forge/generate/generate-model.js";
import { MODEL_PRESETS, modelPreset } from "../../forge/generate/model-presets.js";
import { runCreateFromModelfile, type CreateModelfileFlags } from "../create-modelfile.js";
import { DATABASE_FLAG, HOME_FLAG, HOME_FLAG_HELP, REGISTRY_DATABASE_FLAG_HELP } from "../store-access.js";

interface CreateFlags extends CreateModelfileFlags {
  preset?: string;
  seed?: string;
  out?: string;
  dtype: string;
  vocabFrom?: string;
  force?: boolean;
  json?: boolean;
}

/** Files smaller than this are written without a progress bar (they take under a second). */
const PROGRESS_BAR_MIN_BYTES = 64 * 1024 * 1024;

/**
 * Registers `grove create`, which has two forms:
 * - `grove create NAME [-f Modelfile]` (Ollama's): a config fork from a Modelfile — FROM a store
 *   name, a GGUF file or an `hf:` reference, with SYSTEM, PARAMETER, MESSAGE, TEMPLATE, LICENSE
 *   and ADAPTER; `-f` defaults to `./Modelfile`.
 * - `grove create --preset P --seed N --out FILE`: writes a generated model (Llama, Qwen2 or Qwen3
 *   by preset) with random weights (same preset, seed and dtype → byte-identical file and digest).
 *
 * @example
 * grove create mario -f ./Modelfile
 * grove create --preset test-tiny --seed 42 --out tiny.gguf
 * grove create --preset llama-1b --seed 1 --dtype q8_0 --out 1b-q8.gguf --json
 */
export function registerCreateCommand(program: Command): void {
  program
    .command("create")
    .description("create a model: NAME -f Modelfile makes a config fork (new defaults on a model's weights, as Ollama's create); --preset generates a GGUF with random weights")
    .argument("[name]", "with a Modelfile: the name of the model to create (family:tag)")
    .option("-f, --file <path>", "the Modelfile (Ollama's format) to build NAME from", "./Modelfile")
    .option("--preset <name>", `generate a model of this shape: ${Object.keys(MODEL_PRESETS).join(", ")}`)
    .option("--seed <n>", "with --preset: seed of the weights, a non-negative integer")
    .option("--out <file>", "with --preset: path of the GGUF file to write")
    .option("--dtype <type>", `with --preset: weight type: ${GENERATE_MODEL_DTYPES.join(", ")}`, "f16")
    .option("--vocab-from <file>", "with --preset: copy the tokenizer (tokenizer.* keys) from this GGUF file")
    .option("--force", "with --preset: replace the output file if it exists")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--endpoint <url>", "hub for a FROM hf:… line (env HF_ENDPOINT)")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Two forms:
  grove create NAME [-f Modelfile]    a config fork: the FROM model's weights with the Modelfile's defaults
                                      (SYSTEM, PARAMETER, MESSAGE, LICENSE; ADAPTER adds a LoRA fork under it;
                                      TEMPLATE is kept but such a model refuses chats: Grove renders the GGUF's
                                      Jinja template). FROM is a store name, a GGUF file or hf:OWNER/REPO.
  grove create --preset P --seed N --out FILE    generate a GGUF with random weights from a preset

Example Modelfile:
  FROM demo-s-chat:f16
  PARAMETER temperature 1
  PARAMETER num_ctx 1024
  SYSTEM """You are Mario from Super Mario Bros."""
`,
    )
    .action(async (name: string | undefined, flags: CreateFlags) => {
      if (name !== undefined) {
        if (flags.preset !== undefined) throw new InvalidRequestError("Give NAME (with -f Modelfile) or --preset, not both", { param: "--preset" });
        const result = await runCreateFromModelfile(name, flags);
        const line = `${result.name ?? result.model.digest}  ${result.model.digest}  config fork of ${result.parents[0]!.parent}${result.created ? "" : " (unchanged)"}`;
        process.stdout.write(flags.json ? `${JSON.stringify({ name: result.name, digest: result.model.digest, parent: result.parents[0]!.parent, created: result.created, config: result.config })}\n` : `${line}\n`);
        return;
      }
      for (const flag of ["preset", "seed", "out"] as const) {
        if (flags[flag] === undefined) throw new InvalidRequestError(`grove create needs NAME (with -f Modelfile), or --preset, --seed and --out to generate a model; --${flag} is missing`, { param: `--${flag}` });
      }
      const result = await runCreate(flags as Required<Pick<CreateFlags, "preset" | "seed" | "out">> & CreateFlags);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } else {
        process.stdout.write(
          `${result.path}  ${result.digest}  ${formatCount(result.parameterCount)} parameters  ${formatBytes(result.fileSize)}\n`,
        );
      }
    });
}

async function runCreate(flags: CreateFlags & { preset: string; seed: string; out: string }): Promise<GenerateModelResult & { dtype: GenerateModelDtype; seed: number }> {
  const preset = modelPreset(flags.preset, "--preset");
  const seed = parseSeed(flags.seed);
  const dtype = parseDtype(flags.dtype);
  const outPath = resolve(flags.out);
  await checkOutput(outPath, flags.force === true);
  const vocabularyFrom = flags.vocabFrom === undefined ? undefined : await checkVocabularySource(resolve(flags.vocabFrom));

  const progress = byteProgress("writing", PROGRESS_BAR_MIN_BYTES);
  const onProgress = progress.onProgress;
  try {
    const result = await generateModel({ preset: preset.name, seed, dtype, outPath, vocabularyFrom, onProgress });
    return { ...result, dtype, seed };
  } finally {
    progress.stop();
  }
}

function parseSeed(text: string): number {
  const seed = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(seed)) {
    throw new InvalidRequestError(`--seed must be a non-negative integer below 2^53, got '${text}'`, { param: "--seed" });
  }
  return seed;
}

function parseDtype(text: string): GenerateModelDtype {
  const dtype = text.toLowerCase() as GenerateModelDtype;
  if (!GENERATE_MODEL_DTYPES.includes(dtype)) {
    throw new InvalidRequestError(`Unknown --dtype '${text}'; valid: ${GENERATE_MODEL_DTYPES.join(", ")}`, { param: "--dtype" });
  }
  return dtype;
}

async function checkOutput(outPath: string, force: boolean): Promise<void> {
  const directory = dirname(outPath);
  const directoryInfo = await stat(directory).catch(() => undefined);
  if (!directoryInfo?.isDirectory()) {
    throw new InvalidRequestError(`The output directory ${directory} does not exist`, { param: "--out" });
  }
  try {
    await access(directory, constants.W_OK);
  } catch (error) {
    throw new InvalidRequestError(`The output directory ${directory} is not writable`, { param: "--out", cause: error });
  }
  const existing = await stat(outPath).catch(() => undefined);
  if (existing?.isDirectory()) throw new InvalidRequestError(`--out ${outPath} is a directory`, { param: "--out" });
  if (existing && !force) {
    throw new InvalidRequestError(`${outPath} already exists; pass --force to replace it`, { param: "--out" });
  }
}

async function checkVocabularySource(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw new InvalidRequestError(`--vocab-from ${path} is not a file`, { param: "--vocab-from" });
  return path;
}

function formatCount(count: number): string {
  if (count >= 1e9) return `${(count / 1e9).toFixed(2)}B`;
  if (count >= 1e6) return `${(count / 1e6).toFixed(2)}M`;
  if (count >= 1e3) return `${(count / 1e3).toFixed(1)}K`;
  return String(count);
}

function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} KB`;
  return `${bytes} B`;
}
