import { TextDecoder } from "node:util";
import { EngineError } from "../core/errors.js";
import type { NativeContext, NativeModel } from "../native/native-model.js";
import { SamplerChain } from "../native/sampler-chain.js";
import { AdapterSets, AdapterTurns } from "./adapter-sets.js";
import { adapterSetKey, type FromWorker, type GenerateRequest } from "./decode-protocol.js";
import type { FinishReason, TokenLogprob } from "./engine.js";
import { StopMatcher } from "./stop-matcher.js";
import { logprobOf } from "./token-logprobs.js";

/** How the loop shapes its steps. */
export interface DecodeLoopOptions {
  /** Most tokens in one decode. */
  readonly batchSize: number;
  /** Prompt tokens per step while other slots generate: the longest a new prompt holds them up. */
  readonly prefillChunk: number;
  /**
   * The slots share one KV cache (NativeContext `unified`). When it is full, the KV of a slot with
   * no job is dropped to make room, as llama-server's `try_clear_idle_slots`; when none is left to
   * drop, every running generation fails (see {@link DecodeLoop.step}). @default false
   */
  readonly unifiedKv?: boolean;
  /** How long one adapter set keeps the steps while others wait ({@link AdapterTurns}), ms. @default 20 */
  readonly adapterTurnMs?: number;
}

/** The message of generations failed because the shared KV cache is full (llama-server's words). */
export const CONTEXT_EXCEEDED_MESSAGE = "Context size has been exceeded.";

/** One choice of a generation, running in one slot. */
interface Job {
  readonly request: GenerateRequest;
  /** The adapter set it runs with ({@link adapterSetKey}): only jobs of one set share a step. */
  readonly set: string;
  readonly choice: number;
  readonly slot: Slot;
  /** prefill: evaluating the prompt; waiting: a sibling choice waits for the prompt; generate: decoding its last token. */
  state: "prefill" | "waiting" | "generate";
  /** Prompt tokens still to evaluate (prefill only), from `offset`. */
  offset: number;
  /** The sampled token to decode next. */
  next: number;
  generated: number;
  cached: number;
  cancelled: boolean;
  readonly sampler: SamplerChain;
  readonly decoder: TextDecoder;
  readonly stop: StopMatcher;
  readonly pendingLogprobs: TokenLogprob[];
  /** Tokens sampled since the last text event. */
  readonly pendingTokens: number[];
  promptLogprobs: TokenLogprob[] | undefined;
  /** The choices that wait for this one's prompt (n > 1). */
  readonly siblings: Job[];
  /** performance.now() when the loop took the request (prompt progress reports time from it). */
  readonly startedAt: number;
}

interface Slot {
  readonly index: number;
  /** The tokens whose keys and values the slot's sequence holds, position by position. */
  kv: number[];
  /** The adapter set `kv` was computed with: a prefix is reused only by the same set. */
  set: string;
  job: Job | undefined;
}

/** Length of the common prefix of two token lists. */
export function commonPrefixLength(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const length = Math.min(a.length, b.length);
  let index = 0;
  while (index < length && a[index] === b[index]) index++;
  return index;
}

/**
 * Grove's continuous-batching loop over one llama.cpp context, as llama-server's server context
 * runs it: each step decodes one batch holding the next token of every generating slot and, in
 * the room left, a chunk of the prompts being evaluated (at most `prefillChunk` tokens while any
 * slot generates, so a long prompt never holds running streams up for more than one chunk). Each
 * slot has its own KV stream, or all share one (`unifiedKv`); a new request keeps the prefix its
 * slot already holds. Sampling is
 * llama.cpp's sampler chain; text is decoded from token bytes as a stream (no partial UTF-8 is
 * released) and held back while it may still become a stop string.
 */
export class DecodeLoop {
  readonly #model: NativeModel;
  readonly #context: NativeContext;
  readonly #options: DecodeLoopOptions;
  readonly #emit: (message: FromWorker) => void;
  readonly #slots: Slot[];
  readonly #adapters: AdapterSets;
  /** Jobs in the order they arrived: prompts are evaluated first come, first served. */
  #jobs: Job[] = [];
  readonly #turns: AdapterTurns;

  constructor(model: NativeModel, context: NativeContext, options: DecodeLoopOptions, emit: (message: FromWorker) => void, adapters = new AdapterSets(model)) {
    this.#model = model;
    this.#context = context;
    this.#options = options;
    this.#emit = emit;
    this.#adapters = adapters;
    this.#turns = new AdapterTurns(options.adapterTurnMs ?? 20);
    this.#slots = Array.from({ length: context.sequences }, (_, index) => ({ index, kv: [], set: "", job: undefined }));
  }

