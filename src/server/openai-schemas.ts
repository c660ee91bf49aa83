import { z } from "zod";
import { InvalidRequestError } from "../core/errors.js";

/**
 * Request bodies of the OpenAI-compatible routes, with a bound on every parameter. Parsing
 * turns the wire format into plain values at the edge (llama.cpp server's rule); a value
 * out of bounds is a 400 that names the parameter. Unknown fields are ignored, as OpenAI
 * clients send many optional ones.
 */

export const LIMITS = {
  modelName: 256,
  messages: 1024,
  messageChars: 1_000_000,
  stopStrings: 16,
  stopChars: 256,
  logitBias: 1024,
  topLogprobs: 20,
  /** llama-server's `n_probs` on `/completion`: up to a whole vocabulary of this size (a KL divergence needs every token). */
  nProbs: 65_536,
  promptBatch: 64,
  embeddingInputs: 256,
  schemaDepth: 16,
  schemaChars: 65_536,
  maxTokens: 1_048_576,
} as const;

const nullable = <T extends z.ZodType>(schema: T) => schema.nullish().transform((value) => value ?? undefined);

const stop = nullable(
  z.union([
    z.string().min(1).max(LIMITS.stopChars),
    z.array(z.string().min(1).max(LIMITS.stopChars)).max(LIMITS.stopStrings),
  ]),
).transform((value) => (value === undefined ? [] : typeof value === "string" ? [value] : value));

const logitBias = nullable(
  z
    .record(z.string().regex(/^\d{1,9}$/, "keys must be token ids"), z.number().min(-100).max(100))
    .refine((value) => Object.keys(value).length <= LIMITS.logitBias, `at most ${LIMITS.logitBias} entries`),
);

/** Sampling fields shared by chat and completions. */
const sampling = {
  model: z.string().min(1).max(LIMITS.modelName),
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().min(0).max(1)),
  top_k: nullable(z.number().int().min(0).max(1_000_000)),
  min_p: nullable(z.number().min(0).max(1)),
  seed: nullable(z.number().int().min(0).max(2 ** 32 - 1)),
  stop,
  presence_penalty: nullable(z.number().min(-2).max(2)),
  frequency_penalty: nullable(z.number().min(-2).max(2)),
  repeat_penalty: nullable(z.number().min(0).max(10)),
  ignore_eos: nullable(z.boolean()),
  logit_bias: logitBias,
  /** Choices per prompt, each in its own slot (at most the model's slots); the prompt is evaluated once. */
  n: nullable(z.number().int().min(1).max(64)),
  stream: nullable(z.boolean()),
  stream_options: nullable(z.object({ include_usage: nullable(z.boolean()) })),
  user: nullable(z.string().max(256)),
};

/** vLLM's and llama-server's `continue_final_message`: true, or which part of the message to continue. */
export const continueFinalMessage = nullable(z.union([z.boolean(), z.enum(["content", "reasoning_content"])]));

const textPart = z.object({ type: z.literal("text"), text: z.string().max(LIMITS.messageChars) });

const toolName = z.string().min(1).max(128).regex(/^[\w.-]+$/, "a tool name holds letters, digits, '_', '.' and '-'");

/** A call an assistant turn made, as the client sends the conversation back. */
const toolCall = z.object({
  id: z.string().max(256),
  type: z.literal("function").optional(),
  function: z.object({ name: toolName, arguments: z.string().max(LIMITS.messageChars) }),
});

export const chatMessageSchema = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string().max(LIMITS.messageChars), z.array(textPart).min(1).max(64)]).nullish(),
  tool_calls: nullable(z.array(toolCall).max(128)),
  tool_call_id: nullable(z.string().max(256)),
  name: nullable(z.string().max(128)),
  reasoning_content: nullable(z.string().max(LIMITS.messageChars)),
});

/** An OpenAI function tool. */
export const toolSchema = z.object({
  type: z.literal("function"),
  function: z.object({
    name: toolName,
    description: nullable(z.string().max(8192)),
    parameters: nullable(z.record(z.string(), z.unknown())),
    strict: nullable(z.boolean()),
  }),
});

export const toolChoiceSchema = nullable(
  z.union([z.enum(["auto", "none", "required"]), z.object({ type: z.literal("function"), function: z.object({ name: toolName }) })]),
);

const jsonSchemaFormat = z.object({
  type: z.literal("json_schema"),
  json_schema: z.object({
    name: z.string().max(64).optional(),
    schema: z.record(z.string(), z.unknown()),
    strict: nullable(z.boolean()),
  }),
});

