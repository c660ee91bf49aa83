import { ContextLengthError, InvalidRequestError } from "../core/errors.js";
import type { ChatTemplateRenderOptions } from "../engine/chat-template.js";
import type { ChatMessage, ChatTool, GenerateDone, GenerateOptions, GenerateProgress, LoadedModel, TokenLogprob } from "../engine/engine.js";
import { detectToolCallFormat, promptOpensReasoning } from "../engine/tool-calls/detect-tool-call-format.js";
import { genericToolsPrompt } from "../engine/tool-calls/generic-tools-prompt.js";
import { toolCallGrammar } from "../engine/tool-calls/tool-call-grammar.js";
import { ToolCallStreamParser } from "../engine/tool-calls/tool-call-parser.js";
import type { ChatOutputDelta, ParsedToolCall, ToolCallDelta, ToolCallFormat, ToolChoice, ToolDefinition } from "../engine/tool-calls/tool-call-types.js";
import { GenerationSession, type SessionMeter } from "./generation-session.js";

/**
 * One assistant turn of a chat, the part every chat-shaped API shares (OpenAI chat completions,
 * the Responses API, Anthropic's Messages, Ollama's chat): the template applied (with the tools
 * offered), the context checked, one GenerationSession, and the model's output split into what
 * the APIs name — answer text, reasoning, tool calls — in the model family's own syntax
 * (`engine/tool-calls/`). Each route only translates its request into a {@link ChatTurnRequest}
 * and these events into its wire format.
 */
export interface ChatTurnRequest {
  readonly model: LoadedModel;
  /** The name the client asked for. */
  readonly name: string;
  readonly meter: SessionMeter;
  readonly messages: readonly ChatMessage[];
  /** Most tokens to generate; undefined: whatever the context leaves. */
  readonly maxTokens: number | undefined;
  /** The request field `maxTokens` came from, for the error that names it. */
  readonly maxTokensParam: string;
  /** A context smaller than the model's for this turn (Ollama's `num_ctx`). */
  readonly contextLimit?: number;
  /** Sampling and stopping, as the engine takes them. */
  readonly generate: Omit<GenerateOptions, "promptTokens" | "maxTokens">;
  /** Template options beyond the tools (`enable_thinking`, template variables). */
  readonly render?: Omit<ChatTemplateRenderOptions, "tools">;
  /**
   * Continue the final assistant message instead of answering after it (vLLM's and llama-server's
   * `continue_final_message`; `"reasoning_content"` continues its thinking). Without it, a final
   * assistant message is continued anyway (llama-server's prefill, Anthropic's and Ollama's rule),
   * and `render.addGenerationPrompt` must not be true with it.
   */
  readonly continueFinal?: boolean | "content" | "reasoning_content";
  /** Functions the model may call, and whether it must. */
  readonly tools?: {
    readonly definitions: readonly ToolDefinition[];
    readonly choice: ToolChoice;
    /** OpenAI's `parallel_tool_calls`. @default true */
    readonly parallel?: boolean;
  };
}

/** What a turn produces, in order, per choice. */
export type ChatTurnEvent =
  | { readonly type: "content"; readonly choice: number; readonly text: string; readonly logprobs?: readonly TokenLogprob[] }
  | { readonly type: "reasoning"; readonly choice: number; readonly text: string }
  | { readonly type: "tool_call"; readonly choice: number; readonly delta: ToolCallDelta }
  | { readonly type: "done"; readonly choice: number; readonly done: GenerateDone; readonly toolCalls: readonly ParsedToolCall[] }
  /** The prompt's evaluation, when `generate.progress` asked for it (choice 0: choices share the prompt). */
  | { readonly type: "progress"; readonly choice: number; readonly progress: GenerateProgress };

/** One choice, collected whole. */
export interface ChatTurnResult {
  readonly content: string;
  readonly reasoning: string;
  readonly toolCalls: readonly ParsedToolCall[];
  readonly logprobs: readonly TokenLogprob[];
  readonly done: GenerateDone;
}

