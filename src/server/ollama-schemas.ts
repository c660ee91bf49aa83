import { z } from "zod";
import { InvalidRequestError } from "../core/errors.js";
import { parseKeepAlive } from "../core/keep-alive.js";
import type { GenerateOptions } from "../engine/engine.js";
import { checkJsonSchema, LIMITS, toolSchema } from "./openai-schemas.js";

/**
 * Request bodies of the Ollama-compatible routes (ollama/ollama `docs/api.md`), bounded like the
 * OpenAI ones. Fields Ollama accepts that change nothing here (hardware and runtime options) are
 * accepted and type-checked; features Grove cannot honour (images, tools,
 * thinking, custom templates, mirostat) are a 400 that says so, never silently dropped.
 */

const nullable = <T extends z.ZodType>(schema: T) => schema.nullish().transform((value) => value ?? undefined);

/** Whether a value must be 1 (or unset) for Grove to honour it. */
const onlyDefault = (value: number, name: string) =>
  nullable(z.number()).refine((given) => given === undefined || given === value, {
    message: `${name} sampling is not supported; leave it at ${value}`,
  });

/**
 * Ollama's `options`. Sampling fields are bounded as on `/v1`; `num_predict` -1 and -2 mean "until
 * the context is full"; `num_ctx` caps the context a request may use (it cannot grow past the
 * context the model was loaded with). Runtime options (`num_gpu`, `num_thread`, `use_mmap`…) are
 * fixed at load in Grove and ignored here; unknown keys are ignored, as Ollama does.
 */
export const ollamaOptionsSchema = z.object({
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().min(0).max(1)),
  top_k: nullable(z.number().int().min(0).max(1_000_000)),
  min_p: nullable(z.number().min(0).max(1)),
  // -1 is llama.cpp's "random seed".
  seed: nullable(z.number().int().min(-1).max(2 ** 32 - 1)),
  num_predict: nullable(z.number().int().min(-2).max(LIMITS.maxTokens)),
  num_ctx: nullable(z.number().int().min(1).max(LIMITS.maxTokens)),
  stop: nullable(
    z.union([z.string().min(1).max(LIMITS.stopChars), z.array(z.string().min(1).max(LIMITS.stopChars)).max(LIMITS.stopStrings)]),
  ).transform((value) => (value === undefined ? [] : typeof value === "string" ? [value] : value)),
  repeat_penalty: nullable(z.number().min(0).max(10)),
  presence_penalty: nullable(z.number().min(-2).max(2)),
  frequency_penalty: nullable(z.number().min(-2).max(2)),
  mirostat: onlyDefault(0, "mirostat"),
  typical_p: onlyDefault(1, "typical_p"),
  tfs_z: onlyDefault(1, "tfs_z"),
  // Accepted and ignored: fixed at load in Grove, or without effect on its sampler.
  num_keep: nullable(z.number().int()),
  repeat_last_n: nullable(z.number().int()),
  mirostat_tau: nullable(z.number()),
  mirostat_eta: nullable(z.number()),
  penalize_newline: nullable(z.boolean()),
  numa: nullable(z.boolean()),
  num_batch: nullable(z.number().int()),
  num_gpu: nullable(z.number().int()),
  main_gpu: nullable(z.number().int()),
  low_vram: nullable(z.boolean()),
  f16_kv: nullable(z.boolean()),
  logits_all: nullable(z.boolean()),
  vocab_only: nullable(z.boolean()),
  use_mmap: nullable(z.boolean()),
  use_mlock: nullable(z.boolean()),
  embedding_only: nullable(z.boolean()),
  num_thread: nullable(z.number().int()),
});

export type OllamaOptions = z.output<typeof ollamaOptionsSchema>;

/**
 * Ollama's keep_alive, as milliseconds: `"5m"`, `"1h30m"`, `300` or `"300"` (seconds), `0` (unload
 * when the request ends), negative (keep loaded: Infinity). See `core/keep-alive.ts`.
 */
const keepAlive = nullable(z.union([z.number(), z.string().max(64)])).transform((value, context) => {
  if (value === undefined) return undefined;
  const milliseconds = parseKeepAlive(value);
  if (milliseconds === undefined) {
    context.addIssue({ code: "custom", message: 'keep_alive must be a duration such as "5m" or "1h30m", a number of seconds, 0 (unload now) or negative (keep loaded)' });
    return z.NEVER;
  }
  return milliseconds;
});

/** `"json"`, a JSON schema object, or empty for free text. */
const format = nullable(z.union([z.literal("json"), z.literal(""), z.record(z.string(), z.unknown())]));

const unsupportedList = (what: string) =>
  nullable(z.array(z.unknown())).refine((value) => value === undefined || value.length === 0, { message: `${what} are not supported by Grove's models` });

/** `think`: only `false` (or absent); Grove's models do not think. */
const think = nullable(z.union([z.boolean(), z.enum(["high", "medium", "low"])])).refine((value) => value === undefined || value === false, {
  message: "this model does not support thinking",
});

