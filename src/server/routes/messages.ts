import type { FastifyInstance } from "fastify";
import { MediaInputError } from "../../core/errors.js";
import type { ChatMessage, GenerateDone } from "../../engine/engine.js";
import type { ToolChoice, ToolDefinition } from "../../engine/tool-calls/tool-call-types.js";
import { ChatTurn } from "../../serving/chat-turn.js";
import type { ModelCatalog } from "../../serving/model-catalog.js";
import { meterOf } from "../gateway-hooks.js";
import { clientGoneSignal, responseId } from "../generation.js";
import { parseBody } from "../openai-schemas.js";
import { countTokensSchema, messagesSchema, type MessagesRequest } from "../responses-schemas.js";
import { SseStream } from "../sse.js";

/**
 * Anthropic's Messages API, `POST /v1/messages` (and `/v1/messages/count_tokens`), for
 * `@anthropic-ai/sdk` and the tools built on it: `system`, text and tool blocks, `stop_sequences`,
 * streaming as Anthropic's named events. The key may come as `x-api-key` (api-paths.ts).
 */

type Message = MessagesRequest["messages"][number];

/** The system prompt and messages as chat messages; tool use and results become tool calls and tool messages. */
export function anthropicMessages(body: Pick<MessagesRequest, "system" | "messages">): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (body.system !== undefined) {
    const system = typeof body.system === "string" ? body.system : body.system.map((block) => block.text).join("\n");
    if (system !== "") messages.push({ role: "system", content: system });
  }
  for (const message of body.messages) messages.push(...fromMessage(message));
  return messages;
}

function fromMessage(message: Message): ChatMessage[] {
  if (typeof message.content === "string") return [{ role: message.role, content: message.content }];
  const out: ChatMessage[] = [];
  let text = "";
  const toolCalls: { id: string; name: string; arguments: string }[] = [];
  let reasoning = "";
  for (const block of message.content) {
    if (block.type === "image") throw new MediaInputError("image", { param: "messages" });
    if (block.type === "text") text += block.text;
    else if (block.type === "thinking") reasoning += block.thinking;
    else if (block.type === "tool_use") toolCalls.push({ id: block.id, name: block.name, arguments: JSON.stringify(block.input) });
    else {
      const content = block.content === undefined ? "" : typeof block.content === "string" ? block.content : block.content.map(toolResultText).join("");
      out.push({ role: "tool", content: block.is_error ? `Error: ${content}` : content, toolCallId: block.tool_use_id });
    }
  }
  // Tool results come first in a user turn (they answer the previous assistant turn).
  if (text !== "" || toolCalls.length > 0 || out.length === 0) {
    out.push({ role: message.role, content: text, ...(toolCalls.length > 0 ? { toolCalls } : {}), ...(reasoning !== "" ? { reasoningContent: reasoning } : {}) });
  }
  return out;
}

function toolResultText(part: { type: "text"; text: string } | { type: "image" }): string {
  if (part.type === "image") throw new MediaInputError("image", { param: "messages" });
  return part.text;
}

const stopReasonOf = (done: GenerateDone, stopSequence: string | null, calls: number) =>
  done.finishReason === "length" ? "max_tokens" : stopSequence !== null ? "stop_sequence" : calls > 0 ? "tool_use" : "end_turn";

/** Anthropic's tools and tool choice as chat tools. */
function toolsOf(body: MessagesRequest): { definitions: ToolDefinition[]; choice: ToolChoice; parallel: boolean } {
  const definitions: ToolDefinition[] = (body.tools ?? []).map((tool) => ({
    type: "function",
    function: { name: tool.name, ...(tool.description === undefined ? {} : { description: tool.description }), parameters: tool.input_schema },
  }));
  const choice = body.tool_choice;
  const mapped: ToolChoice =
    choice === undefined || choice.type === "auto" ? "auto" : choice.type === "any" ? "required" : choice.type === "none" ? "none" : { type: "function", function: { name: choice.name } };
  return { definitions, choice: mapped, parallel: !(choice !== undefined && "disable_parallel_tool_use" in choice && choice.disable_parallel_tool_use) };
}

/** A call's arguments as the object Anthropic's `tool_use.input` is (text that is not a JSON object is kept under `_raw`). */
function inputOf(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text === "" ? "{}" : text);
    return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : { _raw: text };
  } catch {
    return { _raw: text };
  }
}