/** `json_object`, optionally with llama-server's `schema` extension (then it constrains like `json_schema`). */
const jsonObjectFormat = z.object({ type: z.literal("json_object"), schema: nullable(z.record(z.string(), z.unknown())) });

const responseFormat = nullable(z.discriminatedUnion("type", [z.object({ type: z.literal("text") }), jsonObjectFormat, jsonSchemaFormat]));

/**
 * llama-server's per-request switches that `/completion` and `/v1/chat/completions` share:
 * `return_progress` (streams report the prompt's evaluation as `prompt_progress`),
 * `post_sampling_probs` (`n_probs`/`top_logprobs` give `prob`/`top_probs` of the distribution after
 * the sampler chain instead of log-probabilities of the raw logits) and `backend_sampling`
 * (accepted; Grove always samples on the CPU with the same chain, so it changes nothing).
 */
export const llamaServerSwitches = {
  /** llama-server's per-request LoRA adapters: `[{id, scale}]`, ids as `GET /lora-adapters` lists them. */
  lora: nullable(z.array(z.strictObject({ id: z.number().int().min(0).max(65_535), scale: z.number().min(-100).max(100) })).max(64)),
  return_progress: nullable(z.boolean()),
  post_sampling_probs: nullable(z.boolean()),
  backend_sampling: nullable(z.boolean()),
};

export const chatCompletionSchema = z.object({
  ...llamaServerSwitches,
  ...sampling,
  messages: z.array(chatMessageSchema).min(1, "messages must hold at least one message").max(LIMITS.messages),
  max_tokens: nullable(z.number().int().min(1).max(LIMITS.maxTokens)),
  max_completion_tokens: nullable(z.number().int().min(1).max(LIMITS.maxTokens)),
  response_format: responseFormat,
  logprobs: nullable(z.boolean()),
  top_logprobs: nullable(z.number().int().min(0).max(LIMITS.topLogprobs)),
  tools: nullable(z.array(toolSchema).max(128)),
  tool_choice: toolChoiceSchema,
  parallel_tool_calls: nullable(z.boolean()),
  /** llama-server's extensions: template variables (`enable_thinking`…), a GBNF grammar, a JSON schema. */
  chat_template_kwargs: nullable(z.record(z.string(), z.unknown())),
  add_generation_prompt: nullable(z.boolean()),
  continue_final_message: continueFinalMessage,
  /** llama-server's debugging switch: the answer carries `__verbose` (the rendered prompt…). */
  verbose: nullable(z.boolean()),
  grammar: nullable(z.string().max(LIMITS.schemaChars)),
  json_schema: nullable(z.record(z.string(), z.unknown())),
});

const tokenArray = z.array(z.number().int().min(0).max(2 ** 31 - 1)).min(1);

export const completionSchema = z.object({
  lora: llamaServerSwitches.lora,
  ...sampling,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1).max(LIMITS.promptBatch),
    tokenArray,
    z.array(tokenArray).min(1).max(LIMITS.promptBatch),
  ]),
  max_tokens: nullable(z.number().int().min(0).max(LIMITS.maxTokens)),
  echo: nullable(z.boolean()),
  /** Grove's (and llama-server's) rule: special-token text in a prompt is that token; false keeps it text. */
  parse_special: nullable(z.boolean()),
  logprobs: nullable(z.number().int().min(0).max(LIMITS.topLogprobs)),
  suffix: nullable(z.string().max(0, "suffix is not supported")),
  best_of: nullable(z.number().int()).refine((value) => value === undefined || value === 1, {
    message: "only best_of=1 is supported",
  }),
});

const embeddingToken = z.number().int().min(0).max(2 ** 31 - 1);
const embeddingText = z.string().max(LIMITS.messageChars);
const mixedInput = z.array(z.union([embeddingText, embeddingToken])).min(1).max(65_536);

/**
 * Embedding inputs: OpenAI's (a string, strings, token ids, lists of token ids) and llama-server's
 * (text and token ids mixed in one list, which is one input; lists of such lists). The items
 * become prompts in `prompt-input.ts`.
 */
