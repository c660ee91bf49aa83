import { randomInt } from "node:crypto";
import {
  LlamaGrammarEvaluationState,
  TokenBias,
  type ChatHistoryItem,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaModel,
  type SequenceEvaluateOptions,
  type Token,
} from "node-llama-cpp";
import {
  AbortedError,
  ContextLengthError,
  EngineError,
  GroveError,
  InvalidRequestError,
} from "../core/errors.js";
import type {
  ChatMessage,
  EmbedResult,
  FinishReason,
  GenerateEvent,
  GenerateOptions,
  LoadedModel,
  ModelInfo,
  ModelStats,
  TokenLogprob,
} from "./engine.js";
import { createJsonGrammar, type JsonGrammar } from "./json-grammar.js";
import { SlotPool } from "./slot-pool.js";
import { StopMatcher } from "./stop-matcher.js";
import { TokenTextDecoder } from "./token-text-decoder.js";

const GRAMMAR_CACHE_LIMIT = 32;

/** Everything a loaded model needs from the engine that loaded it. */
export interface LlamaLoadedModelOptions {
  readonly info: ModelInfo;
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly chatWrapper: ChatWrapper;
  readonly queueLimit: number;
  readonly threads: number;
}

/** Length of the common prefix of two token lists. */
export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const length = Math.min(a.length, b.length);
  let index = 0;
  while (index < length && a[index] === b[index]) index++;
  return index;
}

/**
 * One GGUF loaded through node-llama-cpp: a context with one sequence per slot, decoded
 * together in shared batches (continuous batching), a slot pool with prompt-prefix reuse,
 * grammar-constrained JSON, log-probabilities and a lazily created embedding context.
 */
export class LlamaLoadedModel implements LoadedModel {
  readonly info: ModelInfo;
  private readonly pool: SlotPool<LlamaContextSequence>;
  private readonly grammars = new Map<string, JsonGrammar>();
  private embeddingContext: Promise<LlamaEmbeddingContext> | undefined;
  private embeddingQueue: Promise<unknown> = Promise.resolve();
  private readonly finished: Record<FinishReason, number> = { stop: 0, length: 0, aborted: 0 };
  private pause: { promise: Promise<void>; resume: () => void; waiters: number } | undefined;

  constructor(private readonly options: LlamaLoadedModelOptions) {
    this.info = options.info;
    const sequences = Array.from({ length: options.info.slots }, () => options.context.getSequence());
    this.pool = new SlotPool({
      slots: sequences,
      queueLimit: options.queueLimit,
      cachedPrefixLength: (sequence, prompt) => commonPrefixLength(sequence.contextTokens, prompt),
    });
  }

  tokenize(text: string, options: { special?: boolean } = {}): number[] {
    return this.options.model.tokenize(text, options.special ?? false);
  }

  detokenize(tokens: readonly number[]): string {
    return this.options.model.detokenize(tokens as Token[], false);
  }

  applyChatTemplate(messages: readonly ChatMessage[]): number[] {
    const chatHistory: ChatHistoryItem[] = messages.map((message) =>
      message.role === "assistant"
        ? { type: "model", response: [message.content] }
        : { type: message.role, text: message.content },
    );
    chatHistory.push({ type: "model", response: [] });
    const { contextText } = this.options.chatWrapper.generateContextState({ chatHistory });
    return contextText.tokenize(this.options.model.tokenizer);
  }

  async prepareJsonGrammar(json: object | "json"): Promise<void> {
    await this.grammarFor(json);
  }

  stats(): ModelStats {
    return { slotsBusy: this.pool.busy, slotsTotal: this.pool.size, queued: this.pool.queued, finished: { ...this.finished } };
  }

  async *generate(options: GenerateOptions): AsyncGenerator<GenerateEvent, void, void> {
    const started = performance.now();
    const prompt = options.promptTokens;
    if (prompt.length === 0) throw new InvalidRequestError("The prompt is empty", { param: "prompt" });
    if (prompt.length + options.maxTokens > this.info.contextSize) {
      throw new ContextLengthError(
        `This model's context holds ${this.info.contextSize} tokens; the prompt has ${prompt.length} and ` +
          `max_tokens asks for ${options.maxTokens} more`,
        { param: "max_tokens" },
      );
    }
    const grammar = options.json === undefined ? undefined : await this.grammarFor(options.json);
    const sequence = await this.pool.acquire(prompt, options.signal);
    try {
      yield* this.generateOnSequence(sequence, options, grammar, started);
    } finally {
      this.pool.release(sequence);
    }
  }