  /** True while a running generation applies the adapter `key`. */
  usesAdapter(key: string): boolean {
    return this.#jobs.some((job) => job.request.adapters.some((adapter) => adapter.key === key));
  }

  /** True while any job runs. */
  get busy(): boolean {
    return this.#jobs.length > 0;
  }

  /** Starts a generation in the slots it names (free ones: the main thread's pool hands them out). */
  submit(request: GenerateRequest): void {
    const prompt = request.prompt;
    const set = adapterSetKey(request.adapters);
    const jobs: Job[] = [];
    try {
      if (this.#adapters.missing(request.adapters).length > 0) throw new EngineError("A LoRA adapter of this request is not loaded on the model (it was unloaded); retry");
      for (const [choice, index] of request.slots.entries()) {
        const slot = this.#slots[index];
        if (slot === undefined || slot.job !== undefined) throw new EngineError(`Slot ${index} is not free`);
        const sampler = new SamplerChain(this.#model, { ...request.sampling, seed: request.sampling.seed + choice });
        const job: Job = {
          request,
          set,
          choice,
          slot,
          state: choice === 0 ? "prefill" : "waiting",
          offset: 0,
          next: -1,
          generated: 0,
          cached: 0,
          cancelled: false,
          sampler,
          decoder: new TextDecoder("utf-8"),
          stop: new StopMatcher(request.stop, request.trimTrailingWhitespace),
          pendingLogprobs: [],
          pendingTokens: [],
          promptLogprobs: undefined,
          siblings: [],
          startedAt: performance.now(),
        };
        jobs.push(job);
      }
    } catch (error) {
      for (const job of jobs) job.sampler.free();
      this.#emit({ type: "failed", id: request.id, message: (error as Error).message });
      return;
    }
    const first = jobs[0]!;
    first.siblings.push(...jobs.slice(1));
    // Keep what the slot already holds of this prompt; at least one token is evaluated for logits.
    const slot = first.slot;
    // KV computed under another adapter set holds other values: nothing of it is reused.
    const keep = request.promptLogprobs || slot.set !== set ? 0 : Math.min(commonPrefixLength(slot.kv, prompt), prompt.length - 1);
    this.#context.removeTokens(slot.index, keep);
    slot.kv.length = keep;
    slot.set = set;
    first.offset = keep;
    first.cached = keep;
    if (request.promptLogprobs) first.promptLogprobs = [{ token: prompt[0]!, text: this.#tokenText(prompt[0]!), logprob: null, top: [] }];
    for (const job of jobs) {
      job.slot.job = job;
      this.#jobs.push(job);
    }
    // llama-server's first report: what the cache already holds, before any of the prompt is evaluated.
    this.#progress(first);
  }

  /** Reports how much of a job's prompt is in its slot's cache, when the request asked (llama-server's `prompt_progress`). */
  #progress(job: Job): void {
    if (!job.request.progress) return;
    const { id, prompt } = job.request;
    this.#emit({ type: "progress", id, total: prompt.length, cache: job.cached, processed: job.offset, timeMs: performance.now() - job.startedAt });
  }

  /** Stops a generation at the next step; its slots are freed with a `done` of reason `aborted`. */
  cancel(id: number): void {
    for (const job of this.#jobs) if (job.request.id === id) job.cancelled = true;
  }

  /**
   * Runs one decode step: builds the batch, decodes it, samples every slot that has logits, and
   * emits text and endings. @returns false when there was nothing to do
   */
  step(): boolean {
    for (const job of [...this.#jobs]) if (job.cancelled) this.#finish(job, "aborted");
    if (this.#jobs.length === 0) return false;
    // One adapter set per decode (llama.cpp applies one to the whole batch): the sets take turns.
    const turn = this.#turns.next(this.#jobs.filter((job) => job.state !== "waiting").map((job) => job.set), performance.now());
    if (turn === undefined) return false;
    const context = this.#context;
    context.clearBatch();
    const rows: { job: Job; index: number; prompt: boolean; position: number }[] = [];
    let generating = false;
    // In slot order, as llama-server adds them: llama.cpp splits a batch whose sequences are out of
    // order into several ubatches (one per ordered run), which multiplied the step time by up to 4.
    for (const job of this.#bySlot()) {
      if (job.state !== "generate") continue;
      // Streams of other sets wait their turn; a prompt still takes only a chunk, for their sake.
      generating = true;
      if (job.set !== turn) continue;
      const slot = job.slot;
      const index = context.add(job.next, slot.kv.length, slot.index, true);
      slot.kv.push(job.next);
      rows.push({ job, index, prompt: false, position: slot.kv.length - 1 });
    }
    let room = Math.min(context.batchSize - context.count, generating ? this.#options.prefillChunk : context.batchSize);
    const prefilled: Job[] = [];
    for (const job of this.#jobs) {
      if (job.state !== "prefill" || job.set !== turn || room <= 0) continue;
      prefilled.push(job);
      const prompt = job.request.prompt;
      const end = Math.min(prompt.length, job.offset + room);
      const scoring = job.request.promptLogprobs;
      const slot = job.slot;
      for (let position = job.offset; position < end; position++) {
        const last = position === prompt.length - 1;
        const output = last ? job.request.maxTokens > 0 || scoring : scoring;
        const index = context.add(prompt[position]!, position, slot.index, output);
        slot.kv.push(prompt[position]!);
        if (output) rows.push({ job, index, prompt: true, position });
      }
      room -= end - job.offset;
      job.offset = end;
    }
    if (context.count === 0) return false;
    try {
      this.#adapters.apply(context, (rows[0] ?? { job: prefilled[0]! }).job.request.adapters);
    } catch (error) {
      this.#failJobs(this.#jobs.filter((job) => job.set === turn), (error as Error).message);
      return true;
    }
    let status = context.decode();
    // A full shared cache (llama_decode evaluated nothing): drop idle slots' KV one at a time and retry.
    while (status === 1 && this.#options.unifiedKv === true && this.#purgeIdleSlot()) status = context.decode();
    if (status !== 0) {
      // With one shared cache every running generation is stuck: all fail, as llama-server's
      // ("Context size has been exceeded.") once even a batch of one token finds no room.
      if (status === 1 && this.#options.unifiedKv === true) this.#failJobs(this.#jobs, CONTEXT_EXCEEDED_MESSAGE);
      else this.#failJobs(this.#batchJobs(rows), `llama_decode failed with status ${status}${status === 1 ? " (no room in the KV cache)" : ""}`);
      return true;
    }
    for (const job of prefilled) this.#progress(job);
    for (const row of rows) {
      const job = row.job;
      if (job.slot.job !== job) continue;
      if (row.prompt) this.#promptRow(job, row.index, row.position);
      else this.#sampleInto(job, row.index);
    }
    // A prompt evaluated with no token to generate (echo alone) ends here.
    for (const job of [...this.#jobs]) {
      if (job.state === "prefill" && job.offset >= job.request.prompt.length && job.request.maxTokens === 0) this.#finish(job, "stop");
    }
    return true;
  }

  /** Running jobs ordered by slot. */
  #bySlot(): Job[] {
    return [...this.#jobs].sort((a, b) => a.slot.index - b.slot.index);
  }

  /** A prompt position's logits: scores the next prompt token (echo), and after the last one samples the first token. */
  #promptRow(job: Job, index: number, position: number): void {
    const prompt = job.request.prompt;
    const last = position === prompt.length - 1;
    if (job.promptLogprobs !== undefined && !last) {
      job.promptLogprobs.push(logprobOf(this.#context.logitsAt(index), prompt[position + 1]!, job.request.logprobs ?? 0, this.#text));
    }
    if (!last || job.request.maxTokens === 0) return;
    // The prompt is in: the waiting choices take a copy of it and sample from the same logits.
    for (const sibling of job.siblings) {
      this.#context.copySequence(job.slot.index, sibling.slot.index);
      sibling.slot.kv = [...job.slot.kv];
      sibling.slot.set = job.slot.set;
      sibling.cached = job.cached;
    }
    this.#sampleInto(job, index);
    for (const sibling of job.siblings) if (sibling.slot.job === sibling) this.#sampleInto(sibling, index);
  }

  /** Samples a job's next token from batch index `index` and emits what it completes. */
  #sampleInto(job: Job, index: number): void {
    const request = job.request;
    const post = request.logprobs !== undefined && request.postSamplingProbs ? job.sampler.sampleWithCandidates(this.#context, index, request.logprobs) : undefined;
    const token = post?.token ?? job.sampler.sample(this.#context, index);
    if (job.generated === 0 && job.choice === 0) this.#emit({ type: "first", id: request.id });
    if (this.#model.isEog(token)) {
      this.#finish(job, "stop");
      return;
    }
    job.generated++;
    job.state = "generate";
    job.next = token;
    if (post !== undefined) {
      job.pendingLogprobs.push({
        token,
        text: this.#tokenText(token),
        logprob: Math.log(post.probability),
        top: post.top.map((candidate) => ({ token: candidate.token, text: this.#tokenText(candidate.token), logprob: Math.log(candidate.probability) })),
      });
    } else if (request.logprobs !== undefined) job.pendingLogprobs.push(logprobOf(this.#context.logitsAt(index), token, request.logprobs, this.#text));
    job.pendingTokens.push(token);
    const text = job.decoder.decode(this.#model.piece(token, request.specialText), { stream: true });
    const { release, stopped, stop } = job.stop.push(text);
    if (release.length > 0) this.#emitText(job, release);
    if (stopped) {
      this.#finish(job, "stop", true, stop);
      return;
    }
    if (job.generated >= request.maxTokens) this.#finish(job, "length");
    else if (job.slot.kv.length >= this.#context.contextSize) this.#finish(job, "length");
  }

  #emitText(job: Job, text: string): void {
    const logprobs = job.request.logprobs === undefined ? undefined : job.pendingLogprobs.splice(0);
    const tokens = job.pendingTokens.splice(0);
    this.#emit(logprobs === undefined ? { type: "text", id: job.request.id, choice: job.choice, text, tokens } : { type: "text", id: job.request.id, choice: job.choice, text, tokens, logprobs });
  }

  /** Ends a job: releases what was held back (unless a stop string ended it), frees its sampler and slot. */
  #finish(job: Job, reason: FinishReason, stoppedByString = false, stopString?: string): void {
    let finishReason = reason;
    let stopWord = stopString;
    if (!stoppedByString) {
      const { release, stopped, stop } = job.stop.push(job.decoder.decode());
      const text = stopped ? release : release + job.stop.flush();
      if (stopped) {
        finishReason = "stop";
        stopWord = stop;
      }
      if (text.length > 0 || job.pendingLogprobs.length > 0 || job.pendingTokens.length > 0) this.#emitText(job, text);
    }
    job.sampler.free();
    job.slot.job = undefined;
    this.#jobs = this.#jobs.filter((other) => other !== job);
    // Siblings still waiting for a prompt that will not finish end with it.
    if (job.state !== "generate" && job.offset < job.request.prompt.length) {
      for (const sibling of job.siblings) if (sibling.slot.job === sibling) this.#finish(sibling, finishReason);
    }
    const done: FromWorker = {
      type: "done",
      id: job.request.id,
      choice: job.choice,
      slot: job.slot.index,
      finishReason,
      promptTokens: job.request.prompt.length,
      completionTokens: job.generated,
      cachedTokens: job.cached,
      ...(stopWord === undefined ? {} : { stopString: stopWord }),
      kv: Int32Array.from(job.slot.kv),
      ...(job.promptLogprobs === undefined ? {} : { promptLogprobs: job.promptLogprobs }),
    };
    this.#emit(done);
  }

  /** The jobs a failed decode may have left half-written: those of the batch, and prompts under way. */
  #batchJobs(rows: readonly { job: Job }[]): Job[] {
    const jobs = new Set(rows.map((row) => row.job));
    for (const job of this.#jobs) if (job.state === "prefill" && job.offset > 0) jobs.add(job);
    return [...jobs];
  }

  /** Fails the requests of `jobs`, every choice of each (siblings waiting for a prompt too), and empties their slots. */
  #failJobs(jobs: readonly Job[], message: string): void {
    const ids = new Set(jobs.map((job) => job.request.id));
    const failed = this.#jobs.filter((job) => ids.has(job.request.id));
    for (const job of failed) {
      job.sampler.free();
      job.slot.job = undefined;
      job.slot.kv = [];
      this.#context.removeTokens(job.slot.index, 0);
    }
    this.#jobs = this.#jobs.filter((job) => !ids.has(job.request.id));
    for (const id of ids) this.#emit({ type: "failed", id, message });
  }

  /** Drops the KV of one slot that runs no job (the first found); false when there is none to drop. */
  #purgeIdleSlot(): boolean {
    const idle = this.#slots.find((slot) => slot.job === undefined && slot.kv.length > 0);
    if (idle === undefined) return false;
    this.#context.removeTokens(idle.index, 0);
    idle.kv = [];
    this.#emit({ type: "purged", slot: idle.index });
    return true;
  }

  #tokenText(token: number): string {
    return Buffer.from(this.#model.piece(token, true)).toString("utf8");
  }

  readonly #text = (token: number): string => this.#tokenText(token);
}
