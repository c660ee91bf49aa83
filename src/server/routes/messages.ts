import type { FastifyInstance } from "fastify";
import type { ChatMessage, GenerateDone } from "../../engine/engine.js";
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
    if (block.type === "text") text += block.text;
    else if (block.type === "thinking") reasoning += block.thinking;
    else if (block.type === "tool_use") toolCalls.push({ id: block.id, name: block.name, arguments: JSON.stringify(block.input) });
    else {
      const content = block.content === undefined ? "" : typeof block.content === "string" ? block.content : block.content.map((part) => part.text).join("");
      out.push({ role: "tool", content: block.is_error ? `Error: ${content}` : content, toolCallId: block.tool_use_id });
    }
  }
  // Tool results come first in a user turn (they answer the previous assistant turn).
  if (text !== "" || toolCalls.length > 0 || out.length === 0) {
    out.push({ role: message.role, content: text, ...(toolCalls.length > 0 ? { toolCalls } : {}), ...(reasoning !== "" ? { reasoningContent: reasoning } : {}) });
  }
  return out;
}

const stopReasonOf = (done: GenerateDone, stopSequence: string | null) =>
  done.finishReason === "length" ? "max_tokens" : stopSequence !== null ? "stop_sequence" : "end_turn";

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
        content: [{ type: "text", text: result.content }],
        stop_reason: stopReasonOf(result.done, stopSequence),
        stop_sequence: stopSequence,
        usage: usage(result.done),
      };
    }

    turn.session.streaming();
    const stream = new SseStream(reply);
    try {
      stream.event("message_start", { type: "message_start", message: { ...head, content: [], stop_reason: null, stop_sequence: null, usage: usage() } });
      stream.event("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
      stream.event("ping", { type: "ping" });
      for await (const event of turn.events()) {
        if (event.type === "content") {
          if (event.text !== "") stream.event("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: event.text } });
          continue;
        }
        if (event.done.finishReason === "aborted") return reply;
        const stopSequence = event.done.stopString ?? null;
        stream.event("content_block_stop", { type: "content_block_stop", index: 0 });
        stream.event("message_delta", { type: "message_delta", delta: { stop_reason: stopReasonOf(event.done, stopSequence), stop_sequence: stopSequence }, usage: { output_tokens: event.done.completionTokens } });
        stream.event("message_stop", { type: "message_stop" });
      }
      stream.end({ done: false });
    } catch (error) {
      request.log.error({ err: error }, "messages stream failed");
      stream.fail(error);
    }
    return reply;
  });
}
