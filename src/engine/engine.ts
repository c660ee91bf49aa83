import type { Digest } from "../core/digest.js";
import type { GenerationDefaults } from "../core/model-config.js";
import type { ChatTemplateCapabilities } from "./chat-template-capabilities.js";

/** How one conversation is rendered. */
export interface ChatTemplateRenderOptions {
  /** The functions offered to the model; the template's `tools` is left undefined without any. */
  readonly tools?: readonly ChatTool[];
  /**
   * End with the opening of the assistant's turn.
   * @default true
   */
  readonly addGenerationPrompt?: boolean;
  /**
   * `enable_thinking`, read by reasoning models' templates (Qwen 3, DeepSeek, …).
   * @default true (llama.cpp's default)
   */
  readonly enableThinking?: boolean;
  /**
   * The time the template sees: `strftime_now()`, `date_string` ("26 Jul 2024", Llama 3.x) and
   * `datetime` ("Jul 26 2024", FireFunction), at local time as in llama.cpp.
   * @default the current time
   */
  readonly now?: Date;
  /**
   * Extra template variables (llama-server's `chat_template_kwargs`), set last so they win.
   * `preserve_reasoning` (boolean) and `reasoning_effort` (string) are also set under every name
   * templates use for them, as llama.cpp does.
   * @example { reasoning_effort: "high" }
   */
  readonly templateArguments?: Readonly<Record<string, unknown>>;
  /**
   * A final assistant message continued (llama-server's prefill, `continue_final_message`): the
   * conversation before it is rendered with the generation prompt and `text` follows. With
   * `reopen`, a generation prompt that opens (or opens and closes) a block from `reopen` on is
   * cut there first, so `text` can start that block again with the message's own reasoning
   * (`common_chat_templates_apply_jinja`'s continuation).
   */
  readonly continuation?: { readonly text: string; readonly reopen?: string };
}

/**
 * The boundary between Grove and whatever runs a model. The server, bench and forge talk
 * to these interfaces only; `NativeEngine` (Grove's decode loop on libllama) is the local
 * implementation, and tests may hand in a fake where the model is not the point.
 */
export interface Engine {
  /** The models loaded now. */
  readonly models: readonly LoadedModel[];
  /** Finds a loaded model by id; throws ModelNotFoundError. */
  getModel(id: string): LoadedModel;
  /** Loads a model file under `source.id` (once; concurrent calls share the load). */
  load(source: ModelSource): Promise<LoadedModel>;
  /** Frees a loaded model. */
  unload(id: string): Promise<void>;
  /** Frees every model and context. */
  close(): Promise<void>;
}

/** A model file to load, with the id it is loaded under. */
export interface ModelSource {
  readonly id: string;
  /** The model file; for an adapter fork, its base's. */
  readonly path: string;
  /** The digest served (for an adapter fork, the adapter's, not the base's). */
  readonly digest: Digest;
  /**
   * An adapter fork's LoRA adapters, applied to its generations on top of `base`. Requires `base`.
   */
  readonly adapters?: readonly ModelAdapter[];
  /**
   * For an adapter fork: the base model's own source. The fork runs on the base's load — loaded
   * once (under `base.id`) and shared by the bare base and every adapter fork of it — with its
   * adapters loaded on that model once each; its memory is the adapters' size, not the base's.
   */
  readonly base?: ModelSource;
  /** Context tokens per slot for this load (`--model-settings`). @default the engine's `contextSize` */
  readonly contextSize?: number;
  /** Parallel slots for this load (`--model-settings`). @default the engine's `slots` */
  readonly slots?: number;
}

/** A LoRA adapter GGUF and the scale its B·A is applied with. */
export interface ModelAdapter {
  readonly path: string;
  /** @default 1 */
  readonly scale?: number;
}

