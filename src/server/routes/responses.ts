import type { FastifyInstance, FastifyReply } from "fastify";
import type { ChatMessage, GenerateDone } from "../../engine/engine.js";
import type { ToolChoice, ToolDefinition } from "../../engine/tool-calls/tool-call-types.js";
import { ChatTurn } from "../../serving/chat-turn.js";
import type { ModelCatalog } from "../../serving/model-catalog.js";
import { meterOf } from "../gateway-hooks.js";
import { clientGoneSignal, responseId, timingsOf } from "../generation.js";
import { checkJsonSchema, parseBody } from "../openai-schemas.js";
import { responsesSchema, type ResponsesRequest } from "../responses-schemas.js";
import { SseStream } from "../sse.js";

/**
 * OpenAI's Responses API, `POST /v1/responses`, stateless: the conversation comes whole in
 * `input` (messages, the model's function calls and their outputs), the answer is one output
 * message (plus function calls), streamed as the Responses events the official clients read.
 */

/** `input` and `instructions` as chat messages. */
export function responsesMessages(body: ResponsesRequest): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (body.instructions !== undefined) messages.push({ role: "system", content: body.instructions });
  if (typeof body.input === "string") {
    messages.push({ role: "user", content: body.input });
    return messages;
  }
  for (const item of body.input) {
    if (item.type === "function_call" || item.type === "function_call_output") {
      messages.push(...toolItemMessages(item));
      continue;
    }
    const content = typeof item.content === "string" ? item.content : item.content.map((part) => part.text).join("");
    messages.push({ role: item.role === "developer" ? "system" : item.role, content });
  }
  return messages;
}

/** A function call or its output as a chat message (the template decides how the model sees it). */
function toolItemMessages(item: Extract<ResponsesRequest["input"], readonly unknown[]>[number]): ChatMessage[] {
  if (item.type === "function_call") return [{ role: "assistant", content: "", toolCalls: [{ id: item.call_id, name: item.name, arguments: item.arguments }] }];
  if (item.type === "function_call_output") return [{ role: "tool", content: item.output, toolCallId: item.call_id }];
  return [];
}

function jsonOf(body: ResponsesRequest): object | "json" | undefined {
  const format = body.text?.format;
  if (format === undefined || format.type === "text") return undefined;
  if (format.type === "json_object") return "json";
  checkJsonSchema(format.schema);
  return format.schema;
}

/** The Responses API's flat function tools and tool choice as chat tools. */
function toolsOf(body: ResponsesRequest): { definitions: ToolDefinition[]; choice: ToolChoice; parallel: boolean } {
  const definitions: ToolDefinition[] = (body.tools ?? []).map((tool) => ({
    type: "function",
    function: { name: tool.name, ...(tool.description === undefined ? {} : { description: tool.description }), ...(tool.parameters === undefined ? {} : { parameters: tool.parameters }) },
  }));
  const choice = body.tool_choice;
  return {
    definitions,
    choice: choice === undefined ? "auto" : typeof choice === "string" ? choice : { type: "function", function: { name: choice.name } },
    parallel: body.parallel_tool_calls ?? true,
  };
}

const usageOf = (turn: ChatTurn, done: GenerateDone) => ({
  input_tokens: turn.promptTokens,
  input_tokens_details: { cached_tokens: done.cachedTokens },
  output_tokens: done.completionTokens,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: turn.promptTokens + done.completionTokens,
});

