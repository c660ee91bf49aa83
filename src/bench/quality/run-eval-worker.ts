import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { AbortedError, EngineError, InvalidRequestError } from "../../core/errors.js";
import type { EvalWorkerRequest } from "./eval-worker.js";

const WORKER = join(dirname(fileURLToPath(import.meta.url)), "eval-worker.js");

/** Options of {@link runEvalWorker}. */
export interface RunEvalOptions {
  /** Chunks or requests done, of how many, and the running perplexity where there is one. */
  onProgress?: (done: number, total: number, perplexity?: number) => void;
  /** Aborting kills the worker. */
  signal?: AbortSignal;
}

/**
 * Runs one measurement in an eval worker process (llama.cpp's calls block, and a GGML_ASSERT
 * aborts the process that makes them) and returns its result.
 *
 * @throws InvalidRequestError passed on from the worker (a text too short, bad requests)
 * @throws AbortedError when `signal` aborts
 * @throws EngineError when the worker fails or dies
 */
export async function runEvalWorker<T>(request: EvalWorkerRequest, options: RunEvalOptions = {}): Promise<T> {
  options.signal?.throwIfAborted();
  const directory = await mkdtemp(join(tmpdir(), "grove-eval-"));
  const file = join(directory, "request.json");
  try {
    await writeFile(file, JSON.stringify(request));
    return await new Promise<T>((resolvePromise, reject) => {
      const child = spawn(process.execPath, [WORKER, file], { stdio: ["ignore", "pipe", "pipe"] });
      let pending = "";
      let stderrTail = "";
      let outcome: { result?: T; error?: string; code?: string; param?: string } | undefined;
      let aborted = false;
      const onAbort = (): void => {
        aborted = true;
        child.kill("SIGKILL");
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        pending += chunk;
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) {
          let event: { event: string; done?: number; total?: number; perplexity?: number; result?: T; error?: string; code?: string; param?: string };
          try {
            event = JSON.parse(line) as typeof event;
          } catch {
            continue;
          }
          if (event.event === "progress") options.onProgress?.(event.done ?? 0, event.total ?? 0, event.perplexity);
          else if (event.event === "result" || event.event === "error") outcome = event;
        }
      });
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => void (stderrTail = (stderrTail + chunk).slice(-4000)));
      child.on("error", (error) => reject(new EngineError(`Cannot start the eval worker: ${error.message}`, { cause: error })));
      child.on("close", (code, signal) => {
        options.signal?.removeEventListener("abort", onAbort);
        if (aborted) return reject(new AbortedError("Evaluation cancelled"));
        if (code === 0 && outcome !== undefined && "result" in outcome) return resolvePromise(outcome.result as T);
        if (outcome?.error !== undefined) {
          const error = outcome.code === "invalid_parameter" || outcome.code === "invalid_request" ? new InvalidRequestError(outcome.error, outcome.param === undefined ? {} : { param: outcome.param }) : new EngineError(outcome.error);
          return reject(error);
        }
        const assertion = /^.*GGML_ASSERT.*$/m.exec(stderrTail)?.[0]?.trim();
        reject(new EngineError(`Evaluation failed: ${assertion ?? (signal !== null ? `the worker was killed by ${signal}` : `the worker exited with code ${code}`)}`));
      });
    });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}
