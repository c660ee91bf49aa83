import { z } from "zod";
import { LIMITS } from "./openai-schemas.js";

/**
 * Request bodies of OpenAI's Responses API (`POST /v1/responses`) and Anthropic's Messages API
 * (`POST /v1/messages`), bounded like the chat ones. Only what a stateless server can honour is
 * accepted: a `previous_response_id` (server-side conversation state) is refused by name.
 */

const nullable = <T extends z.ZodType>(schema: T) => schema.nullish().transform((value) => value ?? undefined);
const text = z.string().max(LIMITS.messageChars);
const name = z.string().min(1).max(128);
const jsonObject = z.record(z.string(), z.unknown());

/** A function tool in the Responses API's flat shape. */
const responsesTool = z.object({
  type: z.literal("function"),
  name,
  description: nullable(z.string().max(8192)),
  parameters: nullable(jsonObject),
  strict: nullable(z.boolean()),
});

const inputContent = z.union([
  text,
  z
    .array(
      z.object({
        type: z.enum(["input_text", "output_text", "text"]),
        text,
      }),
    )
    .max(64),
]);

/** One item of `input`: a message, a function call the model made, or its output. */
const inputItem = z.union([
  z.object({
    type: z.literal("message").optional(),
    role: z.enum(["system", "developer", "user", "assistant"]),
    content: inputContent,
  }),
  z.object({ type: z.literal("function_call"), call_id: z.string().max(256), name, arguments: text, id: nullable(z.string().max(256)) }),
  z.object({ type: z.literal("function_call_output"), call_id: z.string().max(256), output: text }),
]);

export const responsesSchema = z.object({
  model: z.string().min(1).max(LIMITS.modelName),
  input: z.union([text, z.array(inputItem).min(1).max(LIMITS.messages)]),
  instructions: nullable(text),
  max_output_tokens: nullable(z.number().int().min(1).max(LIMITS.maxTokens)),
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().min(0).max(1)),
  stream: nullable(z.boolean()),
  tools: nullable(z.array(responsesTool).max(128)),
  tool_choice: nullable(z.union([z.enum(["auto", "none", "required"]), z.object({ type: z.literal("function"), name })])),
  parallel_tool_calls: nullable(z.boolean()),
  text: nullable(
    z.object({
      format: nullable(
        z.discriminatedUnion("type", [
          z.object({ type: z.literal("text") }),
          z.object({ type: z.literal("json_object") }),
          z.object({ type: z.literal("json_schema"), name: nullable(z.string().max(64)), schema: jsonObject, strict: nullable(z.boolean()) }),
        ]),
      ),
    }),
  ),
  previous_response_id: nullable(z.string().max(0, "previous_response_id needs server-side state, which Grove does not keep: send the whole conversation in input")),
  store: nullable(z.boolean()),
  user: nullable(z.string().max(256)),
  metadata: nullable(z.record(z.string(), z.string().max(512))),
});

export type ResponsesRequest = z.output<typeof responsesSchema>;

/**
 * An Anthropic image block. Accepted in shape so that it can be refused by name (the models have
 * no multimodal projector: MediaInputError) instead of as an unknown block type.
 */
const anthropicImage = z.object({
  type: z.literal("image"),
  source: z.discriminatedUnion("type", [
    z.object({ type: z.literal("base64"), media_type: z.string().max(128), data: text }),
    z.object({ type: z.literal("url"), url: z.string().max(LIMITS.messageChars) }),
  ]),
});

/** Anthropic content blocks Grove reads: text, tool use and tool results (images are refused). */
const anthropicBlock = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text"), text }),
  anthropicImage,
  z.object({ type: z.literal("tool_use"), id: z.string().max(256), name, input: jsonObject }),
  z.object({
    type: z.literal("tool_result"),
    tool_use_id: z.string().max(256),
    content: nullable(z.union([text, z.array(z.discriminatedUnion("type", [z.object({ type: z.literal("text"), text }), anthropicImage])).max(64)])),
    is_error: nullable(z.boolean()),
  }),
  z.object({ type: z.literal("thinking"), thinking: text, signature: nullable(z.string().max(65_536)) }),
]);

export const messagesSchema = z.object({
  model: z.string().min(1).max(LIMITS.modelName),
  max_tokens: z.number().int().min(1).max(LIMITS.maxTokens),
  messages: z
    .array(z.object({ role: z.enum(["user", "assistant"]), content: z.union([text, z.array(anthropicBlock).min(1).max(256)]) }))
    // Empty is allowed, as llama-server allows it: the template renders the system prompt (if
    // any) and the assistant's turn opens.
    .max(LIMITS.messages),
  system: nullable(z.union([text, z.array(z.object({ type: z.literal("text"), text })).max(64)])),
  stop_sequences: nullable(z.array(z.string().min(1).max(LIMITS.stopChars)).max(LIMITS.stopStrings)),
  stream: nullable(z.boolean()),
  temperature: nullable(z.number().min(0).max(1)),
  top_p: nullable(z.number().min(0).max(1)),
  top_k: nullable(z.number().int().min(0).max(1_000_000)),
  tools: nullable(z.array(z.object({ name, description: nullable(z.string().max(8192)), input_schema: jsonObject })).max(128)),
  tool_choice: nullable(
    z.discriminatedUnion("type", [
      z.object({ type: z.literal("auto"), disable_parallel_tool_use: nullable(z.boolean()) }),
      z.object({ type: z.literal("any"), disable_parallel_tool_use: nullable(z.boolean()) }),
      z.object({ type: z.literal("none") }),
      z.object({ type: z.literal("tool"), name, disable_parallel_tool_use: nullable(z.boolean()) }),
    ]),
  ),
  metadata: nullable(z.object({ user_id: nullable(z.string().max(256)) })),
});

export const countTokensSchema = messagesSchema.omit({ max_tokens: true }).extend({ max_tokens: nullable(z.number().int().min(1).max(LIMITS.maxTokens)) });

export type MessagesRequest = z.output<typeof messagesSchema>;
