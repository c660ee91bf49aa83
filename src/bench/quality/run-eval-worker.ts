import { AbortedError, EngineError, InvalidRequestError } from "../../core/errors.js";
import { runNativeJob } from "../../native/job-host.js";
import type { EvalWorkerRequest } from "./eval-worker.js";

const JOB = new URL("./eval-worker.js", import.meta.url);

/** Options of {@link runEvalWorker}. */
export interface RunEvalOptions {
  /** Chunks or requests done, of how many, and the running perplexity where there is one. */
  onProgress?: (done: number, total: number, perplexity?: number) => void;
  /** Aborting kills the worker. */
  signal?: AbortSignal;
}

/**
 * Runs one measurement in the job worker process (llama.cpp's calls block, and a GGML_ASSERT
 * aborts the process that makes them) and returns its result.
 *
 * @throws InvalidRequestError passed on from the worker (a text too short, bad requests)
 * @throws AbortedError when `signal` aborts
 * @throws EngineError when the worker fails or dies
 */
export async function runEvalWorker<T>(request: EvalWorkerRequest, options: RunEvalOptions = {}): Promise<T> {
  const outcome = await runNativeJob({
    module: JOB,
    args: request,
    what: "Evaluation",
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    onEvent: (event) => {
      if (event.event === "progress") options.onProgress?.(Number(event.done ?? 0), Number(event.total ?? 0), typeof event.perplexity === "number" ? event.perplexity : undefined);
    },
  }).catch((error: unknown) => {
    throw error instanceof AbortedError ? new AbortedError("Evaluation cancelled") : error;
  });
  if (outcome.ok) return outcome.result as T;
  const { reason, code, param } = outcome.failure;
  if (code === "invalid_parameter" || code === "invalid_request") throw new InvalidRequestError(reason, param === undefined ? {} : { param });
  throw new EngineError(`Evaluation failed: ${reason}`);
}
