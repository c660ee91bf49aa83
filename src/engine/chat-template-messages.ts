import { InvalidRequestError } from "../core/errors.js";
import type { ChatMessage } from "./engine.js";
import type { ChatTemplateCapabilities } from "./chat-template-capabilities.js";
import type { ChatTemplateFamily } from "./chat-template-family.js";

/** A message as a template reads it: OpenAI's wire shape, snake_case keys. */
export type TemplateMessage = Record<string, unknown>;

/**
 * The `messages` a template renders, built from Grove's messages as llama.cpp builds them
 * (`common_chat_templates_apply_jinja` in `common/chat.cpp`), step by step in its order:
 * the OpenAI JSON of each message, content as parts for templates that read only parts,
 * `developer` as `system` (except for gpt-oss, which has a developer role), a system message
 * joined to the next turn where the template ignores system messages, tool call arguments parsed
 * where the template reads them as an object, and the reshaping some families need.
 * @throws InvalidRequestError when tool call arguments must be parsed and are not JSON
 */
export function templateMessages(
  messages: readonly ChatMessage[],
  source: string,
  capabilities: ChatTemplateCapabilities,
  family: ChatTemplateFamily | undefined,
): TemplateMessage[] {
  // StepFun: leftover whitespace drives the model into reasoning loops (llama.cpp #24181).
  const trim = source.includes("You have access to the following functions in JSONSchema format");
  let result = messages.map((message) => toTemplateMessage(message, trim));
  if (family !== "gpt-oss") {
    for (const message of result) if (message.role === "developer") message.role = "system";
  }
  if (!capabilities.systemRole && result[0]?.role === "system") {
    const [system, next] = result;
    if (next) next.content = `${String(system!.content)}\n${String(next.content)}`;
    result = result.slice(1);
  }
  if (capabilities.typedContent && !capabilities.stringContent) {
    for (const message of result) {
      if (typeof message.content === "string") message.content = [{ type: "text", text: message.content }];
    }
  }
  if (capabilities.objectArguments) parseArguments(result);
  return reshapeForFamily(result, family, source);
}

/** `common_chat_msg::to_json_oaicompat`: empty fields are left out, content is never null. */
function toTemplateMessage(message: ChatMessage, trim: boolean): TemplateMessage {
  const text = (value: string) => (trim ? value.trim() : value);
  const json: TemplateMessage = { role: message.role, content: text(message.content) };
  const reasoning = text(message.reasoningContent ?? "");
  if (reasoning !== "") json.reasoning_content = reasoning;
  if (message.name) json.name = message.name;
  if (message.toolCallId) json.tool_call_id = message.toolCallId;
  if (message.toolCalls && message.toolCalls.length > 0) {
    json.tool_calls = message.toolCalls.map((call) => ({
      type: "function",
      function: { name: call.name, arguments: call.arguments },
      ...(call.id ? { id: call.id } : {}),
    }));
  }
  return json;
}

function parseArguments(messages: TemplateMessage[]): void {
  for (const message of messages) {
    for (const call of (message.tool_calls ?? []) as { function: { name: string; arguments: unknown } }[]) {
      if (typeof call.function.arguments !== "string") continue;
      try {
        call.function.arguments = JSON.parse(call.function.arguments);
      } catch (error) {
        throw new InvalidRequestError(
          `The arguments of the call to '${call.function.name}' are not JSON, and this model's chat template reads them as an object: ${(error as Error).message}`,
          { param: "messages", cause: error },
        );
      }
    }
  }
}

function reshapeForFamily(messages: TemplateMessage[], family: ChatTemplateFamily | undefined, source: string): TemplateMessage[] {
  switch (family) {
    case "ministral-3":
      return messages.map(ministralMessage);
    case "gpt-oss":
      // The template reads reasoning as `thinking`, and a turn that thinks then calls has no content.
      return messages.map((message) => {
        if (typeof message.reasoning_content !== "string") return message;
        const { content, ...rest } = message;
        return message.tool_calls ? { ...rest, thinking: message.reasoning_content } : { ...rest, content, thinking: message.reasoning_content };
      });
    case "lfm2":
    case "lfm2.5":
      return messages.map((message) => (typeof message.reasoning_content === "string" ? { ...message, thinking: message.reasoning_content } : message));
    case "deepseek-v4":
      return sortToolResults(messages);
    case "gemma4":
      // Templates before Google's "OpenAI Chat Completions" revision read results from the calling turn.
      return source.includes("{#- OpenAI Chat Completions:") ? messages : gemma4ToolResponses(messages);
    default:
      return messages;
  }
}

