import { randomInt } from "node:crypto";
import type { Worker } from "node:worker_threads";
import { AbortedError, ContextLengthError, EngineError, InvalidRequestError } from "../core/errors.js";
import type { NativeModel } from "../native/native-model.js";
import type { SamplerSettings } from "../native/sampler-chain.js";
import { ChatTemplate, type ChatTemplateRenderOptions } from "./chat-template.js";
import { commonPrefixLength } from "./decode-loop.js";
import { adapterSetKey, type FromWorker, type ToWorker } from "./decode-protocol.js";
import type {
  ChatMessage,
  EmbedResult,
  FinishReason,
  GenerateDone,
  GenerateEvent,
  GenerateOptions,
  LoadedModel,
  ModelInfo,
  ModelStats,
  TokenizeOptions,
  VocabularyFacts,
} from "./engine.js";
import { createJsonGrammar, type JsonGrammar } from "./json-grammar.js";
import { SlotPool } from "./slot-pool.js";

const GRAMMAR_CACHE_LIMIT = 32;

/** What a loaded model needs from the engine that loaded it. */
export interface NativeLoadedModelOptions {
  readonly info: ModelInfo;
  /** The model's vocabulary on this thread (weights stay with the worker). */
  readonly vocabulary: NativeModel;
  readonly worker: Worker;
  readonly signal: SharedArrayBuffer;
  readonly queueLimit: number;
  /** A chat template used instead of the model's own: Jinja, or the name of one of llama.cpp's built-in formats. */
  readonly chatTemplate?: string;
  /** The seed of a generation that sets none (`--seed`); undefined draws one per generation. */
  readonly seed?: number;
  /** `off`: templates render with `enable_thinking` false unless a request says otherwise. @default "auto" */
  readonly reasoning?: "auto" | "on" | "off";
}

/** A generation (or an embedding call) waiting for the worker's messages. */
interface Pending {
  readonly slots: number[];
  /** Slots whose `done` has not come yet. */
  readonly open: Set<number>;
  readonly events: (FromWorker | { type: "gone"; message: string })[];
  wake: (() => void) | undefined;
  firstTokenAt: number;
}

/**
 * A model served by Grove's own decode loop (decode-loop.ts) in a worker thread: this side keeps
 * admission (the slot pool, with the prefix each slot holds), tokenization and chat templates
 * (a vocabulary-only copy of the model), JSON grammars, and turns the worker's messages into the
 * `LoadedModel` stream. The event loop never waits on llama.cpp.
 */
export class NativeLoadedModel implements LoadedModel {
  readonly info: ModelInfo;
  readonly #vocabulary: NativeModel;
  readonly #worker: Worker;
  readonly #signal: Int32Array;
  readonly #pool: SlotPool<number, { readonly tokens: readonly number[]; readonly set: string }>;
  /** What each slot's KV holds, as the worker last reported. */
  readonly #kv: Int32Array[];
  /** The adapter set each slot's KV was computed with ({@link adapterSetKey}); another set reuses none of it. */
  readonly #kvSet: string[];
  /** LoRA adapters loaded (or loading) on the worker's model, by key. */
  readonly #adapters = new Map<string, Promise<void>>();
  readonly #pending = new Map<number, Pending>();
  readonly #grammars = new Map<string, JsonGrammar>();
  readonly #finished: Record<FinishReason, number> = { stop: 0, length: 0, aborted: 0 };
  readonly #template: ChatTemplate;
  readonly #seed: number | undefined;
  readonly #reasoning: "auto" | "on" | "off";
  #nextId = 0;
  #broken: string | undefined;

