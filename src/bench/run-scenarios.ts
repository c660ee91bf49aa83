import { peakRssBytes } from "./cost/peak-rss.js";
import type { PromptBuilder } from "./prompt-builder.js";
import { streamCompletion, type StreamCompletionResult } from "./stream-completion.js";

/** What to run against each server; identical for every server of a model. */
export interface ScenarioPlan {
  /** Measured requests (or rounds of concurrent requests) per scenario. */
  readonly repeats: number;
  /** Tokens generated per request in the decode scenarios. */
  readonly maxTokens: number;
  /** Prompts of about 32 tokens. */
  readonly shortPrompt: PromptBuilder;
  /** Prompts of about 480 tokens. */
  readonly longPrompt: PromptBuilder;
  /** Concurrent stream counts, e.g. [4, 8]. */
  readonly concurrency: readonly number[];
  /** `logit_bias` sent with every measured request. */
  readonly logitBias: Readonly<Record<string, number>>;
  /** Slots of the server: the burst scenario decodes in all but one. */
  readonly parallel: number;
  /** Tokens per slot: the burst's streams generate until the prompt is in, within it. */
  readonly contextSize: number;
  /** The burst scenario's long prompt; undefined: not run. */
  readonly burstPrompt?: PromptBuilder;
}

/** The server under test, as the scenarios need it. */
export interface ScenarioTarget {
  /** Name for progress messages. */
  readonly name: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Model id to send. */
  readonly model: string;
  /** The server's process, for its peak memory. */
  readonly pid?: number;
}

/** Samples of the concurrent scenario with `streams` streams. */
export interface ConcurrentSamples {
  /** Streams started together. */
  readonly streams: number;
  /** Per round: all completion tokens / (last stream end − first request start), tokens/s. */
  readonly aggregateRates: number[];
  /** Per round: tokens/s while every stream was decoding (after the last first token, before the first finish). */
  readonly steadyRates: number[];
  /** Time to first token of every stream, ms. */
  readonly firstTokenTimes: number[];
}

/** Raw samples of every scenario on one server; {@link ScenarioResults} are summarised by the report. */
export interface ScenarioResults {
  /** Single stream, short prompt: decode tokens/s per request (tokens after the first / time from first token to finish). */
  readonly singleDecodeRates: number[];
  /** Single stream, short prompt: time to first token, ms. */
  readonly singleFirstTokenTimes: number[];
  /** Long prompt, one output token: prompt tokens / time to first event, tokens/s. */
  readonly promptRates: number[];
  /** Long prompt: time to first event, ms. */
  readonly longFirstTokenTimes: number[];
  /** `prompt_tokens` the server reported for the short and the long prompt (first request of each). */
  readonly promptTokens: { readonly short: number | undefined; readonly long: number | undefined };
  /** Concurrent scenarios, in plan order. */
  readonly concurrent: ConcurrentSamples[];
  /** The burst scenario, when run. */
  readonly burst?: BurstSamples;
  /** Peak resident memory of the server process after every scenario (`VmHWM`), bytes. */
  readonly peakRssBytes?: number;
  /** Things that make the numbers doubtful (early stops, missing usage); deduplicated. */
  readonly warnings: string[];
}

/** Samples of the burst scenario: a long prompt arriving while the other slots decode. */
export interface BurstSamples {
  /** Streams decoding when the prompt arrived. */
  readonly streams: number;
  /** Per round: the longest pause between two text events of a running stream while the prompt was evaluated, ms. */
  readonly maxGapMs: number[];
  /** Per round: the median pause between text events before the prompt arrived, ms. */
  readonly baselineGapMs: number[];
  /** Per round: time to the long prompt's first token, ms. */
  readonly promptFirstTokenMs: number[];
  /** Per round: the server's longest event-loop delay during the round (Grove's `/metrics`), ms. */
  readonly eventLoopMaxMs: number[];
}

/** Tokens/s from a token count and a span of milliseconds; undefined when the span is empty. */
function rate(tokens: number, milliseconds: number): number | undefined {
  return milliseconds > 0 && tokens > 0 ? (tokens * 1000) / milliseconds : undefined;
}

/**
 * Runs the scenarios against one server, in a fixed order with fixed prompts, after one
 * discarded warm-up request: (a) one stream with a short prompt, (b) one stream with a
 * long prompt and a single output token, (c…) N concurrent streams. Each request number,
 * and so each prompt, is used once per server, and both servers see the same sequence.
 */
