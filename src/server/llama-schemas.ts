import { z } from "zod";
import { chatMessageSchema, continueFinalMessage, embdNormalizeSchema, embeddingInputSchema, LIMITS, llamaServerSwitches, toolSchema } from "./openai-schemas.js";

/**
 * Request bodies of llama-server's own endpoints (`/completion`, `/infill`, `/tokenize`,
 * `/detokenize`, `/apply-template`), bounded like the OpenAI ones. Field names and defaults are
 * llama-server's (tools/server/README.md); unknown fields are ignored, as there.
 */

const nullable = <T extends z.ZodType>(schema: T) => schema.nullish().transform((value) => value ?? undefined);

const token = z.number().int().min(0).max(2 ** 31 - 1);
const promptText = z.string().max(LIMITS.messageChars);
/**
 * llama-server's JSON prompt object, its multimodal form. `multimodal_data` is taken in only to be
 * refused by name (prompt-input.ts): the models read text only.
 */
const jsonPrompt = z.object({ prompt_string: promptText, multimodal_data: z.unknown().optional() });

/** One prompt: text, tokens, text and tokens mixed, or `{prompt_string}` (text only here). */
const onePrompt = z.union([promptText, z.array(z.union([token, promptText])).min(1).max(65_536), jsonPrompt]);

const model = nullable(z.string().min(1).max(LIMITS.modelName));

/** `logit_bias` as llama-server takes it: `[[token, bias | false], …]` or `{"token": bias}`. */
const logitBias = nullable(
  z.union([
    z.array(z.tuple([z.union([token, z.string().max(256)]), z.union([z.number().min(-100).max(100), z.literal(false)])])).max(LIMITS.logitBias),
    // Keys are token ids, or text whose tokens all get the bias (llama-server's rule).
    z.record(z.string().min(1).max(256), z.union([z.number().min(-100).max(100), z.literal(false)])).refine((value) => Object.keys(value).length <= LIMITS.logitBias, `at most ${LIMITS.logitBias} entries`),
  ]),
);

const generation = {
  model,
  n_predict: nullable(z.number().int().min(-1).max(LIMITS.maxTokens)),
  max_tokens: nullable(z.number().int().min(-1).max(LIMITS.maxTokens)),
  temperature: nullable(z.number().min(0).max(100)),
  top_k: nullable(z.number().int().min(0).max(1_000_000)),
  top_p: nullable(z.number().min(0).max(1)),
  min_p: nullable(z.number().min(0).max(1)),
  /** -1 (llama-server's default) is a random seed. */
  seed: nullable(z.number().int().min(-1).max(2 ** 32 - 1)),
  stop: nullable(z.array(z.string().min(1).max(LIMITS.stopChars)).max(LIMITS.stopStrings)),
  stream: nullable(z.boolean()),
  n_probs: nullable(z.number().int().min(0).max(LIMITS.nProbs)),
  return_tokens: nullable(z.boolean()),
  response_fields: nullable(z.array(z.string().max(256)).max(64)),
  ignore_eos: nullable(z.boolean()),
  logit_bias: logitBias,
  repeat_penalty: nullable(z.number().min(0).max(10)),
  presence_penalty: nullable(z.number().min(-2).max(2)),
  frequency_penalty: nullable(z.number().min(-2).max(2)),
  grammar: nullable(z.string().max(LIMITS.schemaChars)),
  json_schema: nullable(z.record(z.string(), z.unknown())),
  cache_prompt: nullable(z.boolean()),
  ...llamaServerSwitches,
};

export const nativeCompletionSchema = z.object({
  ...generation,
  prompt: z.union([onePrompt, z.array(z.union([promptText, z.array(z.union([token, promptText])).min(1), jsonPrompt])).min(1).max(LIMITS.promptBatch)]),
});

export const infillSchema = z.object({
  ...generation,
  input_prefix: z.string().max(LIMITS.messageChars),
  input_suffix: z.string().max(LIMITS.messageChars),
  prompt: nullable(promptText),
  input_extra: nullable(z.array(z.object({ filename: z.string().max(1024).nullish(), text: z.string().max(LIMITS.messageChars) })).max(64)),
});

/** llama-server's `/embeddings`: `input` (or `content`, its older name), the forms `/v1/embeddings` takes. */
export const nativeEmbeddingSchema = z
  .object({
    model,
    input: embeddingInputSchema.optional(),
    content: embeddingInputSchema.optional(),
    embd_normalize: embdNormalizeSchema,
  })
  .refine((body) => body.input !== undefined || body.content !== undefined, { message: '"input" or "content" must be provided', path: ["input"] });

export type NativeEmbeddingRequest = z.output<typeof nativeEmbeddingSchema>;

export const tokenizeSchema = z.object({
  model,
  content: z.union([promptText, z.array(z.union([token, promptText])).max(65_536)]),
  add_special: nullable(z.boolean()),
  parse_special: nullable(z.boolean()),
  with_pieces: nullable(z.boolean()),
});

export const detokenizeSchema = z.object({
  model,
  tokens: z.array(token).max(1_048_576),
});

export const applyTemplateSchema = z.object({
  model,
  messages: z.array(chatMessageSchema).min(1, "messages must hold at least one message").max(LIMITS.messages),
  tools: nullable(z.array(toolSchema).max(128)),
  chat_template_kwargs: nullable(z.record(z.string(), z.unknown())),
  add_generation_prompt: nullable(z.boolean()),
  continue_final_message: continueFinalMessage,
});

export type NativeCompletionRequest = z.output<typeof nativeCompletionSchema>;
export type InfillRequest = z.output<typeof infillSchema>;