/** How the output is read: plain text, or through a family's tool-call and reasoning syntax. */
interface OutputReading {
  readonly format: ToolCallFormat;
  readonly startsInReasoning: boolean;
  readonly tools: readonly ToolDefinition[];
}

const asChatTool = (tool: ToolDefinition): ChatTool => ({
  name: tool.function.name,
  ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
  ...(tool.function.parameters === undefined ? {} : { parameters: tool.function.parameters }),
});

/**
 * The conversation for a template without tool support (the generic format): the tools and the
 * answer format in the system message, earlier calls as the JSON the model is asked to write, and
 * tool results as user turns.
 */
function genericMessages(messages: readonly ChatMessage[], tools: readonly ToolDefinition[], choice: ToolChoice, parallel: boolean): ChatMessage[] {
  const instruction = genericToolsPrompt(tools, choice, parallel);
  const out: ChatMessage[] = [];
  const first = messages[0];
  if (first !== undefined && (first.role === "system" || first.role === "developer")) out.push({ role: "system", content: `${first.content}\n\n${instruction}` });
  else out.push({ role: "system", content: instruction });
  for (const message of first !== undefined && out[0]!.content !== instruction ? messages.slice(1) : messages) {
    if (message.role === "tool") {
      out.push({ role: "user", content: JSON.stringify({ tool_response: { ...(message.name ? { tool: message.name } : {}), ...(message.toolCallId ? { id: message.toolCallId } : {}), content: message.content } }) });
    } else if (message.role === "assistant" && message.toolCalls?.length) {
      const calls = message.toolCalls.map((call) => ({ name: call.name, arguments: safeJson(call.arguments), ...(call.id ? { id: call.id } : {}) }));
      out.push({ role: "assistant", content: JSON.stringify(parallel ? { tool_calls: calls } : { tool_call: calls[0] }) });
    } else out.push(message);
  }
  return out;
}

/**
 * The conversation as the model reads it: the template with the tools where it renders them
 * (whenever tools are given, with tool_choice none too: the conversation may hold earlier calls),
 * or the generic format's system text where it does not. One path for counting and generating.
 */
function chatPrompt(request: PromptRequest, format: ToolCallFormat): { tokens: number[]; text: string; continuesReasoning: boolean } {
  const { messages, options, continuesReasoning } = promptInputs(request, format);
  const tokens = request.model.applyChatTemplate(messages, options);
  return { tokens, text: request.model.detokenize(tokens.slice(-16), { special: true }), continuesReasoning };
}

/** The messages and template options of a turn's prompt. */
function promptInputs(request: PromptRequest, format: ToolCallFormat): { messages: readonly ChatMessage[]; options: ChatTemplateRenderOptions; continuesReasoning: boolean } {
  const { tools } = request;
  const { messages: conversation, continuation, continuesReasoning } = continuationOf(request, format);
  const offered = tools !== undefined && tools.definitions.length > 0 && tools.choice !== "none";
  const messages = offered && !format.nativeTools ? genericMessages(conversation, tools.definitions, tools.choice, tools.parallel ?? true) : conversation;
  const rendersTools = tools !== undefined && tools.definitions.length > 0 && format.nativeTools;
  const options = { ...request.render, ...(rendersTools ? { tools: tools.definitions.map(asChatTool) } : {}), ...(continuation ? { continuation } : {}) };
  return { messages, options, continuesReasoning };
}

type PromptRequest = Pick<ChatTurnRequest, "model" | "messages" | "tools" | "render" | "continueFinal">;

/**
 * A final assistant message to continue, as llama-server decides it (`oaicompat_chat_params_parse`
 * and `common_chat_templates_apply_jinja`): the messages before it, and the text that follows the
 * generation prompt — its content, or for a family that thinks in tags, its reasoning reopened
 * (and closed again before the content when the content is continued).
 * @throws InvalidRequestError for two final assistant messages, a continued message with tool
 *   calls, or `add_generation_prompt` true with `continue_final_message`
 */