/** Facts about a loaded model, as `/v1/models` and `/health` report them. */
export interface ModelInfo {
  /** The served name. */
  readonly id: string;
  readonly digest: Digest;
  /** The model file (for an adapter fork, the base's). */
  readonly path: string;
  /** LoRA adapters applied on top of `path`, when this is an adapter fork. */
  readonly adapters?: readonly ModelAdapter[];
  /**
   * For an adapter fork: the keys its adapters are attached to its base under, in `adapters`'
   * order — what a generation on the base names in {@link GenerateOptions.adapters} to mix them
   * at other scales (llama-server's per-request `lora`).
   */
  readonly adapterKeys?: readonly string[];
  /** For an adapter fork: the id of the loaded base it runs on (slots, KV cache and weights are the base's). */
  readonly base?: string;
  /** Context tokens each slot holds (at most, when the slots share one cache: see `unifiedKv`). */
  readonly contextSize: number;
  /**
   * The slots share one KV cache of `contextSize` tokens (llama-server's `--kv-unified`): each may
   * use all of it while the others leave room. Absent: each slot has `contextSize` of its own.
   */
  readonly unifiedKv?: boolean;
  /** Context length the model was built or trained for. */
  readonly trainContextSize: number;
  /** Parallel sequences decoded in the same batches. */
  readonly slots: number;
  /** CPU threads decoding this model. */
  readonly threads: number;
  readonly vocabularySize: number;
  readonly embeddingSize: number;
  /**
   * How embeddings are pooled, when the server was told (`--pooling`); absent: the model's own
   * pooling, or its last token's vector when it has none. `none` gives one vector per token.
   */
  readonly pooling?: EmbeddingPooling;
  /** Seconds since the epoch at load time. */
  readonly loadedAt: number;
  /**
   * For a config fork (`grove create -f Modelfile`): the sampling defaults it gives requests that
   * set none of their own; each route puts them before its API's own defaults.
   */
  readonly defaults?: GenerationDefaults;
}

/** llama.cpp's pooling types an embeddings context can use (`rank`, a reranker's score, aside). */
export type EmbeddingPooling = "none" | "mean" | "cls" | "last";

/** One function call an assistant turn made (OpenAI `tool_calls[]`). */
export interface ChatToolCall {
  /** The id a later `tool` message answers with `toolCallId`. */
  readonly id?: string;
  readonly name: string;
  /**
   * The arguments as the model wrote them: JSON text, as on the OpenAI wire. A template that
   * reads them as an object gets them parsed (llama.cpp does the same).
   * @example '{"city": "Paris"}'
   */
  readonly arguments: string;
}

/** One chat message, already parsed out of the wire format. */
export interface ChatMessage {
  /** `developer` renders as `system`, except in templates with a developer role of their own (gpt-oss). */
  readonly role: "system" | "developer" | "user" | "assistant" | "tool";
  /** `""` for an assistant turn that only calls tools (llama.cpp passes `""`, never null, to templates). */
  readonly content: string;
  /** The thinking of a reasoning model's earlier turn (OpenAI-compatible `reasoning_content`). */
  readonly reasoningContent?: string;
  /** The calls an assistant turn made. */
  readonly toolCalls?: readonly ChatToolCall[];
  /** On a `tool` message: the call it answers. */
  readonly toolCallId?: string;
  /** On a `tool` message: the function that produced it. */
  readonly name?: string;
}

/** A function the model may call (OpenAI `tools[]` of type `function`). */
export interface ChatTool {
  readonly name: string;
  /** @default "" */
  readonly description?: string;
  /** A JSON Schema of the arguments. @default {} */
  readonly parameters?: Readonly<Record<string, unknown>>;
}

