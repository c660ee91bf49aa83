import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { rename, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { EngineError } from "../../core/errors.js";
import { runNativeJob } from "../../native/job-host.js";
import { InvalidRequestError } from "../../core/errors.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { ggufTensorLayout } from "../../gguf/gguf-tensor-layout.js";
import { checkImportanceMatrixFits, readImportanceMatrix } from "./imatrix.js";
import { parseQuantizeType, REQUIRES_IMATRIX, type QuantizeType } from "./quantize-types.js";
import type { WorkerArgs } from "./quantize-worker.js";

const JOB = new URL("./quantize-worker.js", import.meta.url);
const require = createRequire(import.meta.url);

/** What {@link quantizeModel} needs. */
export interface QuantizeModelOptions {
  /** The GGUF to quantize (F32/F16/BF16 tensors; others are copied or refused by llama.cpp). */
  input: string;
  /** Where the result goes; written under `<output>.partial` first, renamed when done. */
  output: string;
  /** Type name, e.g. `Q4_K_M` (case-insensitive); see QUANTIZE_TYPES. */
  type: string;
  /** Quantization threads. @default the number of CPU cores */
  threads?: number;
  /**
   * An importance matrix in llama-imatrix's GGUF format, checked against the model before the
   * worker starts; required by the types in REQUIRES_IMATRIX. Its file name is recorded in the
   * output (`quantize.imatrix.file`), as llama-quantize records the name it was given.
   */
  imatrix?: string;
  /** The matrix's name as recorded in the output. @default the file name of `imatrix` */
  imatrixName?: string;
  /** Aborting kills the worker and removes the partial output. */
  signal?: AbortSignal;
  /** Called per tensor done, from llama.cpp's log: `(done, total)`. */
  onProgress?: (done: number, total: number) => void;
  /** @internal The job module (tests substitute one that crashes). @default quantize-worker.js */
  jobModule?: URL;
}

/** What {@link quantizeModel} wrote. */
export interface QuantizeModelResult {
  path: string;
  type: QuantizeType;
  /** Wall time of the worker, ms. */
  durationMs: number;
}

/**
 * Quantizes a GGUF through the shipped libllama's `llama_model_quantize`, in a child process
 * (the FFI call blocks and a GGML_ASSERT aborts its process). A worker that dies, is killed
 * or reports an error fails the job; its partial output is removed.
 *
 * @throws InvalidRequestError for an unknown type (before anything runs)
 * @throws AbortedError when `signal` aborts
 * @throws EngineError when the worker fails or dies
 *
 * @example
 * await quantizeModel({ input: "small.gguf", output: "small-q4.gguf", type: "Q4_K_M" });
 */
export async function quantizeModel(options: QuantizeModelOptions): Promise<QuantizeModelResult> {
  const type = parseQuantizeType(options.type);
  if (options.imatrix === undefined && REQUIRES_IMATRIX.has(type)) {
    throw new InvalidRequestError(`${type} needs an importance matrix (--imatrix FILE from llama-imatrix); llama.cpp will not make it without one`, { param: "imatrix" });
  }
  if (options.imatrix !== undefined) {
    const matrix = await readImportanceMatrix(options.imatrix);
    checkImportanceMatrixFits(matrix, ggufTensorLayout(await readGgufHeader(options.input)).tensors);
  }
  options.signal?.throwIfAborted();
  const threads = options.threads ?? availableParallelism();
  const partial = `${options.output}.partial`;
  const started = Date.now();
  try {
    await runWorker({ input: options.input, output: partial, type, threads, ...(options.imatrix === undefined ? {} : { imatrix: options.imatrix, imatrixName: options.imatrixName ?? basename(options.imatrix) }) }, options);
    await rename(partial, options.output);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  return { path: options.output, type, durationMs: Date.now() - started };
}

const PROGRESS_LINE = /^\[\s*(\d+)\s*\/\s*(\d+)\]/;

async function runWorker(args: WorkerArgs, options: QuantizeModelOptions): Promise<void> {
  const outcome = await runNativeJob({
    module: options.jobModule ?? JOB,
    args,
    what: "Quantization",
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    onLog: (line) => {
      const match = PROGRESS_LINE.exec(line);
      if (match !== null) options.onProgress?.(Number(match[1]), Number(match[2]));
    },
  });
  if (outcome.ok) return;
  // llama.cpp logs why it refused (`llama_model_quantize: failed to quantize: …`) and returns 1.
  const cause = /failed to quantize: (.*)/.exec(outcome.failure.log)?.[1]?.trim();
  throw new EngineError(`Quantizing to ${args.type} failed: ${cause ?? outcome.failure.reason}`);
}

/**
 * The quantizer's version for recipes: node-llama-cpp's version and the llama.cpp release of
 * its prebuilt binaries, e.g. `node-llama-cpp 3.21.1 / llama.cpp v0.4.0`.
 */
export function quantizerVersion(): string {
  const index = require.resolve("@node-llama-cpp/linux-x64");
  const root = join(dirname(index), "..");
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  const metadata = JSON.parse(readFileSync(join(root, "bins", "linux-x64", "_nlcBuildMetadata.json"), "utf8")) as {
    buildOptions?: { llamaCpp?: { release?: string } };
  };
  return `node-llama-cpp ${pkg.version} / llama.cpp ${metadata.buildOptions?.llamaCpp?.release ?? "unknown"}`;
}