export function registerMessagesRoutes(app: FastifyInstance, catalog: ModelCatalog): void {
  app.post("/v1/messages/count_tokens", async (request) => {
    const body = parseBody(countTokensSchema, request.body);
    meterOf(request).checkModel(body.model);
    const model = await catalog.get(body.model);
    return { input_tokens: model.applyChatTemplate(anthropicMessages(body)).length };
  });

  app.post("/v1/messages", async (request, reply) => {
    const body = parseBody(messagesSchema, request.body);
    const meter = meterOf(request);
    meter.checkModel(body.model);
    const model = await catalog.get(body.model);
    const stops = body.stop_sequences ?? [];
    const turn = await ChatTurn.start({
      model,
      name: body.model,
      meter,
      messages: anthropicMessages(body),
      maxTokens: body.max_tokens,
      maxTokensParam: "max_tokens",
      generate: {
        temperature: body.temperature,
        topP: body.top_p,
        topK: body.top_k,
        stop: stops,
        signal: clientGoneSignal(reply),
      },
      ...(body.tools === undefined ? {} : { tools: toolsOf(body) }),
    });
    const id = responseId("msg").replace("-", "_");
    const usage = (done?: GenerateDone) => ({ input_tokens: turn.promptTokens, output_tokens: done?.completionTokens ?? 0, cache_read_input_tokens: done?.cachedTokens ?? 0 });
    const head = { id, type: "message", role: "assistant", model: body.model };
    if (!body.stream) {
      const [result] = await turn.collect();
      if (turn.cancelled || result === undefined) return reply.code(499).send();
      const stopSequence = result.done.stopString ?? null;
      return {
        ...head,
        content: [
          ...(result.reasoning === "" ? [] : [{ type: "thinking", thinking: result.reasoning, signature: "" }]),
          ...(result.content !== "" || result.toolCalls.length === 0 ? [{ type: "text", text: result.content }] : []),
          ...result.toolCalls.map((call) => ({ type: "tool_use", id: call.id, name: call.name, input: inputOf(call.arguments) })),
        ],
        stop_reason: stopReasonOf(result.done, stopSequence, result.toolCalls.length),
        stop_sequence: stopSequence,
        usage: usage(result.done),
      };
    }

    turn.session.streaming();
    const stream = new SseStream(reply);
    // Content blocks open as their kind of output starts; one block is open at a time.
    let index = -1;
    let open: "text" | "thinking" | number | undefined;
    let calls = 0;
    const close = () => {
      if (open === undefined) return;
      stream.event("content_block_stop", { type: "content_block_stop", index });
      open = undefined;
    };
    const start = (kind: "text" | "thinking" | number, block: object) => {
      close();
      index++;
      open = kind;
      stream.event("content_block_start", { type: "content_block_start", index, content_block: block });
    };
    try {
      stream.event("message_start", { type: "message_start", message: { ...head, content: [], stop_reason: null, stop_sequence: null, usage: usage() } });
      stream.event("ping", { type: "ping" });
      for await (const event of turn.events()) {
        if (event.type === "content") {
          if (event.text === "") continue;
          if (open !== "text") start("text", { type: "text", text: "" });
          stream.event("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: event.text } });
        } else if (event.type === "reasoning") {
          if (open !== "thinking") start("thinking", { type: "thinking", thinking: "", signature: "" });
          stream.event("content_block_delta", { type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: event.text } });
        } else if (event.type === "tool_call") {
          if (open !== event.delta.index) {
            calls++;
            start(event.delta.index, { type: "tool_use", id: event.delta.id ?? "", name: event.delta.function.name ?? "", input: {} });
          }
          if (event.delta.function.arguments !== "") {
            stream.event("content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: event.delta.function.arguments } });
          }
        } else if (event.type === "done") {
          if (event.done.finishReason === "aborted") return reply;
          if (index < 0) start("text", { type: "text", text: "" });
          close();
          const stopSequence = event.done.stopString ?? null;
          stream.event("message_delta", { type: "message_delta", delta: { stop_reason: stopReasonOf(event.done, stopSequence, calls), stop_sequence: stopSequence }, usage: { output_tokens: event.done.completionTokens } });
          stream.event("message_stop", { type: "message_stop" });
        }
      }
      stream.end({ done: false });
    } catch (error) {
      request.log.error({ err: error }, "messages stream failed");
      stream.fail(error);
    }
    return reply;
  });
}