/** The sampling and stopping settings of one generation. Bounds are checked by the caller. */
export interface GenerateOptions {
  /** The prompt, already tokenized. */
  readonly promptTokens: readonly number[];
  /** Most tokens to generate; 0 evaluates the prompt only (for `echo`). */
  readonly maxTokens: number;
  /** @default 1 */
  readonly temperature?: number;
  readonly topP?: number;
  readonly topK?: number;
  readonly minP?: number;
  /** Makes sampling with temperature > 0 reproducible. */
  readonly seed?: number;
  /** Strings that end the generation; they are not returned. */
  readonly stop?: readonly string[];
  /** OpenAI semantics: subtracted once from the logit of any token already generated. */
  readonly presencePenalty?: number;
  /** OpenAI semantics: subtracted per occurrence from the logit of generated tokens. */
  readonly frequencyPenalty?: number;
  /** llama.cpp's multiplicative repeat penalty over generated tokens; 1 disables it. */
  readonly repeatPenalty?: number;
  /** Added to the logits of the given token ids (OpenAI `logit_bias`, -100…100). */
  readonly logitBias?: ReadonlyMap<number, number>;
  /** Keep generating past end-of-generation tokens (llama.cpp's `ignore_eos`, for benchmarks). */
  readonly ignoreEos?: boolean;
  /** Constrains the output: a JSON schema object, or `"json"` for any JSON object. */
  readonly json?: object | "json";
  /**
   * Spell special tokens in the generated text (`<|channel|>`, `[TOOL_CALLS]`): what a tool-call
   * parser reads. End-of-generation tokens still end the generation unseen. @default false
   */
  readonly specialText?: boolean;
  /** Constrains the output with a GBNF grammar (llama.cpp's format, rule `root`); not with `json`. */
  readonly grammar?: string;
  /** Return log-probabilities for generated tokens with this many alternatives (0…20). */
  readonly logprobs?: number;
  /** Also score the prompt tokens (completions `echo` with `logprobs`). */
  readonly promptLogprobs?: boolean;
  /**
   * With `logprobs`: the log-probabilities of the distribution the token was drawn from, after the
   * whole sampler chain (top-k, top-p, min-p, temperature, bias, grammar), instead of the raw
   * logits' (llama-server's `post_sampling_probs`). Alternatives of probability 0 are left out, so
   * fewer than `logprobs` may come. Costs a vocabulary-sized copy per token. @default false
   */
  readonly postSamplingProbs?: boolean;
  /** Emit `progress` events while the prompt is evaluated (llama-server's `return_progress`). @default false */
  readonly progress?: boolean;
  /**
   * LoRA adapters attached to this model (by their key) to run this generation with, each at its
   * scale; generations with equal sets are batched together, others take turns. An adapter
   * fork's model sets its own. @default none: the bare model
   */
  readonly adapters?: readonly { readonly key: string; readonly scale: number }[];
  /** Cancels the generation; the slot is freed as soon as the running step ends. */
  readonly signal?: AbortSignal;
  /**
   * Choices to generate from the one prompt (OpenAI `n`), each in its own slot: the prompt is
   * evaluated once and its KV copied. Events then carry `choice`. @default 1
   */
  readonly n?: number;
}

/** The log-probability of one token and its most likely alternatives. */
export interface TokenLogprob {
  readonly token: number;
  readonly text: string;
  /** Natural log of the probability; `null` for the first prompt token, which has no context. */
  readonly logprob: number | null;
  readonly top: readonly { token: number; text: string; logprob: number }[];
}

/** A piece of output, as soon as it is safe to show (stop strings and UTF-8 held back). */
export interface GenerateChunk {
  readonly type: "text";
  readonly text: string;
  /** The tokens sampled since the last chunk (their text may be held back into a later chunk). */
  readonly tokens?: readonly number[];
  /** Present when logprobs were asked for: one entry per token released in this chunk. */
  readonly logprobs?: readonly TokenLogprob[];
  /** Which choice the text belongs to, when `n` > 1. */
  readonly choice?: number;
}

export type FinishReason = "stop" | "length" | "aborted";

/** The last event of every generation. */
export interface GenerateDone {
  readonly type: "done";
  readonly finishReason: FinishReason;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Prompt tokens reused from the slot's cache instead of being evaluated. */
  readonly cachedTokens: number;
  /** The stop string that ended the generation, when one did (it is not in the text). */
  readonly stopString?: string;
  /** Prompt scores, when `promptLogprobs` was set. */
  readonly promptLogprobs?: readonly TokenLogprob[];
  /** Milliseconds from start to the first generated token (prompt processing included). */
  readonly timeToFirstTokenMs: number;
  readonly totalMs: number;
  /** Which choice ended, when `n` > 1 (each choice ends with its own `done`). */
  readonly choice?: number;
}

