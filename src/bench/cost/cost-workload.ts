import { EngineError } from "../../core/errors.js";
import { median } from "../percentile.js";
import { PromptBuilder } from "../prompt-builder.js";
import { countPromptTokens, streamCompletion, type StreamCompletionResult } from "../stream-completion.js";

/** What `grove bench` sends: its digest is the result's task digest. */
export interface CostWorkload {
  /** Tokens of each prompt for prompt speed, time to first token and single-stream decode. */
  promptTokens: number;
  /** Tokens generated per stream (sent with `ignore_eos`, so every stream makes exactly this many). */
  outputTokens: number;
  /** Concurrent streams to measure aggregate decode at, each at most the slot count. */
  concurrency: number[];
}

/** The numbers of one run, named as `COST_METRICS`. */
export interface CostMeasurement {
  metrics: Record<string, number | null>;
  details: {
    /** Prompt tokens the server counted for the calibrated prompt. */
    measuredPromptTokens: number;
    /** Time to first token of each prompt request, ms. */
    ttftSamplesMs: number[];
    /** Single-stream decode tokens/s of each run. */
    decodeSamples: number[];
    /** Prompt tokens/s of each prompt request. */
    promptSpeeds: number[];
  };
}

/** Prompt requests timed for prompt speed and time to first token (the median is kept). */
const PROMPT_RUNS = 3;
/** Single-stream decode runs (the median is kept). */
const DECODE_RUNS = 2;
/** Words of the short prompts of the aggregate runs, so that they measure decoding. */
const SHORT_PROMPT_WORDS = 8;
/** Tries per measurement (a concurrent round, a decode sample) whose tokens may all arrive in one read. */
const MEASURE_TRIES = 3;

/**
 * Drives a running server through streamed `/v1/completions` with `ignore_eos` (so output
 * length is fixed) and measures:
 *
 * - prompt tokens/s: prompt tokens / time to first token of a `max_tokens: 1` request, median of
 *   {@link PROMPT_RUNS}; `ttftMs` is the median of the same requests;
 * - decode tokens/s of one stream: tokens after the first / time after the first, median of
 *   {@link DECODE_RUNS};
 * - aggregate decode tokens/s at each concurrency N: N streams with short prompts started
 *   together, their tokens after each one's first / time from the first first token to the
 *   last finish.
 *
 * Where a whole stream arrives in one read (a tiny model), the time is the server's own
 * (`timings.predicted_ms`) instead: the client has no interval to divide by.
 *
 * Every prompt is unique (PromptBuilder), so the slots' prefix cache cannot shorten one.
 */
export async function measureCost(
  baseUrl: string,
  model: string,
  workload: CostWorkload,
  onProgress: (message: string) => void = () => {},
): Promise<CostMeasurement> {
  onProgress(`calibrating a ${workload.promptTokens}-token prompt`);
  const builder = await PromptBuilder.calibrate(workload.promptTokens, (prompt) => countPromptTokens(baseUrl, model, prompt));
  let requestNumber = 1;
  const request = (prompt: string, maxTokens: number) => streamCompletion({ baseUrl, model, prompt, maxTokens });

  onProgress(`prompt processing: ${PROMPT_RUNS} requests of ${builder.measuredTokens} tokens`);
  const ttftSamplesMs: number[] = [];
  const promptSpeeds: number[] = [];
  for (let run = 0; run < PROMPT_RUNS; run++) {
    const result = await request(builder.prompt(requestNumber++), 1);
    const ttft = firstTokenMs(result);
    ttftSamplesMs.push(ttft);
    promptSpeeds.push(((result.promptTokens ?? builder.measuredTokens) * 1000) / ttft);
  }

  const decodeSamples: number[] = [];
  for (let run = 0; run < DECODE_RUNS * MEASURE_TRIES && decodeSamples.length < DECODE_RUNS; run++) {
    onProgress(`decoding: one stream of ${workload.outputTokens} tokens (${decodeSamples.length + 1}/${DECODE_RUNS})`);
    const result = await request(builder.prompt(requestNumber++), workload.outputTokens);
    const tokens = generatedTokens(result, workload.outputTokens);
    // Tokens that all arrived in one read leave no time to divide by: such a run is not a sample
    // (with none at all the speed is reported as not measured rather than infinite).
    // A server that reports its own timing is timed by it then: a small model on a fast machine
    // sends a whole stream in one read.
    const elapsedMs = endOf(result) - result.firstChoiceAt! || result.serverTimings?.predictedMs || 0;
    if (tokens >= 2 && elapsedMs > 0) decodeSamples.push(((tokens - 1) * 1000) / elapsedMs);
  }

  const metrics: Record<string, number | null> = {
    promptTokensPerSecond: median(promptSpeeds) ?? null,
    ttftMs: median(ttftSamplesMs) ?? null,
    decodeTokensPerSecond: median(decodeSamples) ?? null,
  };
  const short = new PromptBuilder(SHORT_PROMPT_WORDS, 0);
  for (const streams of workload.concurrency) {
    onProgress(`aggregate decoding: ${streams} concurrent stream${streams === 1 ? "" : "s"} of ${workload.outputTokens} tokens`);
    // A small model on a fast machine can finish every stream before the client reads its first
    // chunk, leaving no time to divide by: such a round is run again, up to MEASURE_TRIES times.
    let speed: number | null = null;
    for (let round = 0; round < MEASURE_TRIES && speed === null; round++) {
      const results = await Promise.all(Array.from({ length: streams }, () => request(short.prompt(requestNumber++), workload.outputTokens)));
      const tokens = results.reduce((sum, result) => sum + generatedTokens(result, workload.outputTokens) - 1, 0);
      const start = Math.min(...results.map((result) => result.firstChoiceAt!));
      const end = Math.max(...results.map(endOf));
      // Else, as above, the server's timing: the streams ran together, the longest bounds them.
      const elapsedMs = end - start || Math.max(0, ...results.map((result) => result.serverTimings?.predictedMs ?? 0));
      if (tokens > 0 && elapsedMs > 0) speed = (tokens * 1000) / elapsedMs;
    }
    metrics[`aggregateDecodeTokensPerSecond.${streams}`] = speed;
  }
  return { metrics, details: { measuredPromptTokens: builder.measuredTokens, ttftSamplesMs, decodeSamples, promptSpeeds } };
}

function firstTokenMs(result: StreamCompletionResult): number {
  if (result.firstChoiceAt === undefined) throw new EngineError("The server's stream ended without a token");
  return result.firstChoiceAt - result.startedAt;
}

function endOf(result: StreamCompletionResult): number {
  return result.finishAt ?? result.lastTextAt ?? result.endedAt;
}

/** Tokens a stream generated, checked against what `ignore_eos` promises. */
function generatedTokens(result: StreamCompletionResult, expected: number): number {
  if (result.firstChoiceAt === undefined) throw new EngineError("The server's stream ended without a token");
  const tokens = result.completionTokens ?? expected;
  if (tokens < 2) throw new EngineError(`The server generated ${tokens} token(s) where ${expected} were asked for (finish reason ${result.finishReason ?? "none"})`);
  return tokens;
}