  private async *generateOnSequence(
    sequence: LlamaContextSequence,
    options: GenerateOptions,
    grammar: JsonGrammar | undefined,
    started: number,
  ): AsyncGenerator<GenerateEvent, void, void> {
    const prompt = options.promptTokens as Token[];
    const signal = options.signal;
    let promptLogprobs: TokenLogprob[] | undefined;
    let cached = 0;
    try {
      if (options.promptLogprobs) {
        await this.duringPause(() => sequence.clearHistory());
        promptLogprobs = await this.scorePrompt(sequence, prompt, options.logprobs ?? 0);
      } else {
        // Reuse the cached prefix; at least one token must be evaluated to get logits.
        cached = Math.min(commonPrefixLength(sequence.contextTokens, prompt), prompt.length - 1);
        if (cached < sequence.nextTokenIndex) {
          await this.duringPause(() =>
            sequence.eraseContextTokenRanges([{ start: cached, end: sequence.nextTokenIndex }]),
          );
        }
      }
    } catch (error) {
      throw new EngineError("Evaluating the prompt failed", { cause: error });
    }
    if (signal?.aborted) throw new AbortedError();

    let finishReason: FinishReason = "stop";
    let completionTokens = 0;
    let firstTokenAt = 0;
    if (options.maxTokens > 0) {
      const toEvaluate = options.promptLogprobs ? prompt.slice(-1) : prompt.slice(cached);
      const generated: Token[] = [];
      const decoder = new TokenTextDecoder((tokens, last) =>
        this.options.model.detokenize(tokens as Token[], false, last as Token[]),
      );
      const stopMatcher = new StopMatcher(
        [...(options.stop ?? []), ...(grammar?.stop ?? [])],
        grammar?.trimTrailingWhitespace ?? false,
      );
      const topCount = options.logprobs;
      const wantLogprobs = topCount !== undefined;
      const pendingLogprobs: TokenLogprob[] = [];
      const evaluateOptions = this.evaluateOptions(options, grammar, generated);
      const iterator = wantLogprobs
        ? sequence.evaluateWithMetadata(toEvaluate, { probabilities: true }, evaluateOptions)
        : sequence.evaluate(toEvaluate, evaluateOptions);
      let stoppedByString = false;
      try {
        for await (const item of iterator) {
          const token = typeof item === "number" ? item : item.token;
          if (completionTokens === 0) firstTokenAt = performance.now();
          completionTokens++;
          generated.push(token);
          if (wantLogprobs && typeof item !== "number") {
            pendingLogprobs.push(this.logprobOf(token, item.probabilities, topCount));
          }
          const { release, stopped } = stopMatcher.push(decoder.push(token).text);
          if (release.length > 0) yield chunk(release, wantLogprobs ? pendingLogprobs.splice(0) : undefined);
          if (stopped) {
            stoppedByString = true;
            break;
          }
          if (completionTokens >= options.maxTokens) {
            finishReason = "length";
            break;
          }
          if (signal?.aborted) {
            finishReason = "aborted";
            break;
          }
          if (this.pause) await this.pause.promise;
        }
      } catch (error) {
        if (error instanceof GroveError) throw error;
        throw new EngineError("Generation failed", { cause: error });
      }
      if (!stoppedByString) {
        // End of generation, length or abort: release what was held back, unless it
        // completes a stop string after all.
        const { release, stopped } = stopMatcher.push(decoder.flush().text);
        const text = stopped ? release : release + stopMatcher.flush();
        if (stopped) finishReason = "stop";
        if (text.length > 0 || pendingLogprobs.length > 0) {
          yield chunk(text, wantLogprobs ? pendingLogprobs.splice(0) : undefined);
        }
      }
    }
    const ended = performance.now();
    this.finished[finishReason]++;
    yield {
      type: "done",
      finishReason,
      promptTokens: prompt.length,
      completionTokens,
      cachedTokens: cached,
      promptLogprobs,
      timeToFirstTokenMs: (firstTokenAt || ended) - started,
      totalMs: ended - started,
    };
  }