/**
 * How far the prompt's evaluation is (only with `progress`): one when it starts (what the slot's
 * cache already held), then one after each decode step that evaluated part of it; the last has
 * `processed` equal to `total`. Fields as llama-server's `prompt_progress`.
 */
export interface GenerateProgress {
  readonly type: "progress";
  /** Prompt tokens in all. */
  readonly total: number;
  /** Prompt tokens taken from the slot's cache instead of being evaluated. */
  readonly cache: number;
  /** Prompt tokens in the cache so far, the cached ones included. */
  readonly processed: number;
  /** Milliseconds since the decode thread took the request. */
  readonly timeMs: number;
  /** Always undefined: choices share one prompt (present so every event can be asked for it). */
  readonly choice?: undefined;
}

export type GenerateEvent = GenerateChunk | GenerateDone | GenerateProgress;

/** What one embeddings call returns. Vectors are as the model computes them, not normalised. */
export interface EmbedResult {
  /** One vector per input: pooled, or the input's last token's under `pooling: "none"` or a model without pooling. */
  readonly vectors: number[][];
  /** Under `pooling: "none"` only: per input, one vector per token, in order. */
  readonly tokenVectors?: number[][][];
  /** Tokens evaluated, over all inputs. */
  readonly promptTokens: number;
}

/** Load and queue figures, for `/health` and metrics. */
export interface ModelStats {
  readonly slotsBusy: number;
  readonly slotsTotal: number;
  readonly queued: number;
  /** Generations finished since load, by finish reason. */
  readonly finished: Readonly<Record<FinishReason, number>>;
}

/** How {@link LoadedModel.tokenize} treats special tokens. */
export interface TokenizeOptions {
  /** @default false */
  readonly special?: boolean;
  /** @default false */
  readonly addSpecial?: boolean;
}

/** What a model's vocabulary says of itself. */
export interface VocabularyFacts {
  /** BOS and EOS as text (`<s>`), "" when the vocabulary has none. */
  readonly bosText: string;
  readonly eosText: string;
  /** The fill-in-the-middle tokens, when the vocabulary has all three. */
  readonly fim?: { readonly prefix: number; readonly suffix: number; readonly middle: number };
  /** The chat template in use. */
  readonly chatTemplate: string;
  /** What the template in use reads (probed at load); where it lacks a role, llama.cpp's adjustment applies. */
  readonly chatTemplateCapabilities: ChatTemplateCapabilities;
  /** The bytes of one token's text (special tokens rendered). */
  piece(token: number): Uint8Array;
}

/** A model loaded into an engine, ready to generate. */
export interface LoadedModel {
  readonly info: ModelInfo;
  /**
   * Tokens of `text`. `special` parses special-token text (`<|im_start|>`) into those tokens;
   * `addSpecial` adds BOS (and EOS) where the vocabulary asks, as llama.cpp's servers do for a prompt.
   */
  tokenize(text: string, options?: TokenizeOptions): number[];
  /** The text of tokens; special tokens (`<s>`, `<|im_end|>`) are rendered when `special`. */
  detokenize(tokens: readonly number[], options?: { special?: boolean }): string;
  /** Facts of the vocabulary the HTTP layer shows (llama-server's `/props`, `/tokenize`, `/infill`). */
  vocabulary(): VocabularyFacts;
  /** The chat template's text for `messages`, before tokenizing (llama-server's `/apply-template`). */
  renderChat(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): string;
  /**
   * Formats chat messages with the model's template and tokenizes them, ready for the assistant
   * turn unless `options.addGenerationPrompt` is false.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateRenderOptions): number[];
  /** Throws a GroveError subclass for a schema the engine cannot turn into a grammar. */
  prepareJsonGrammar(json: object | "json"): Promise<void>;
  generate(options: GenerateOptions): AsyncGenerator<GenerateEvent, void, void>;
  /** Embeds texts (tokenized as they are, without special tokens) or token lists, one vector each. */
  embed(inputs: readonly (string | readonly number[])[], signal?: AbortSignal): Promise<EmbedResult>;
  stats(): ModelStats;
}