export function registerResponsesRoute(app: FastifyInstance, catalog: ModelCatalog): void {
  app.post("/v1/responses", async (request, reply: FastifyReply) => {
    const body = parseBody(responsesSchema, request.body);
    const meter = meterOf(request);
    meter.checkModel(body.model);
    const model = await catalog.get(body.model);
    const json = jsonOf(body);
    const turn = await ChatTurn.start({
      model,
      name: body.model,
      meter,
      messages: responsesMessages(body),
      maxTokens: body.max_output_tokens,
      maxTokensParam: "max_output_tokens",
      generate: {
        temperature: body.temperature,
        topP: body.top_p,
        ...(json === undefined ? {} : { json }),
        signal: clientGoneSignal(reply),
      },
      ...(body.tools === undefined ? {} : { tools: toolsOf(body) }),
    });
    const id = responseId("resp").replace("-", "_");
    const messageId = responseId("msg").replace("-", "_");
    const createdAt = Math.floor(Date.now() / 1000);
    const response = (status: string, output: object[], done?: GenerateDone) => ({
      id,
      object: "response",
      created_at: createdAt,
      status,
      model: body.model,
      output,
      parallel_tool_calls: body.parallel_tool_calls ?? true,
      tool_choice: body.tool_choice ?? "auto",
      tools: body.tools ?? [],
      temperature: body.temperature ?? model.info.defaults?.temperature ?? 1,
      top_p: body.top_p ?? model.info.defaults?.topP ?? 1,
      max_output_tokens: body.max_output_tokens ?? null,
      previous_response_id: null,
      instructions: body.instructions ?? null,
      text: body.text ?? { format: { type: "text" } },
      error: null,
      incomplete_details: done?.finishReason === "length" ? { reason: "max_output_tokens" } : null,
      usage: done === undefined ? null : usageOf(turn, done),
      metadata: body.metadata ?? {},
    });
    const message = (text: string, status: string) => ({
      type: "message",
      id: messageId,
      status,
      role: "assistant",
      content: status === "in_progress" && text === "" ? [] : [{ type: "output_text", text, annotations: [], logprobs: [] }],
    });
    const functionCall = (call: { id: string; name: string; arguments: string }, status: string) => ({
      type: "function_call",
      id: `fc_${call.id.replace(/^call_/, "")}`,
      call_id: call.id,
      name: call.name,
      arguments: call.arguments,
      status,
    });
    const statusOf = (done: GenerateDone) => (done.finishReason === "length" ? "incomplete" : "completed");
    const outputOf = (text: string, calls: readonly { id: string; name: string; arguments: string }[], status: string) => [
      ...(text !== "" || calls.length === 0 ? [message(text, status)] : []),
      ...calls.map((call) => functionCall(call, "completed")),
    ];

    if (!body.stream) {
      const [result] = await turn.collect();
      if (turn.cancelled || result === undefined) return reply.code(499).send();
      const status = statusOf(result.done);
      return response(status, outputOf(result.content, result.toolCalls, status), result.done);
    }

    turn.session.streaming();
    const stream = new SseStream(reply);
    let sequence = 0;
    const send = (type: string, data: object) => stream.event(type, { type, sequence_number: sequence++, ...data });
    let text = "";
    let messageIndex: number | undefined;
    let nextIndex = 0;
    // Calls by the parser's index: their output index and what was streamed.
    const calls = new Map<number, { outputIndex: number; id: string; name: string; arguments: string }>();
    const part = () => ({ item_id: messageId, output_index: messageIndex!, content_index: 0 });
    const openMessage = () => {
      if (messageIndex !== undefined) return;
      messageIndex = nextIndex++;
      send("response.output_item.added", { output_index: messageIndex, item: message("", "in_progress") });
      send("response.content_part.added", { ...part(), part: { type: "output_text", text: "", annotations: [] } });
    };
    try {
      send("response.created", { response: response("in_progress", []) });
      send("response.in_progress", { response: response("in_progress", []) });
      for await (const event of turn.events()) {
        if (event.type === "content") {
          if (event.text === "") continue;
          openMessage();
          text += event.text;
          send("response.output_text.delta", { ...part(), delta: event.text, logprobs: [] });
        } else if (event.type === "tool_call") {
          let call = calls.get(event.delta.index);
          if (call === undefined) {
            call = { outputIndex: nextIndex++, id: event.delta.id ?? "", name: event.delta.function.name ?? "", arguments: "" };
            calls.set(event.delta.index, call);
            send("response.output_item.added", { output_index: call.outputIndex, item: functionCall({ ...call, arguments: "" }, "in_progress") });
          }
          if (event.delta.function.arguments !== "") {
            call.arguments += event.delta.function.arguments;
            send("response.function_call_arguments.delta", { item_id: functionCall(call, "in_progress").id, output_index: call.outputIndex, delta: event.delta.function.arguments });
          }
        } else if (event.type === "done") {
          if (event.done.finishReason === "aborted") return reply;
          const status = statusOf(event.done);
          if (messageIndex === undefined && calls.size === 0) openMessage();
          if (messageIndex !== undefined) {
            send("response.output_text.done", { ...part(), text, logprobs: [] });
            send("response.content_part.done", { ...part(), part: { type: "output_text", text, annotations: [] } });
            send("response.output_item.done", { output_index: messageIndex, item: message(text, status) });
          }
          for (const call of calls.values()) {
            const item = functionCall(call, "completed");
            send("response.function_call_arguments.done", { item_id: item.id, output_index: call.outputIndex, arguments: call.arguments });
            send("response.output_item.done", { output_index: call.outputIndex, item });
          }
          const output = [...(messageIndex === undefined ? [] : [{ at: messageIndex, item: message(text, status) as object }]), ...[...calls.values()].map((call) => ({ at: call.outputIndex, item: functionCall(call, "completed") as object }))]
            .sort((a, b) => a.at - b.at)
            .map((entry) => entry.item);
          send(status === "completed" ? "response.completed" : "response.incomplete", { response: response(status, output, event.done), timings: timingsOf(event.done) });
        }
      }
      stream.end({ done: false });
    } catch (error) {
      request.log.error({ err: error }, "responses stream failed");
      stream.fail(error);
    }
    return reply;
  });
}