function continuationOf(request: PromptRequest, format: ToolCallFormat): { messages: readonly ChatMessage[]; continuation?: { text: string; reopen?: string }; continuesReasoning: boolean } {
  const { messages } = request;
  const last = messages.at(-1);
  let mode = request.continueFinal === true ? "auto" : request.continueFinal || undefined;
  let explicit = mode !== undefined;
  if (mode === undefined && last?.role === "assistant") {
    if (messages.at(-2)?.role === "assistant") throw new InvalidRequestError("Cannot have 2 or more assistant messages at the end of the list", { param: "messages" });
    mode = "auto";
    explicit = false;
  }
  if (mode === undefined) return { messages, continuesReasoning: false };
  if (explicit && (request.render?.addGenerationPrompt ?? true)) {
    throw new InvalidRequestError("continue_final_message needs add_generation_prompt false: they cannot both be true", { param: "continue_final_message" });
  }
  if (last?.role !== "assistant") throw new InvalidRequestError("continue_final_message needs the last message to be the assistant's", { param: "continue_final_message" });
  if (last.toolCalls?.length) throw new InvalidRequestError("Cannot continue an assistant message that contains tool calls", { param: "messages" });
  if (mode === "auto") mode = last.content === "" && last.reasoningContent ? "reasoning_content" : "content";
  const tags = format.reasoning;
  const content = mode === "content" ? last.content : "";
  const continuation = tags === undefined ? { text: content } : { text: `${tags.start}${last.reasoningContent ?? ""}${mode === "content" ? tags.end : ""}${content}`, reopen: tags.start };
  return { messages: messages.slice(0, -1), continuation, continuesReasoning: tags !== undefined && mode === "reasoning_content" };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class ChatTurn {
  private constructor(
    readonly session: GenerationSession,
    /** Tokens of the templated conversation. */
    readonly promptTokens: number,
    /** The templated conversation's tokens. */
    readonly prompt: readonly number[],
    private readonly reading: OutputReading | undefined,
  ) {}

  /** The tokens of the prompt a turn would evaluate (tools in the template or the generic system text), without generating. */
  static promptTokens(request: PromptRequest): number[] {
    return chatPrompt(request, detectToolCallFormat(request.model.vocabulary().chatTemplate)).tokens;
  }

  /** The prompt text a turn would evaluate (llama-server's `/apply-template`). */
  static promptText(request: PromptRequest): string {
    const { messages, options } = promptInputs(request, detectToolCallFormat(request.model.vocabulary().chatTemplate));
    return request.model.renderChat(messages, options);
  }

  /** Applies the template, checks the context and starts generating (errors before the first token are a status). */
  static async start(request: ChatTurnRequest): Promise<ChatTurn> {
    const { model } = request;
    const tools = request.tools;
    const offered = tools !== undefined && tools.definitions.length > 0 && tools.choice !== "none";
    const template = model.vocabulary().chatTemplate;
    const format = detectToolCallFormat(template);
    let grammar = request.generate.grammar;
    if (offered) {
      if (grammar !== undefined || request.generate.json !== undefined) throw new InvalidRequestError("A grammar or JSON schema cannot be combined with tools", { param: "tools" });
    } else if (tools !== undefined && typeof tools.choice === "object") {
      // A named function with no tools offered is the client's mistake: say so.
      await toolCallGrammar(format, tools.definitions, tools.choice);
    }
    const { tokens: promptTokens, text: promptText, continuesReasoning } = chatPrompt(request, format);
    const opensReasoning = continuesReasoning || promptOpensReasoning(format, promptText);
    if (offered) {
      const compiled = await toolCallGrammar(format, tools.definitions, tools.choice, { parallelToolCalls: tools.parallel ?? true, startsInReasoning: opensReasoning });
      grammar = compiled?.gbnf;
    }
    const contextSize = Math.min(request.contextLimit ?? model.info.contextSize, model.info.contextSize);
    const room = contextSize - promptTokens.length;
    // A limit past the room is cut to it where the API says so (Ollama), else refused.
    // A config fork's num_predict is a default, so it is cut to the room left rather than refused.
    const fallback = request.maxTokens === undefined ? model.info.defaults?.maxTokens : undefined;
    const maxTokens = request.contextLimit !== undefined || fallback !== undefined ? Math.min(request.maxTokens ?? fallback ?? room, room) : (request.maxTokens ?? room);
    if (room < 1 || maxTokens > room) {
      throw new ContextLengthError(
        `This model's context holds ${contextSize} tokens; the messages take ${promptTokens.length}` +
          (maxTokens > room && room >= 1 ? ` and ${request.maxTokensParam} asks for ${maxTokens} more` : ""),
        { param: request.maxTokens === undefined ? "messages" : request.maxTokensParam, sizes: { promptTokens: promptTokens.length, contextSize } },
      );
    }
    // Output is read through the family's syntax when tools are offered, or when a family with a
    // syntax of its own thinks (its reasoning goes apart from the answer).
    const reads = offered || (format.nativeTools && (format.reasoning !== undefined || format.syntax === "gpt-oss"));
    const startsInReasoning = reads && opensReasoning;
    const session = await GenerationSession.start({
      model,
      name: request.name,
      meter: request.meter,
      generate: {
        ...request.generate,
        promptTokens,
        maxTokens,
        ...(grammar === undefined ? {} : { grammar }),
        ...(reads ? { specialText: true } : {}),
      },
    });
    return new ChatTurn(session, promptTokens.length, promptTokens, reads ? { format, startsInReasoning, tools: offered ? tools.definitions : [] } : undefined);
  }

  /** The turn's events; metering settles when the iteration ends, however it ends. */
  async *events(): AsyncGenerator<ChatTurnEvent, void, void> {
    const parsers = new Map<number, ToolCallStreamParser>();
    const reading = this.reading;
    const parserOf = (choice: number) => {
      let parser = parsers.get(choice);
      if (parser === undefined && reading !== undefined) {
        parser = new ToolCallStreamParser(reading.format, { tools: reading.tools, startsInReasoning: reading.startsInReasoning });
        parsers.set(choice, parser);
      }
      return parser;
    };
    for await (const event of this.session.events()) {
      const choice = event.choice ?? 0;
      if (event.type === "progress") {
        yield { type: "progress", choice, progress: event };
        continue;
      }
      const parser = parserOf(choice);
      if (event.type === "text") {
        if (parser === undefined) yield { type: "content", choice, text: event.text, ...(event.logprobs ? { logprobs: event.logprobs } : {}) };
        else yield* deltaEvents(choice, parser.push(event.text));
        continue;
      }
      if (parser === undefined) {
        yield { type: "done", choice, done: event, toolCalls: [] };
        continue;
      }
      yield* deltaEvents(choice, parser.finish({ cutOff: event.finishReason === "length" }));
      yield { type: "done", choice, done: event, toolCalls: parser.result().toolCalls };
    }
  }

  /** Every choice collected whole. */
  async collect(): Promise<ChatTurnResult[]> {
    const results: { content: string; reasoning: string; toolCalls: readonly ParsedToolCall[]; logprobs: TokenLogprob[]; done?: GenerateDone }[] = [];
    for await (const event of this.events()) {
      if (event.type === "progress") continue;
      const result = (results[event.choice] ??= { content: "", reasoning: "", toolCalls: [], logprobs: [] });
      if (event.type === "done") {
        result.done = event.done;
        result.toolCalls = event.toolCalls;
      } else if (event.type === "content") {
        result.content += event.text;
        if (event.logprobs) result.logprobs.push(...event.logprobs);
      } else if (event.type === "reasoning") result.reasoning += event.text;
    }
    return results.map((result) => ({ content: result.content, reasoning: result.reasoning, toolCalls: result.toolCalls, logprobs: result.logprobs, done: result.done! }));
  }

  /** True when the client went away before the turn ended. */
  get cancelled(): boolean {
    return this.session.cancelled;
  }
}

function* deltaEvents(choice: number, delta: ChatOutputDelta): Generator<ChatTurnEvent> {
  if (delta.reasoningContent) yield { type: "reasoning", choice, text: delta.reasoningContent };
  if (delta.content) yield { type: "content", choice, text: delta.content };
  for (const call of delta.toolCalls ?? []) yield { type: "tool_call", choice, delta: call };
}