  /**
   * Runs a KV-cache edit (erasing a slot's stale tokens) while generations hold back their
   * next token. node-llama-cpp's batch loop keeps the context lock for as long as any
   * sequence has a decode queued, and cache edits need that lock: under steady load a new
   * request would wait until every running stream finished. Holding the running streams
   * for one step lets the loop drain, the edit run, and the newcomer join the next batch.
   */
  private async duringPause<T>(edit: () => Promise<T>): Promise<T> {
    if (!this.pause) {
      let resume!: () => void;
      const promise = new Promise<void>((resolve) => (resume = resolve));
      this.pause = { promise, resume, waiters: 0 };
    }
    const pause = this.pause;
    pause.waiters++;
    try {
      return await edit();
    } finally {
      if (--pause.waiters === 0) {
        this.pause = undefined;
        pause.resume();
      }
    }
  }

  /** Scores every prompt token given the tokens before it (completions `echo` + `logprobs`). */
  private async scorePrompt(sequence: LlamaContextSequence, prompt: Token[], topCount: number): Promise<TokenLogprob[]> {
    const scored = prompt.slice(0, -1);
    const results = await sequence.controlledEvaluate(
      scored.map((token) => [token, { generateNext: { probabilities: true } }] as const),
    );
    const logprobs: TokenLogprob[] = [{ token: prompt[0]!, text: this.tokenText(prompt[0]!), logprob: null, top: [] }];
    for (let index = 0; index < scored.length; index++) {
      const probabilities = results[index]?.next.probabilities;
      logprobs.push(this.logprobOf(prompt[index + 1]!, probabilities, topCount));
    }
    return logprobs;
  }

  private logprobOf(token: Token, probabilities: Map<Token, number> | undefined, topCount = 0): TokenLogprob {
    const probability = probabilities?.get(token) ?? 0;
    const top: { token: number; text: string; logprob: number }[] = [];
    if (probabilities && topCount > 0) {
      for (const [candidate, value] of probabilities) {
        if (top.length >= topCount) break;
        top.push({ token: candidate, text: this.tokenText(candidate), logprob: Math.log(value) });
      }
    }
    // A token the sampler removed (top-k, grammar) has probability 0: report the floor
    // llama.cpp uses rather than -Infinity, which JSON cannot carry.
    return { token, text: this.tokenText(token), logprob: probability > 0 ? Math.log(probability) : -9999, top };
  }

  private tokenText(token: number): string {
    return this.options.model.detokenize([token as Token], true);
  }

  private evaluateOptions(
    options: GenerateOptions,
    jsonGrammar: JsonGrammar | undefined,
    generated: Token[],
  ): SequenceEvaluateOptions {
    const { model } = this.options;
    const evaluateOptions: SequenceEvaluateOptions = {
      temperature: options.temperature ?? 1,
      topP: options.topP ?? 1,
      topK: options.topK ?? 0,
      minP: options.minP ?? 0,
      seed: options.seed ?? randomInt(0, 2 ** 32 - 1),
      // Bounds are checked before generation starts, so the context never has to shift.
      contextShift: { size: 0 },
    };
    if (jsonGrammar) {
      evaluateOptions.grammarEvaluationState = new LlamaGrammarEvaluationState({ model, grammar: jsonGrammar.grammar });
    }
    const penalty = options.repeatPenalty ?? 1;
    const presence = options.presencePenalty ?? 0;
    const frequency = options.frequencyPenalty ?? 0;
    if (penalty !== 1 || presence !== 0 || frequency !== 0) {
      evaluateOptions.repeatPenalty = {
        punishTokens: () => generated,
        maxPunishTokens: Math.max(64, options.maxTokens),
        penalty,
        presencePenalty: presence,
        frequencyPenalty: frequency,
      };
    }
    const biases = new Map(options.logitBias ?? []);
    // llama.cpp's ignore_eos: end-of-generation tokens can never be sampled.
    if (options.ignoreEos) for (const token of this.endOfGenerationTokens()) biases.set(token, -Infinity);
    if (biases.size > 0) evaluateOptions.tokenBias = tokenBiasOf(model, biases);
    return evaluateOptions;
  }

  private eogTokens: number[] | undefined;