const common = {
  model: z.string().min(1).max(LIMITS.modelName),
  stream: nullable(z.boolean()),
  format,
  options: nullable(ollamaOptionsSchema),
  keep_alive: keepAlive,
  think,
  logprobs: nullable(z.boolean()),
  top_logprobs: nullable(z.number().int().min(0).max(LIMITS.topLogprobs)),
};

/** A call in Ollama's shape: arguments as an object. */
const ollamaToolCall = z.object({
  function: z.object({ name: z.string().min(1).max(128), arguments: z.record(z.string(), z.unknown()).nullish().transform((value) => value ?? {}) }),
});

const ollamaMessage = z.object({
  role: z.enum(["system", "user", "assistant", "tool"], { message: "role must be system, user, assistant or tool" }),
  content: z.string().max(LIMITS.messageChars).nullish().transform((value) => value ?? ""),
  images: unsupportedList("images"),
  tool_calls: nullable(z.array(ollamaToolCall).max(128)),
  tool_name: nullable(z.string().max(128)),
  thinking: nullable(z.string().max(LIMITS.messageChars)),
});

export const ollamaChatSchema = z.object({
  ...common,
  messages: nullable(z.array(ollamaMessage).max(LIMITS.messages)).transform((value) => value ?? []),
  tools: nullable(z.array(toolSchema).max(128)),
});

export const ollamaGenerateSchema = z.object({
  ...common,
  prompt: nullable(z.string().max(LIMITS.messageChars)).transform((value) => value ?? ""),
  system: nullable(z.string().max(LIMITS.messageChars)),
  raw: nullable(z.boolean()),
  context: nullable(z.array(z.number().int().min(0).max(2 ** 31 - 1)).max(LIMITS.maxTokens)),
  suffix: nullable(z.string().max(0, "suffix (fill-in-the-middle) is not supported by this model")),
  template: nullable(z.string().max(0, "custom templates are not supported: Grove formats prompts with the model's own chat template")),
  images: unsupportedList("images"),
});

export const ollamaEmbedSchema = z.object({
  model: z.string().min(1).max(LIMITS.modelName),
  input: z.union([z.string().max(LIMITS.messageChars), z.array(z.string().max(LIMITS.messageChars)).min(1).max(LIMITS.embeddingInputs)]),
  truncate: nullable(z.boolean()),
  dimensions: nullable(z.number().int()).refine((value) => value === undefined, {
    message: "dimensions is not supported: the model's embedding size is fixed",
  }),
  options: nullable(ollamaOptionsSchema),
  keep_alive: keepAlive,
});

/** The legacy `/api/embeddings`: one prompt, one unnormalised vector. */
export const ollamaEmbeddingsSchema = z.object({
  model: z.string().min(1).max(LIMITS.modelName),
  prompt: z.string().max(LIMITS.messageChars),
  options: nullable(ollamaOptionsSchema),
  keep_alive: keepAlive,
});

export const ollamaShowSchema = z.object({
  // `name` is the field's older spelling.
  model: nullable(z.string().min(1).max(LIMITS.modelName)),
  name: nullable(z.string().min(1).max(LIMITS.modelName)),
  verbose: nullable(z.boolean()),
});

export const ollamaPullSchema = z.object({
  model: nullable(z.string().min(1).max(1024)),
  name: nullable(z.string().min(1).max(1024)),
  insecure: nullable(z.boolean()),
  stream: nullable(z.boolean()),
});

/** `/api/copy`: a new name for the model `source` names. */
export const ollamaCopySchema = z.object({
  source: z.string().min(1, "source and destination are required").max(LIMITS.modelName),
  destination: z.string().min(1, "source and destination are required").max(LIMITS.modelName),
});

/** `/api/delete`: one name (`name` is the field's older spelling). */
export const ollamaDeleteSchema = z.object({
  model: nullable(z.string().min(1).max(LIMITS.modelName)),
  name: nullable(z.string().min(1).max(LIMITS.modelName)),
});

export type OllamaChatRequest = z.output<typeof ollamaChatSchema>;
export type OllamaGenerateRequest = z.output<typeof ollamaGenerateSchema>;

/** Ollama's `options` as engine sampling settings (bounds already checked). */
export function ollamaSampling(options: OllamaOptions | undefined): Omit<GenerateOptions, "promptTokens" | "maxTokens"> {
  if (!options) return {};
  return {
    temperature: options.temperature,
    topP: options.top_p,
    topK: options.top_k,
    minP: options.min_p,
    seed: options.seed === -1 ? undefined : options.seed,
    stop: options.stop,
    presencePenalty: options.presence_penalty,
    frequencyPenalty: options.frequency_penalty,
    repeatPenalty: options.repeat_penalty,
  };
}

/** `format` as an engine JSON constraint: `"json"`, a checked schema, or none. */
export function ollamaJsonConstraint(value: z.output<typeof format>): object | "json" | undefined {
  if (value === undefined || value === "") return undefined;
  if (value === "json") return "json";
  try {
    checkJsonSchema(value);
  } catch (error) {
    throw new InvalidRequestError(error instanceof Error ? error.message : String(error), { param: "format", cause: error });
  }
  return value;
}