export async function runScenarios(
  target: ScenarioTarget,
  plan: ScenarioPlan,
  progress: (message: string) => void,
): Promise<ScenarioResults> {
  const warnings = new Set<string>();
  let requestNumber = 1;
  const send = async (prompt: PromptBuilder, maxTokens: number): Promise<StreamCompletionResult> => {
    const result = await streamCompletion({
      baseUrl: target.url,
      model: target.model,
      prompt: prompt.prompt(requestNumber++),
      maxTokens,
      logitBias: plan.logitBias,
    });
    check(result, maxTokens, warnings);
    return result;
  };

  progress(`${target.name}: warm-up`);
  await send(plan.shortPrompt, Math.min(16, plan.maxTokens));

  const singleDecodeRates: number[] = [];
  const singleFirstTokenTimes: number[] = [];
  let shortPromptTokens: number | undefined;
  for (let repeat = 0; repeat < plan.repeats; repeat++) {
    progress(`${target.name}: single stream ${repeat + 1}/${plan.repeats}`);
    const result = await send(plan.shortPrompt, plan.maxTokens);
    shortPromptTokens ??= result.promptTokens;
    const decode = decodeRate(result);
    if (decode !== undefined) singleDecodeRates.push(decode);
    if (result.firstTextAt !== undefined) singleFirstTokenTimes.push(result.firstTextAt - result.startedAt);
  }

  const promptRates: number[] = [];
  const longFirstTokenTimes: number[] = [];
  let longPromptTokens: number | undefined;
  for (let repeat = 0; repeat < plan.repeats; repeat++) {
    progress(`${target.name}: long prompt ${repeat + 1}/${plan.repeats}`);
    const result = await send(plan.longPrompt, 1);
    longPromptTokens ??= result.promptTokens;
    if (result.firstChoiceAt === undefined) continue;
    const firstToken = result.firstChoiceAt - result.startedAt;
    longFirstTokenTimes.push(firstToken);
    const prompt = rate(result.promptTokens ?? plan.longPrompt.measuredTokens, firstToken);
    if (prompt !== undefined) promptRates.push(prompt);
  }

  const concurrent: ConcurrentSamples[] = [];
  for (const streams of plan.concurrency) {
    const samples: ConcurrentSamples = { streams, aggregateRates: [], steadyRates: [], firstTokenTimes: [] };
    for (let repeat = 0; repeat < plan.repeats; repeat++) {
      progress(`${target.name}: ${streams} concurrent streams ${repeat + 1}/${plan.repeats}`);
      const results = await Promise.all(Array.from({ length: streams }, () => send(plan.shortPrompt, plan.maxTokens)));
      addConcurrentSamples(samples, results, warnings);
    }
    concurrent.push(samples);
  }

  const burst = plan.burstPrompt === undefined ? undefined : await runBurst(target, plan, plan.burstPrompt, () => requestNumber++, progress, warnings);
  const peak = target.pid === undefined ? undefined : await peakRssBytes(target.pid);
  return {
    singleDecodeRates,
    singleFirstTokenTimes,
    promptRates,
    longFirstTokenTimes,
    promptTokens: { short: shortPromptTokens, long: longPromptTokens },
    concurrent,
    ...(burst === undefined ? {} : { burst }),
    ...(peak === undefined ? {} : { peakRssBytes: peak }),
    warnings: [...warnings],
  };
}

/**
 * While `parallel - 1` streams decode, one long prompt arrives; its evaluation should hold the
 * streams up by no more than one prompt chunk. The streams run until the prompt's first token
 * (plus a little), then are cut; the pauses between their text events in that window are measured.
 */
async function runBurst(
  target: ScenarioTarget,
  plan: ScenarioPlan,
  burstPrompt: PromptBuilder,
  nextRequest: () => number,
  progress: (message: string) => void,
  warnings: Set<string>,
): Promise<BurstSamples> {
  const streams = plan.parallel - 1;
  const samples: BurstSamples = { streams, maxGapMs: [], baselineGapMs: [], promptFirstTokenMs: [], eventLoopMaxMs: [] };
  const decodeTokens = plan.contextSize - Math.ceil(plan.shortPrompt.measuredTokens * 1.1) - 8;
  for (let repeat = 0; repeat < plan.repeats; repeat++) {
    progress(`${target.name}: ${burstPrompt.measuredTokens}-token prompt while ${streams} streams decode ${repeat + 1}/${plan.repeats}`);
    await eventLoopMaxMs(target.url);
    const stop = new AbortController();
    let started = 0;
    let allStarted!: () => void;
    const running = new Promise<void>((resolve) => (allStarted = resolve));
    const decoding = Array.from({ length: streams }, () =>
      streamCompletion({
        baseUrl: target.url,
        model: target.model,
        prompt: plan.shortPrompt.prompt(nextRequest()),
        maxTokens: decodeTokens,
        logitBias: plan.logitBias,
        signal: stop.signal,
        onFirstText: () => {
          if (++started === streams) allStarted();
        },
      }),
    );
    await running;
    // Let the streams settle into a steady rhythm first.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const burst = await streamCompletion({ baseUrl: target.url, model: target.model, prompt: burstPrompt.prompt(nextRequest()), maxTokens: 1, logitBias: plan.logitBias });
    await new Promise((resolve) => setTimeout(resolve, 200));
    stop.abort();
    const results = await Promise.all(decoding);
    const windowEnd = burst.firstChoiceAt ?? burst.endedAt;
    if (burst.firstChoiceAt !== undefined) samples.promptFirstTokenMs.push(burst.firstChoiceAt - burst.startedAt);
    let maxGap = 0;
    const before: number[] = [];
    for (const result of results) {
      const times = result.textEventTimes;
      if (times.length > 0 && times.at(-1)! < windowEnd) warnings.add("a burst stream ended before the long prompt was in: raise --ctx-size");
      for (let index = 1; index < times.length; index++) {
        const gap = times[index]! - times[index - 1]!;
        if (times[index]! <= burst.startedAt) before.push(gap);
        // A gap overlapping the prompt's evaluation.
        else if (times[index - 1]! < windowEnd) maxGap = Math.max(maxGap, gap);
      }
    }
    samples.maxGapMs.push(maxGap);
    before.sort((a, b) => a - b);
    if (before.length > 0) samples.baselineGapMs.push(before[Math.floor(before.length / 2)]!);
    const loop = await eventLoopMaxMs(target.url);
    if (loop !== undefined) samples.eventLoopMaxMs.push(loop);
  }
  return samples;
}

