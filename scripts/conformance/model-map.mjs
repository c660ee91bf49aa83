// The models llama.cpp's server tests download (`--hf-repo`/`--hf-file`, `--model-url`), mapped to
// models Grove generates offline. Shared by the shim (which resolves one server's flags) and the
// runner (which generates every substitute before the first test, so no server start pays for it).
//
// A substitute keeps what the tests can observe without the weights: the tokenizer (copied from
// one of the vocabulary-only GGUF files in llama.cpp's `models/`, so BOS ids, `<s>`, WordPiece or
// FIM tokens are the real family's) and the model's own settings where llama-server reads them from
// the file (bge's pooling). The weights are random, so assertions on generated text or on token
// counts of the suite's 512-token stories vocabulary cannot hold (see weight-bound-tests.mjs).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
/** @typedef {import("./settings.mjs").conformanceSettings} conformanceSettings */

/**
 * @typedef {object} Substitute
 * @property {string} name          file stem under the models directory
 * @property {string} preset        `grove create --preset`
 * @property {number} seed          `grove create --seed`
 * @property {string} vocabulary    vocabulary-only GGUF in llama.cpp's `models/`, for `--vocab-from`
 * @property {string} standsFor     what the suite would have downloaded
 * @property {string[]} impliedFlags llama-server flags the real file implies through its metadata,
 *   added when the command line does not give them
 * @property {(repo: string, file: string) => boolean} matches
 */

/** @type {readonly Substitute[]} */
export const SUBSTITUTES = Object.freeze([
  {
    name: "stories-spm",
    preset: "test-tiny",
    seed: 42,
    vocabulary: "ggml-vocab-llama-spm.gguf",
    standsFor: "ggml-org/test-model-stories260K, ggml-org/models tinyllamas/*, ggml-org/stories15M_MOE (Llama SPM tokenizer, BOS 1)",
    impliedFlags: [],
    matches: (repo, file) =>
      /stories260K$|stories15M/i.test(repo) || (repo === "ggml-org/models" && file.startsWith("tinyllamas/")),
  },
  {
    name: "stories-fim",
    preset: "test-tiny",
    seed: 42,
    vocabulary: "ggml-vocab-deepseek-coder.gguf",
    standsFor: "ggml-org/test-model-stories260K-infill, Qwen2.5-Coder (a tokenizer with fill-in-the-middle tokens)",
    impliedFlags: [],
    matches: (repo) => /stories260K-infill$|Coder/i.test(repo),
  },
  {
    name: "bge-wpm",
    preset: "test-tiny",
    seed: 42,
    vocabulary: "ggml-vocab-bert-bge.gguf",
    standsFor: "ggml-org/models bert-bge-small, jina-reranker-v1-tiny-en (WordPiece tokenizer, CLS pooling)",
    // bge-small's GGUF says pooling_type = CLS; a generated Llama file carries no pooling type.
    impliedFlags: ["--pooling", "cls"],
    matches: (repo, file) => repo === "ggml-org/models" && /^(bert-bge|jina-reranker)/.test(file),
  },
]);

/** The substitute for anything not matched (tinygemma3, the 1–8B instruct models of slow tests). */
export const DEFAULT_SUBSTITUTE = SUBSTITUTES[0];

/** Path of a substitute's GGUF file under `modelsDir`. */
export function substitutePath(substitute, modelsDir) {
  return join(modelsDir, `${substitute.name}-${substitute.preset}-s${substitute.seed}-f16.gguf`);
}

/**
 * The substitute for a model the suite names by Hugging Face repo (with an optional `:QUANT` tag)
 * and file, or by URL.
 *
 * @returns {{ substitute: Substitute, matched: boolean }}
 */
export function substituteFor(repo = "", file = "") {
  const bareRepo = repo.replace(/:[^/]*$/, "");
  const found = SUBSTITUTES.find((candidate) => candidate.matches(bareRepo, file));
  return { substitute: found ?? DEFAULT_SUBSTITUTE, matched: found !== undefined };
}

/**
 * Generates the substitute's GGUF file unless it is cached. Written beside, then renamed, so a
 * reader never sees half a file.
 *
 * @param {ReturnType<typeof conformanceSettings>} settings
 * @returns {string} the file's path
 */
export function ensureSubstitute(substitute, { groveCommand, modelsDir, llamaCppDir }) {
  const path = substitutePath(substitute, modelsDir);
  if (existsSync(path)) return path;
  mkdirSync(modelsDir, { recursive: true });
  const vocabulary = join(llamaCppDir, "models", substitute.vocabulary);
  if (!existsSync(vocabulary)) throw new Error(`missing ${vocabulary}: the llama.cpp checkout is incomplete`);
  const partial = `${path}.${process.pid}.partial`;
  const [command, ...prefix] = groveCommand;
  const result = spawnSync(command, [...prefix, "create", "--preset", substitute.preset, "--seed", String(substitute.seed),
    "--dtype", "f16", "--vocab-from", vocabulary, "--out", partial, "--force"], { encoding: "utf8" });
  if (result.status !== 0) {
    rmSync(partial, { force: true });
    throw new Error(`grove create for ${substitute.name} failed: ${result.stderr || result.error?.message}`);
  }
  renameSync(partial, path);
  return path;
}