  constructor(options: NativeLoadedModelOptions) {
    this.info = options.info;
    this.#reasoning = options.reasoning ?? "auto";
    this.#vocabulary = options.vocabulary;
    this.#worker = options.worker;
    this.#signal = new Int32Array(options.signal);
    this.#seed = options.seed;
    this.#kv = Array.from({ length: options.info.slots }, () => new Int32Array(0));
    this.#kvSet = Array.from({ length: options.info.slots }, () => "");
    this.#pool = new SlotPool({
      slots: Array.from({ length: options.info.slots }, (_, index) => index),
      queueLimit: options.queueLimit,
      cachedPrefixLength: (slot, prompt) => (this.#kvSet[slot] === prompt.set ? commonPrefixLength(this.#kv[slot]!, prompt.tokens) : 0),
    });
    const vocabulary = this.#vocabulary;
    const override = options.chatTemplate;
    // A name of llama.cpp's built-in formats (`llama3`, `command-r`…) is rendered by llama.cpp itself.
    const builtin = override !== undefined && vocabulary.builtinChatTemplates().includes(override)
      ? (messages: readonly { role: string; content: string }[], addAssistant: boolean) => vocabulary.applyBuiltinChatTemplate(override, messages, addAssistant)
      : undefined;
    this.#template = new ChatTemplate(
      override ?? vocabulary.chatTemplate(),
      {
        bosToken: vocabulary.bos >= 0 ? vocabulary.tokenText(vocabulary.bos) : "",
        eosToken: vocabulary.eos >= 0 ? vocabulary.tokenText(vocabulary.eos) : "",
      },
      builtin,
    );
    // The worker sends a step's messages as one array.
    this.#worker.on("message", (message: FromWorker | FromWorker[]) => {
      if (Array.isArray(message)) for (const each of message) this.#receive(each);
      else this.#receive(message);
    });
  }

  /** The chat template in use (the GGUF's, or ChatML when it has none). */
  get chatTemplate(): string {
    return this.#template.source;
  }

  tokenize(text: string, options: TokenizeOptions = {}): number[] {
    return Array.from(this.#vocabulary.tokenize(text, { addSpecial: options.addSpecial ?? false, parseSpecial: options.special ?? false }));
  }

  detokenize(tokens: readonly number[], options: { special?: boolean } = {}): string {
    return this.#vocabulary.detokenize(tokens, options.special ?? false);
  }

  vocabulary(): VocabularyFacts {
    const vocabulary = this.#vocabulary;
    const fim = vocabulary.fimTokens();
    return {
      bosText: vocabulary.bos >= 0 ? vocabulary.tokenText(vocabulary.bos) : "",
      eosText: vocabulary.eos >= 0 ? vocabulary.tokenText(vocabulary.eos) : "",
      ...(fim === undefined ? {} : { fim }),
      chatTemplate: this.#template.source,
      chatTemplateCapabilities: this.#template.capabilities,
      piece: (token) => vocabulary.piece(token, true),
    };
  }

  renderChat(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): string {
    return this.#template.render(messages, this.#renderOptions(options));
  }

  /** The server's reasoning default (`--reasoning off`: `enable_thinking` false) under the request's options. */
  #renderOptions(options: ChatTemplateRenderOptions | undefined): ChatTemplateRenderOptions | undefined {
    if (this.#reasoning !== "off") return options;
    return { enableThinking: false, ...options };
  }

  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): number[] {
    let text = this.#template.render(messages, this.#renderOptions(options));
    // llama.cpp's rule: a template that writes BOS itself loses it when tokenizing adds one anyway.
    const vocabulary = this.#vocabulary;
    if (vocabulary.addBos && vocabulary.bos >= 0) {
      const bos = vocabulary.tokenText(vocabulary.bos);
      if (bos !== "" && text.startsWith(bos)) text = text.slice(bos.length);
    }
    return Array.from(vocabulary.tokenize(text, { addSpecial: true, parseSpecial: true }));
  }

  async prepareJsonGrammar(json: object | "json"): Promise<void> {
    await this.#grammarFor(json);
  }

  stats(): ModelStats {
    return { slotsBusy: this.#pool.busy, slotsTotal: this.#pool.size, queued: this.#pool.queued, finished: { ...this.#finished } };
  }

  async *generate(options: GenerateOptions): AsyncGenerator<GenerateEvent, void, void> {
    const started = performance.now();
    const prompt = options.promptTokens;
    const choices = options.n ?? 1;
    if (prompt.length === 0) throw new InvalidRequestError("The prompt is empty", { param: "prompt" });
    if (prompt.length + options.maxTokens > this.info.contextSize) {
      throw new ContextLengthError(
        `This model's context holds ${this.info.contextSize} tokens; the prompt has ${prompt.length} and max_tokens asks for ${options.maxTokens} more`,
        { param: "max_tokens", sizes: { promptTokens: prompt.length, contextSize: this.info.contextSize } },
      );
    }
    if (choices > this.info.slots) throw new InvalidRequestError(`n is ${choices}; this model runs ${this.info.slots} slots, so at most ${this.info.slots} choices`, { param: "n" });
    const stray = prompt.find((token) => token < 0 || token >= this.info.vocabularySize);
    if (stray !== undefined) throw new InvalidRequestError(`The prompt holds token ${stray}; the vocabulary has ${this.info.vocabularySize}`, { param: "prompt" });
    if (this.#broken !== undefined) throw new EngineError(`The model's decode thread stopped: ${this.#broken}`);
    if (options.json !== undefined && options.grammar !== undefined) throw new InvalidRequestError("Give a JSON schema or a grammar, not both", { param: "grammar" });
    const adapters = options.adapters ?? [];
    for (const adapter of adapters) {
      if (!this.#adapters.has(adapter.key)) throw new EngineError("A LoRA adapter of this request is not loaded on its base model");
    }
    const grammar = options.json !== undefined ? await this.#grammarFor(options.json) : options.grammar !== undefined ? this.#gbnfGrammar(options.grammar) : undefined;
    const set = adapterSetKey(adapters);
    const slots = await this.#pool.acquireMany({ tokens: prompt, set }, choices, options.signal);
    for (const slot of slots) this.#kvSet[slot] = set;
    const id = ++this.#nextId;
    const pending: Pending = { slots, open: new Set(slots), events: [], wake: undefined, firstTokenAt: 0 };
    this.#pending.set(id, pending);
    const signal = options.signal;
    const onAbort = () => this.#post({ type: "cancel", id });
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#post({
      type: "generate",
      id,
      slots,
      prompt: Int32Array.from(prompt),
      maxTokens: options.maxTokens,
      sampling: this.#samplerSettings(options, grammar),
      stop: [...(options.stop ?? []), ...(grammar?.stop ?? [])],
      trimTrailingWhitespace: grammar?.trimTrailingWhitespace ?? false,
      logprobs: options.logprobs,
      promptLogprobs: options.promptLogprobs ?? false,
      specialText: options.specialText ?? false,
      postSamplingProbs: options.postSamplingProbs ?? false,
      progress: options.progress ?? false,
      adapters: adapters.map((adapter) => ({ key: adapter.key, scale: adapter.scale })),
    });
    let finished = 0;
    try {
      while (finished < choices) {
        const event = await this.#nextEvent(pending);
        switch (event.type) {
          case "text":
            yield { type: "text", text: event.text, tokens: event.tokens, ...(event.logprobs === undefined ? {} : { logprobs: event.logprobs }), ...(choices > 1 ? { choice: event.choice } : {}) };
            break;
          case "done": {
            finished++;
            const ended = performance.now();
            const done: GenerateDone = {
              type: "done",
              finishReason: event.finishReason,
              promptTokens: event.promptTokens,
              completionTokens: event.completionTokens,
              cachedTokens: event.cachedTokens,
              ...(event.stopString === undefined ? {} : { stopString: event.stopString }),
              ...(event.promptLogprobs === undefined ? {} : { promptLogprobs: event.promptLogprobs }),
              timeToFirstTokenMs: (pending.firstTokenAt || ended) - started,
              totalMs: ended - started,
              ...(choices > 1 ? { choice: event.choice } : {}),
            };
            yield done;
            break;
          }
          case "progress":
            yield { type: "progress", total: event.total, cache: event.cache, processed: event.processed, timeMs: event.timeMs };
            break;
          case "failed":
            throw new EngineError(`Generation failed: ${event.message}`);
          case "gone":
            throw new EngineError(`Generation failed: ${event.message}`);
          default:
            break;
        }
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      // A consumer that left early (a closed connection) cancels; the slots come back with `done`.
      if (pending.open.size > 0 && this.#pending.has(id)) this.#post({ type: "cancel", id });
    }
    if (signal?.aborted && finished === 0) throw new AbortedError();
  }

  async embed(inputs: readonly (string | readonly number[])[], signal?: AbortSignal): Promise<EmbedResult> {
    if (this.info.adapters !== undefined) {
      throw new InvalidRequestError(`${this.info.id} is an adapter fork; embeddings are computed without adapters, so ask its base`, { param: "model" });
    }
    const tokenized = inputs.map((input) => (typeof input === "string" ? this.tokenize(input) : [...input]));
    const limit = Math.min(this.info.contextSize, this.info.trainContextSize || this.info.contextSize);
    tokenized.forEach((tokens, index) => {
      if (tokens.length === 0) throw new InvalidRequestError(`input[${index}] is empty`, { param: "input" });
      const stray = tokens.find((token) => token < 0 || token >= this.info.vocabularySize);
      if (stray !== undefined) throw new InvalidRequestError(`input[${index}] holds token ${stray}; the vocabulary has ${this.info.vocabularySize}`, { param: "input" });
      if (tokens.length > limit) throw new ContextLengthError(`input[${index}] has ${tokens.length} tokens; at most ${limit} fit`, { param: "input" });
    });
    if (signal?.aborted) throw new AbortedError();
    if (this.#broken !== undefined) throw new EngineError(`The model's decode thread stopped: ${this.#broken}`);
    const id = ++this.#nextId;
    const pending: Pending = { slots: [], open: new Set(), events: [], wake: undefined, firstTokenAt: 0 };
    this.#pending.set(id, pending);
    this.#post({ type: "embed", id, inputs: tokenized.map((tokens) => Int32Array.from(tokens)) });
    try {
      const event = await this.#nextEvent(pending);
      if (event.type !== "embedded") throw new EngineError(`Computing embeddings failed: ${"message" in event ? event.message : event.type}`);
      return {
        vectors: event.vectors.map((vector) => Array.from(vector)),
        ...(event.tokenVectors === undefined ? {} : { tokenVectors: event.tokenVectors.map((vectors) => vectors.map((vector) => Array.from(vector))) }),
        promptTokens: tokenized.reduce((sum, tokens) => sum + tokens.length, 0),
      };
    } finally {
      this.#pending.delete(id);
    }
  }

  /**
   * Loads a LoRA adapter file on this model's decode thread under `key`, once (concurrent calls
   * share the load); generations then name it in `adapters`. Validate the file first: a
   * malformed adapter can abort the process inside llama.cpp.
   * @throws EngineError when llama.cpp refuses it
   */
  attachAdapter(key: string, path: string): Promise<void> {
    let loading = this.#adapters.get(key);
    if (loading === undefined) {
      loading = this.#loadAdapter(key, path);
      this.#adapters.set(key, loading);
      loading.catch(() => {
        if (this.#adapters.get(key) === loading) this.#adapters.delete(key);
      });
    }
    return loading;
  }

  async #loadAdapter(key: string, path: string): Promise<void> {
    if (this.#broken !== undefined) throw new EngineError(`The model's decode thread stopped: ${this.#broken}`);
    const id = ++this.#nextId;
    const pending: Pending = { slots: [], open: new Set(), events: [], wake: undefined, firstTokenAt: 0 };
    this.#pending.set(id, pending);
    this.#post({ type: "adapter-load", id, key, path });
    try {
      const event = await this.#nextEvent(pending);
      if (event.type !== "adapter-loaded") throw new EngineError(`Loading the LoRA adapter failed: ${"message" in event ? event.message : event.type}`);
    } finally {
      this.#pending.delete(id);
    }
  }

  /** Frees an adapter (at once, or when the generations using it end); a later generation naming it fails. */
  detachAdapter(key: string): void {
    if (!this.#adapters.delete(key)) return;
    if (this.#broken === undefined) this.#post({ type: "adapter-free", key });
  }

  /** The keys of the adapters attached now. */
  get adapterKeys(): string[] {
    return [...this.#adapters.keys()];
  }

  /** Called by the engine when the worker exits or fails: every waiting request ends with an error. */
  fail(message: string): void {
    this.#broken ??= message;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      for (const slot of pending.open) this.#pool.release(slot);
      pending.open.clear();
      pending.events.push({ type: "gone", message });
      pending.wake?.();
    }
  }

  #post(message: ToWorker): void {
    this.#outbox.push(message);
    // Requests that arrive together (in one turn of the event loop) reach the worker together,
    // so their prompts share one batch instead of the first running alone. Anything else goes at
    // once, after what waits (a cancel must not overtake its generate).
    if (message.type !== "generate") this.#send(this.#outbox.splice(0));
    else if (this.#outbox.length === 1) setImmediate(() => this.#send(this.#outbox.splice(0)));
  }

  #outbox: ToWorker[] = [];

  #send(messages: ToWorker[]): void {
    if (messages.length === 0) return;
    for (const message of messages) this.#worker.postMessage(message);
    Atomics.add(this.#signal, 0, 1);
    Atomics.notify(this.#signal, 0);
  }

  #receive(message: FromWorker): void {
    if (message.type === "purged") {
      this.#kv[message.slot] = new Int32Array(0);
      return;
    }
    if (!("id" in message) || message.id === null) return;
    const pending = this.#pending.get(message.id);
    if (message.type === "done") {
      this.#kv[message.slot] = message.kv;
      this.#finished[message.finishReason]++;
      if (pending?.open.delete(message.slot)) this.#pool.release(message.slot);
      if (pending !== undefined && pending.open.size === 0 && pending.slots.length > 0) this.#pending.delete(message.id);
    } else if (message.type === "failed" && pending !== undefined) {
      // The worker freed the slots of a failed generation without a `done` for each.
      for (const slot of pending.open) {
        this.#kv[slot] = new Int32Array(0);
        this.#pool.release(slot);
      }
      pending.open.clear();
      this.#pending.delete(message.id);
    } else if (message.type === "first" && pending !== undefined) {
      pending.firstTokenAt = performance.now();
      return;
    }
    if (pending === undefined) return;
    pending.events.push(message);
    pending.wake?.();
  }

  async #nextEvent(pending: Pending): Promise<FromWorker | { type: "gone"; message: string }> {
    while (pending.events.length === 0) await new Promise<void>((resolve) => (pending.wake = resolve));
    pending.wake = undefined;
    return pending.events.shift()!;
  }

  #samplerSettings(options: GenerateOptions, grammar: JsonGrammar | undefined): SamplerSettings {
    const biases = new Map(options.logitBias ?? []);
    // llama.cpp's ignore_eos: end-of-generation tokens can never be sampled.
    if (options.ignoreEos) for (const token of this.#vocabulary.eogTokens()) biases.set(token, -Infinity);
    return {
      temperature: options.temperature ?? 1,
      topK: options.topK ?? 0,
      topP: options.topP ?? 1,
      minP: options.minP ?? 0,
      seed: options.seed ?? this.#seed ?? randomInt(0, 2 ** 32 - 1),
      repeatPenalty: options.repeatPenalty ?? 1,
      frequencyPenalty: options.frequencyPenalty ?? 0,
      presencePenalty: options.presencePenalty ?? 0,
      penaltyWindow: Math.max(64, options.maxTokens),
      logitBias: [...biases],
      ...(grammar === undefined ? {} : { grammar: { gbnf: grammar.gbnf, root: grammar.root } }),
    };
  }

  /** A GBNF grammar as given, parsed once on the vocabulary so a bad one is a 400 before a slot is taken. */
  #gbnfGrammar(gbnf: string): JsonGrammar {
    const { fn } = this.#vocabulary.lib;
    const sampler = fn.llama_sampler_init_grammar!(this.#vocabulary.vocab, gbnf, "root");
    if (sampler === null) throw new InvalidRequestError("The grammar is not one llama.cpp can parse (GBNF with a 'root' rule)", { param: "grammar" });
    fn.llama_sampler_free!(sampler);
    return { gbnf, root: "root", stop: [], trimTrailingWhitespace: false };
  }

  async #grammarFor(json: object | "json"): Promise<JsonGrammar> {
    const key = json === "json" ? "json" : JSON.stringify(json);
    const known = this.#grammars.get(key);
    if (known) return known;
    let grammar: JsonGrammar;
    try {
      grammar = await createJsonGrammar(json);
    } catch (error) {
      throw new InvalidRequestError(`The JSON schema cannot be turned into a grammar: ${error instanceof Error ? error.message : String(error)}`, { param: "response_format", cause: error });
    }
    // Parsed once here, on the vocabulary, so a grammar llama.cpp refuses is a 400 before a slot is taken.
    const { fn } = this.#vocabulary.lib;
    const sampler = fn.llama_sampler_init_grammar!(this.#vocabulary.vocab, grammar.gbnf, grammar.root);
    if (sampler === null) throw new InvalidRequestError("The JSON schema's grammar is not one llama.cpp can parse", { param: "response_format" });
    fn.llama_sampler_free!(sampler);
    if (this.#grammars.size >= GRAMMAR_CACHE_LIMIT) this.#grammars.delete(this.#grammars.keys().next().value!);
    this.#grammars.set(key, grammar);
    return grammar;
  }

  /** Stops the worker and frees the vocabulary; waiting requests fail. */
  async dispose(): Promise<void> {
    this.fail("the model was unloaded");
    const exited = new Promise<void>((resolve) => this.#worker.once("exit", () => resolve()));
    this.#post({ type: "close" });
    const timer = setTimeout(() => void this.#worker.terminate(), 10_000);
    await exited;
    clearTimeout(timer);
    this.#vocabulary.free();
  }
}
