/**
 * The shapes of OpenAI-style tool calling that the HTTP layer and the engine share: tools as a
 * request names them, the parsed calls, and the deltas a stream sends.
 */

/** A JSON schema, as a tool's `parameters` carries it. */
export type JsonSchema = { readonly [key: string]: unknown };

/**
 * A function tool as OpenAI's Chat Completions API takes it.
 * @example { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }
 */
export interface ToolDefinition {
  readonly type: "function";
  readonly function: {
    readonly name: string;
    readonly description?: string;
    /** The arguments' JSON schema; absent: any JSON object. */
    readonly parameters?: JsonSchema;
    readonly strict?: boolean;
  };
}

/** OpenAI's `tool_choice`: `auto` (the default with tools), `none`, `required`, or one named function. */
export type ToolChoice = "auto" | "none" | "required" | { readonly type: "function"; readonly function: { readonly name: string } };

/** One call the model made; `arguments` is JSON text, as the model wrote it. */
export interface ParsedToolCall {
  readonly id: string;
  readonly name: string;
  readonly arguments: string;
}

/** A whole output, split as OpenAI's assistant message carries it. */
export interface ParsedChatOutput {
  readonly content: string;
  /** The model's thinking (`<think>`, gpt-oss's analysis channel); absent when it had none. */
  readonly reasoningContent?: string;
  readonly toolCalls: readonly ParsedToolCall[];
}

/**
 * One streamed piece of a tool call, in OpenAI's `delta.tool_calls[]` shape: the first piece of a
 * call carries `id`, `type` and `function.name`, later ones only argument text.
 */
export interface ToolCallDelta {
  readonly index: number;
  readonly id?: string;
  readonly type?: "function";
  readonly function: { readonly name?: string; readonly arguments: string };
}

/** What one piece of streamed output adds; empty fields are absent. */
export interface ChatOutputDelta {
  readonly content?: string;
  readonly reasoningContent?: string;
  readonly toolCalls?: readonly ToolCallDelta[];
}

/**
 * How a model family writes tool calls, as detected from its chat template.
 * - `hermes`: `<tool_call>{"name":…,"arguments":…}</tool_call>` (Hermes 2/3 Pro, Qwen 2.5/3, QwQ, Granite 4, SmolLM3)
 * - `qwen3-coder`: `<tool_call><function=name><parameter=key>value</parameter></function></tool_call>` (Qwen3-Coder, Qwen3.5, Nemotron 3)
 * - `llama3`: a bare `{"name":…,"parameters":…}`, optionally after `<|python_tag|>` (Llama 3.1–3.3)
 * - `mistral-nemo`: `[TOOL_CALLS][{"name":…,"arguments":…,"id":…}]`
 * - `mistral`: `[TOOL_CALLS]name[CALL_ID]id[ARGS]{…}` or `[TOOL_CALLS]name[ARGS]{…}` (Mistral Small 3.2, Devstral, Ministral)
 * - `firefunction-v2`: ` functools[{"name":…,"arguments":…}]`
 * - `functionary-v3.1`: `<function=name>{…}</function>`
 * - `functionary-v3.2`: `>>>name\n{…}`, content as `all\n…`
 * - `deepseek-r1`: `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>name\n```json\n{…}```<｜tool▁call▁end｜>…`
 * - `deepseek-v3.1`: `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>name<｜tool▁sep｜>{…}<｜tool▁call▁end｜>…`
 * - `gpt-oss`: harmony messages, `<|channel|>commentary to=functions.name<|message|>{…}`
 * - `command-r7b`: `<|START_ACTION|>[{"tool_call_id":…,"tool_name":…,"parameters":…}]<|END_ACTION|>`
 * - `granite`: `<|tool_call|>[{"name":…,"arguments":…}]` (Granite 3.x)
 * - `phi4`: `<|tool_call|>[{"name":…,"arguments":…}]<|/tool_call|>` (Phi-4-mini)
 * - `generic`: templates without tool support; the model answers JSON, `{"tool_calls":[…]}`,
 *   `{"tool_call":{…}}` or `{"response":…}`, under a grammar
 */
export type ToolCallSyntax =
  | "hermes"
  | "qwen3-coder"
  | "llama3"
  | "mistral-nemo"
  | "mistral"
  | "firefunction-v2"
  | "functionary-v3.1"
  | "functionary-v3.2"
  | "deepseek-r1"
  | "deepseek-v3.1"
  | "gpt-oss"
  | "command-r7b"
  | "granite"
  | "phi4"
  | "generic";

/** Tags around a model's thinking, which goes to `reasoning_content`. */
export interface ReasoningTags {
  readonly start: string;
  readonly end: string;
}

/** A model family's tool-call format: its syntax, and the tags it thinks in, if any. */
export interface ToolCallFormat {
  readonly syntax: ToolCallSyntax;
  /** A name for people (`/props`, logs), e.g. "Hermes 2 Pro". */
  readonly label: string;
  /** Thinking tags; absent for families that do not think, or think in channels (gpt-oss). */
  readonly reasoning?: ReasoningTags;
  /** Mistral's `[CALL_ID]`: the family writes a 9-character id with each call. */
  readonly callIds?: boolean;
  /** Whether the template renders `tools` itself; false for `generic` (the caller adds them to the system prompt). */
  readonly nativeTools: boolean;
}

/** Options of parsing one output. */
export interface ToolCallParseOptions {
  /**
   * The prompt ended inside the thinking block (it ends with the start tag, as DeepSeek R1
   * distills' and QwQ's prompts do): the output starts as reasoning. See `promptOpensReasoning`.
   * @default false
   */
  readonly startsInReasoning?: boolean;
  /** Split thinking into `reasoningContent`; false leaves the tags in the content. @default true */
  readonly extractReasoning?: boolean;
  /** The request's tools; `qwen3-coder` reads their schemas to type parameter values. */
  readonly tools?: readonly ToolDefinition[];
  /** Makes a call id when the model wrote none. @default OpenAI-like `call_` + 24 random characters */
  readonly newCallId?: () => string;
  /**
   * The output ended at the token limit: a call whose arguments are not whole JSON is not
   * reported, and the output after the reasoning is content instead. @default false
   */
  readonly cutOff?: boolean;
}

