// The eval job, run in the job worker process (native/job-host.ts): loads the model(s) through
// libllama (koffi), runs one measurement and emits {"event":"progress",…} while it runs.
// llama.cpp logs to stderr; a GGML_ASSERT aborts the process, which the parent reports.
import { readFile } from "node:fs/promises";
import { loadLibllamaFfi } from "../../native/libllama.js";
import { EvalContext, freeEvalModel, loadEvalModel, type EvalModel } from "./libllama-eval.js";
import { generateGreedy, loglikelihood, measureKlDivergence, measurePerplexity, unknownOperation, type GenerateRequest, type LoglikelihoodRequest } from "./measure.js";

/** What the worker is asked to do. */
export type EvalWorkerRequest = {
  model: string;
  threads: number;
  contextSize: number;
  batchSize?: number;
  /** Another build of the same llama.cpp (benchmarks); default node-llama-cpp's. */
  libraryDirectory?: string;
} & (
  | { op: "perplexity"; textFile: string }
  | { op: "kl-divergence"; textFile: string; reference: string }
  | { op: "loglikelihood"; requests: LoglikelihoodRequest[] }
  | { op: "generate"; requests: GenerateRequest[] }
);

/** The eval job: one measurement, its progress through `emit`. */
export async function run(request: EvalWorkerRequest, emit: (event: Record<string, unknown>) => void): Promise<unknown> {
  const lib = await loadLibllamaFfi(request.libraryDirectory);
  const model = await loadEvalModel(request.model);
  const open: EvalModel[] = [model];
  const contexts: EvalContext[] = [];
  const contextFor = async (target: EvalModel): Promise<EvalContext> => {
    const context = await EvalContext.create(target, { contextSize: request.contextSize, threads: request.threads, ...(request.batchSize === undefined ? {} : { batchSize: request.batchSize }) });
    contexts.push(context);
    return context;
  };
  const progress = (done: number, total: number, perplexity?: number): void => emit({ event: "progress", done, total, ...(perplexity === undefined ? {} : { perplexity }) });
  try {
    switch (request.op) {
      case "perplexity":
        return await measurePerplexity(model, await contextFor(model), await readFile(request.textFile, "utf8"), progress);
      case "kl-divergence": {
        const reference = await loadEvalModel(request.reference);
        open.push(reference);
        return await measureKlDivergence(model, await contextFor(model), reference, await contextFor(reference), await readFile(request.textFile, "utf8"), progress);
      }
      case "loglikelihood": {
        const context = await contextFor(model);
        const answers = [];
        for (const [index, item] of request.requests.entries()) {
          answers.push(await loglikelihood(model, context, item));
          if (index % 16 === 15 || index === request.requests.length - 1) progress(index + 1, request.requests.length);
        }
        return answers;
      }
      case "generate": {
        const context = await contextFor(model);
        const isEnd = (token: number): boolean => lib.fn.llama_vocab_is_eog!(model.vocab, token) as boolean;
        const pieceOf = async (token: number): Promise<Uint8Array> => {
          const buffer = new Uint8Array(256);
          const count = lib.fn.llama_token_to_piece!(model.vocab, token, buffer, buffer.length, 0, false) as number;
          return buffer.slice(0, Math.max(0, count));
        };
        const texts = [];
        for (const [index, item] of request.requests.entries()) {
          texts.push(await generateGreedy(model, context, item, isEnd, pieceOf));
          progress(index + 1, request.requests.length);
        }
        return texts;
      }
      default:
        return unknownOperation((request as { op: string }).op);
    }
  } finally {
    for (const context of contexts) context.dispose();
    for (const each of open) await freeEvalModel(each);
  }
}