/** Grove's longest event-loop delay since the last scrape (reading resets it), ms; undefined for other servers. */
async function eventLoopMaxMs(url: string): Promise<number | undefined> {
  try {
    const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    if (!response.ok) return undefined;
    const match = /^grove_event_loop_delay_max_seconds ([\d.e+-]+)$/m.exec(await response.text());
    return match === null ? undefined : Number(match[1]) * 1000;
  } catch {
    return undefined;
  }
}

/** Tokens the request generated: the server's usage count, else one per text event. */
function generatedTokens(result: StreamCompletionResult): number {
  return result.completionTokens ?? result.textEventTimes.length;
}

/**
 * Decode rate of one request: the tokens after the first over the time from the first text
 * to the finish event. An event may carry more than one token, so tokens come from
 * `usage.completion_tokens`, not from counting events.
 */
function decodeRate(result: StreamCompletionResult): number | undefined {
  const end = result.finishAt ?? result.lastTextAt;
  if (result.firstTextAt === undefined || end === undefined) return undefined;
  return rate(generatedTokens(result) - 1, end - result.firstTextAt);
}

function addConcurrentSamples(samples: ConcurrentSamples, results: StreamCompletionResult[], warnings: Set<string>): void {
  const started = Math.min(...results.map((result) => result.startedAt));
  const ended = Math.max(...results.map((result) => result.endedAt));
  const total = results.reduce((sum, result) => sum + generatedTokens(result), 0);
  const aggregate = rate(total, ended - started);
  if (aggregate !== undefined) samples.aggregateRates.push(aggregate);
  for (const result of results) {
    if (result.firstTextAt !== undefined) samples.firstTokenTimes.push(result.firstTextAt - result.startedAt);
  }
  // The window in which every stream had its first token and none had finished: only decoding happens in it.
  const windowStart = Math.max(...results.map((result) => result.firstTextAt ?? Infinity));
  const windowEnd = Math.min(...results.map((result) => result.finishAt ?? result.lastTextAt ?? -Infinity));
  if (!(windowEnd > windowStart)) {
    warnings.add(`${results.length} streams were never all decoding at once (queued or finished early): no steady rate`);
    return;
  }
  let tokens = 0;
  for (const result of results) {
    const inWindow = result.textEventTimes.filter((time) => time > windowStart && time <= windowEnd).length;
    // Scale events to tokens where an event carried more (or, with held-back partial characters, fewer) than one.
    tokens += inWindow * (generatedTokens(result) / Math.max(1, result.textEventTimes.length));
  }
  const steady = rate(tokens, windowEnd - windowStart);
  if (steady !== undefined) samples.steadyRates.push(steady);
}

function check(result: StreamCompletionResult, maxTokens: number, warnings: Set<string>): void {
  if (result.completionTokens === undefined) {
    warnings.add("no usage.completion_tokens in the stream (stream_options.include_usage ignored?): tokens counted as text events");
  } else if (result.completionTokens !== maxTokens) {
    warnings.add(`a request generated ${result.completionTokens} tokens instead of max_tokens ${maxTokens} (ignore_eos not honoured?)`);
  }
  if (result.promptTokens === undefined) warnings.add("no usage.prompt_tokens in the stream");
  if (result.finishReason !== "length") warnings.add(`finish_reason '${result.finishReason}' instead of 'length'`);
  if (result.firstTextAt === undefined && maxTokens > 1) warnings.add("a stream carried no text at all");
}