export const embeddingInputSchema = z
  .union([embeddingText, z.array(z.union([embeddingText, embeddingToken, mixedInput])).min(1).max(65_536)])
  .superRefine((input, context) => {
    if (typeof input === "string") return;
    if (input.some((item) => typeof item === "number")) {
      if (input.some(Array.isArray)) context.addIssue({ code: "custom", message: "a list holding token ids is one input: its items are text or token ids, not lists" });
    } else if (input.length > LIMITS.embeddingInputs) {
      context.addIssue({ code: "custom", message: `at most ${LIMITS.embeddingInputs} inputs` });
    }
  });

/**
 * How embeddings are normalised, as llama-server's `embd_normalize`: -1 not at all, 0 scaled to
 * int16's range by the largest value, 1 taxicab, 2 Euclidean (unit length, OpenAI's), p > 2 p-norm.
 */
export const embdNormalizeSchema = z.number().int().min(-1).max(64).nullish().transform((value) => value ?? undefined);

export const embeddingSchema = z.object({
  model: z.string().min(1).max(LIMITS.modelName),
  input: embeddingInputSchema,
  encoding_format: nullable(z.enum(["float", "base64"])),
  embd_normalize: embdNormalizeSchema,
  dimensions: nullable(z.number().int()).refine((value) => value === undefined, {
    message: "dimensions is not supported: the model's embedding size is fixed",
  }),
  user: nullable(z.string().max(256)),
});

export type ChatCompletionRequest = z.output<typeof chatCompletionSchema>;
export type CompletionRequest = z.output<typeof completionSchema>;
export type EmbeddingRequest = z.output<typeof embeddingSchema>;

/** Parses a body or throws a 400 naming the first bad parameter. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  if (body === undefined || body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new InvalidRequestError("The request body must be a JSON object");
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const param = issue.path.map((part) => (typeof part === "number" ? `[${part}]` : String(part))).join(".").replace(/\.\[/g, "[");
  const message = issue.code === "invalid_union" ? "has an unsupported type or shape" : issue.message;
  throw new InvalidRequestError(param ? `Invalid '${param}': ${message}` : message, { param: param || undefined });
}

const SCHEMA_TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);

/** Returns what is wrong with one schema node, if anything (its children are checked separately). */
function schemaNodeProblem(node: Record<string, unknown>): string | undefined {
  const type = node.type;
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    const bad = types.find((entry) => typeof entry !== "string" || !SCHEMA_TYPES.has(entry));
    if (types.length === 0 || bad !== undefined) {
      return `unsupported type ${JSON.stringify(bad ?? type)} (use ${[...SCHEMA_TYPES].join(", ")})`;
    }
  }
  const properties = node.properties;
  if (properties !== undefined && (typeof properties !== "object" || properties === null || Array.isArray(properties))) {
    return "'properties' must be an object";
  }
  if (node.required !== undefined && !(Array.isArray(node.required) && node.required.every((key) => typeof key === "string"))) {
    return "'required' must be an array of property names";
  }
  if (node.enum !== undefined && !(Array.isArray(node.enum) && node.enum.length > 0)) return "'enum' must be a non-empty array";
  if (node.$ref !== undefined && !(typeof node.$ref === "string" && node.$ref.startsWith("#/$defs/"))) {
    return "'$ref' must point into '#/$defs/'";
  }
  return undefined;
}

/** Bounds a JSON schema's size and nesting and checks the keywords grammars depend on, before it becomes a grammar. */
export function checkJsonSchema(schema: unknown): void {
  const fail = (message: string) => {
    throw new InvalidRequestError(`Invalid JSON schema: ${message}`, { param: "response_format" });
  };
  if (JSON.stringify(schema).length > LIMITS.schemaChars) fail(`over ${LIMITS.schemaChars} characters`);
  // Iterative, so a hostile schema cannot overflow the stack.
  const stack: [unknown, number, string][] = [[schema, 1, "#"]];
  while (stack.length > 0) {
    const [value, level, path] = stack.pop()!;
    if (typeof value !== "object" || value === null) continue;
    if (level > LIMITS.schemaDepth) fail(`nests deeper than ${LIMITS.schemaDepth} levels`);
    const isSchemaNode = !Array.isArray(value) && !path.endsWith("/properties") && !path.endsWith("/$defs");
    if (isSchemaNode) {
      const problem = schemaNodeProblem(value as Record<string, unknown>);
      if (problem) fail(`${path}: ${problem}`);
    }
    for (const [key, child] of Object.entries(value)) {
      // enum and const hold data, not schemas.
      if (isSchemaNode && (key === "enum" || key === "const" || key === "default" || key === "examples")) continue;
      stack.push([child, level + 1, `${path}/${key}`]);
    }
  }
}