  /** Every end-of-generation token of the vocabulary (EOS, EOT, `<|im_end|>`…), found once. */
  private endOfGenerationTokens(): number[] {
    if (!this.eogTokens) {
      this.eogTokens = [];
      for (let token = 0; token < this.info.vocabularySize; token++) {
        if (this.options.model.isEogToken(token as Token)) this.eogTokens.push(token);
      }
    }
    return this.eogTokens;
  }

  private async grammarFor(json: object | "json"): Promise<JsonGrammar> {
    const key = json === "json" ? "json" : JSON.stringify(json);
    const known = this.grammars.get(key);
    if (known) return known;
    let grammar: JsonGrammar;
    try {
      grammar = await createJsonGrammar(this.options.llama, json);
    } catch (error) {
      throw new InvalidRequestError(
        `The JSON schema cannot be turned into a grammar: ${error instanceof Error ? error.message : String(error)}`,
        { param: "response_format", cause: error },
      );
    }
    if (this.grammars.size >= GRAMMAR_CACHE_LIMIT) this.grammars.delete(this.grammars.keys().next().value!);
    this.grammars.set(key, grammar);
    return grammar;
  }

  async embed(inputs: readonly (string | readonly number[])[], signal?: AbortSignal): Promise<EmbedResult> {
    if (this.info.adapters !== undefined) {
      // node-llama-cpp's embedding contexts take no LoRA: they would silently embed with the bare base.
      throw new InvalidRequestError(`${this.info.id} is an adapter fork; embeddings are computed without adapters, so ask its base`, { param: "model" });
    }
    const tokenized = inputs.map((input) => (typeof input === "string" ? this.tokenize(input) : [...input]));
    const limit = Math.min(this.info.contextSize, this.info.trainContextSize);
    tokenized.forEach((tokens, index) => {
      if (tokens.length === 0) throw new InvalidRequestError(`input[${index}] is empty`, { param: "input" });
      const stray = tokens.find((token) => token >= this.info.vocabularySize);
      if (stray !== undefined) {
        throw new InvalidRequestError(`input[${index}] holds token ${stray}; the vocabulary has ${this.info.vocabularySize}`, {
          param: "input",
        });
      }
      if (tokens.length > limit) {
        throw new ContextLengthError(`input[${index}] has ${tokens.length} tokens; at most ${limit} fit`, {
          param: "input",
        });
      }
    });
    const run = this.embeddingQueue.then(async () => {
      const context = await this.getEmbeddingContext(limit);
      const vectors: number[][] = [];
      for (const tokens of tokenized) {
        if (signal?.aborted) throw new AbortedError();
        const embedding = await context.getEmbeddingFor(tokens as Token[]);
        vectors.push([...embedding.vector]);
      }
      return vectors;
    });
    this.embeddingQueue = run.catch(() => undefined);
    try {
      const vectors = await run;
      return { vectors, promptTokens: tokenized.reduce((sum, tokens) => sum + tokens.length, 0) };
    } catch (error) {
      if (error instanceof GroveError) throw error;
      throw new EngineError("Computing embeddings failed", { cause: error });
    }
  }

  private getEmbeddingContext(contextSize: number): Promise<LlamaEmbeddingContext> {
    this.embeddingContext ??= this.options.model.createEmbeddingContext({
      contextSize,
      threads: this.options.threads,
    });
    return this.embeddingContext;
  }

  /** Frees the embedding context and grammars; the engine disposes model and context. */
  async dispose(): Promise<void> {
    const embedding = await this.embeddingContext?.catch(() => undefined);
    await embedding?.dispose();
  }
}

/**
 * A TokenBias holding exactly the given logit offsets. `TokenBias.set` silently skips
 * end-of-generation tokens, but OpenAI's `logit_bias` and llama.cpp's `ignore_eos` must reach
 * them, so the map is filled directly (node-llama-cpp is pinned; the shape is checked).
 */
function tokenBiasOf(model: LlamaModel, biases: ReadonlyMap<number, number>): TokenBias {
  const bias = new TokenBias(model.tokenizer);
  const internal = (bias as unknown as { _biases?: unknown })._biases;
  if (!(internal instanceof Map)) {
    throw new EngineError("This node-llama-cpp version keeps token biases differently; logit_bias is unavailable");
  }
  for (const [token, value] of biases) internal.set(token, value);
  return bias;
}

function chunk(text: string, logprobs: TokenLogprob[] | undefined): GenerateEvent {
  return logprobs === undefined ? { type: "text", text } : { type: "text", text, logprobs };
}
