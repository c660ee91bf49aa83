import { EngineError, GroveError, UpstreamError } from "../../core/errors.js";
import type { LoglikelihoodAnswer } from "./measure.js";
import { runEvalWorker, type RunEvalOptions } from "./run-eval-worker.js";
import type { EvalBackend } from "./tasks.js";

/** The server gives no log-probabilities for prompt tokens: log-likelihood tasks cannot be scored. */
export class MissingLogprobsError extends GroveError {
  constructor(message: string) {
    super("invalid_request", message);
  }
}

/** Settings of the local backend. */
export interface LocalBackendOptions extends RunEvalOptions {
  model: string;
  contextSize: number;
  threads: number;
}

/** Scores through llama.cpp's logits in an eval worker (the same libllama node-llama-cpp serves with). */
export function localBackend(options: LocalBackendOptions): EvalBackend {
  const base = { model: options.model, contextSize: options.contextSize, threads: options.threads, batchSize: options.contextSize };
  const run = { ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }), ...(options.signal === undefined ? {} : { signal: options.signal }) };
  return {
    loglikelihood: (requests) => runEvalWorker<LoglikelihoodAnswer[]>({ ...base, op: "loglikelihood", requests: [...requests] }, run),
    generate: (requests) => runEvalWorker<string[]>({ ...base, op: "generate", requests: [...requests] }, run),
  };
}

interface CompletionLogprobs {
  tokens?: string[];
  token_logprobs?: (number | null)[];
  top_logprobs?: (Record<string, number> | null)[];
  text_offset?: number[];
}

/**
 * Scores through an OpenAI-compatible `/v1/completions` endpoint, as lm-evaluation-harness's
 * `local-completions`: each request's context + continuation sent with `echo: true, logprobs: 1,
 * max_tokens: 1`, the continuation's tokens found by their text offsets. A server that returns
 * no prompt log-probabilities is refused ({@link MissingLogprobsError}) instead of scoring at
 * chance (llama.cpp#27174, lm-evaluation-harness#3275).
 */
export function httpBackend(endpoint: string, model: string, apiKey?: string): EvalBackend {
  const url = `${endpoint.replace(/\/+$/, "")}/completions`;
  const post = async (body: Record<string, unknown>): Promise<{ choices?: { text?: string; logprobs?: CompletionLogprobs | null }[] }> => {
    let response: Response;
    try {
      response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }) }, body: JSON.stringify({ model, ...body }) });
    } catch (error) {
      throw new UpstreamError(`Cannot reach ${url}: ${(error as Error).message}`, { cause: error });
    }
    const text = await response.text();
    if (!response.ok) throw new UpstreamError(`${url} answered ${response.status}: ${text.slice(0, 300)}`, { status: response.status });
    try {
      return JSON.parse(text) as { choices?: { text?: string; logprobs?: CompletionLogprobs | null }[] };
    } catch {
      throw new UpstreamError(`${url} answered something that is not JSON`);
    }
  };
  return {
    async loglikelihood(requests) {
      const answers: LoglikelihoodAnswer[] = [];
      for (const request of requests) {
        const prompt = request.context + request.continuation;
        const body = await post({ prompt, echo: true, logprobs: 1, max_tokens: 1, temperature: 0 });
        const logprobs = body.choices?.[0]?.logprobs;
        const offsets = logprobs?.text_offset;
        const scores = logprobs?.token_logprobs;
        if (logprobs == null || offsets === undefined || scores === undefined || logprobs.tokens === undefined || scores.length < 2 || scores.slice(1).every((score) => score === null)) {
          throw new MissingLogprobsError(
            `${url} returned no log-probabilities for the prompt's tokens (echo + logprobs): log-likelihood and multiple-choice tasks cannot be scored on it — they would score at chance`,
          );
        }
        let total = 0;
        let tokens = 0;
        let greedy = true;
        // Tokens of the prompt, not the one generated after it.
        const promptTokens = offsets.findIndex((offset, index) => index > 0 && offset >= prompt.length);
        const end = promptTokens === -1 ? offsets.length : promptTokens;
        for (let index = 0; index < end; index++) {
          if (offsets[index]! < request.context.length) continue;
          const score = scores[index];
          if (score === null || score === undefined) throw new MissingLogprobsError(`${url} left the log-probability of a continuation token out`);
          total += score;
          tokens++;
          const top = logprobs.top_logprobs?.[index];
          const best = top == null ? undefined : Object.entries(top).sort((a, b) => b[1] - a[1])[0]?.[0];
          if (best !== logprobs.tokens[index]) greedy = false;
        }
        if (tokens === 0) throw new EngineError(`The continuation ${JSON.stringify(request.continuation)} got no tokens of its own from ${url}`);
        answers.push({ logLikelihood: total, isGreedy: greedy, tokens });
      }
      return answers;
    },
    async generate(requests) {
      const texts: string[] = [];
      for (const request of requests) {
        const body = await post({ prompt: request.context, max_tokens: request.maxTokens, temperature: 0, stop: request.until.slice(0, 4) });
        const text = body.choices?.[0]?.text ?? "";
        const cut = request.until.map((until) => text.indexOf(until)).filter((index) => index >= 0);
        texts.push(cut.length > 0 ? text.slice(0, Math.min(...cut)) : text);
      }
      return texts;
    },
  };
}