/** Ministral and Magistral: system and assistant content as blocks, thinking first. */
function ministralMessage(message: TemplateMessage): TemplateMessage {
  if (message.role !== "system" && message.role !== "assistant") return message;
  const blocks: unknown[] = [];
  if (typeof message.reasoning_content === "string") blocks.push({ type: "thinking", thinking: message.reasoning_content });
  if (typeof message.content === "string") blocks.push({ type: "text", text: message.content });
  else if (Array.isArray(message.content)) blocks.push(...message.content);
  const { reasoning_content: _reasoning, ...rest } = message;
  return { ...rest, content: blocks };
}

/**
 * DeepSeek V4 renders a run of tool results as one user block, in the order of the calls of the
 * turn before (matched by id), whatever order the results came in.
 */
function sortToolResults(messages: TemplateMessage[]): TemplateMessage[] {
  const result = messages.slice();
  let callOrder = new Map<string, number>();
  for (let index = 0; index < result.length; ) {
    const message = result[index]!;
    const calls = message.tool_calls as { id?: string }[] | undefined;
    if (message.role === "assistant" && calls && calls.length > 0) {
      callOrder = new Map(calls.flatMap((call, order) => (call.id ? [[call.id, order] as const] : [])));
      index++;
      continue;
    }
    if (message.role !== "user" && message.role !== "tool") {
      index++;
      continue;
    }
    const toolPositions: number[] = [];
    let end = index;
    for (; end < result.length; end++) {
      const role = result[end]!.role;
      if (role === "tool") toolPositions.push(end);
      else if (role !== "user") break;
    }
    if (toolPositions.length > 1 && callOrder.size > 0) {
      const order = (each: TemplateMessage) => callOrder.get(String(each.tool_call_id ?? "")) ?? 0;
      const sorted = toolPositions.map((position) => result[position]!).sort((a, b) => order(a) - order(b));
      toolPositions.forEach((position, k) => (result[position] = sorted[k]!));
    }
    index = end;
  }
  return result;
}

/**
 * Gemma 4's earlier templates: a calling turn, its tool results and the answer that follows
 * become one assistant turn with `tool_responses` (`convert_tool_responses_gemma4`).
 */
function gemma4ToolResponses(messages: TemplateMessage[]): TemplateMessage[] {
  const result: TemplateMessage[] = [];
  const hasCalls = (message: TemplateMessage) => Array.isArray(message.tool_calls) && message.tool_calls.length > 0;
  for (let index = 0; index < messages.length; ) {
    const message = messages[index]!;
    if (message.role !== "assistant" || !hasCalls(message)) {
      result.push(message);
      index++;
      continue;
    }
    const toolCalls = [...(message.tool_calls as { function?: { name?: string } }[])];
    const responses: { name: string; response: unknown }[] = [];
    index++;
    for (; index < messages.length && messages[index]!.role === "tool"; index++) {
      const tool = messages[index]!;
      let response: unknown = tool.content;
      if (typeof tool.content === "string") {
        try {
          response = JSON.parse(tool.content);
        } catch {
          // Not JSON: the text itself is the response.
        }
      }
      const name = toolCalls[responses.length]?.function?.name || String(tool.tool_call_id ?? "");
      responses.push({ name, response });
    }
    const turn: TemplateMessage = { role: "assistant", tool_calls: toolCalls };
    if (responses.length > 0) turn.tool_responses = responses;
    const next = messages[index];
    if (next?.role === "assistant" && !hasCalls(next) && hasContent(next)) {
      turn.content = next.content;
      index++;
    }
    if (typeof message.reasoning_content === "string") turn.reasoning_content = message.reasoning_content;
    result.push(turn);
  }
  return result;
}

function hasContent(message: TemplateMessage): boolean {
  const content = message.content;
  return (typeof content === "string" && content !== "") || (Array.isArray(content) && content.length > 0);
}
