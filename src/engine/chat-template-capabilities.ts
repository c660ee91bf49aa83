import type { Template } from "@huggingface/jinja";
import { renderTemplate, type UsageReport } from "./chat-template-runtime.js";

/**
 * What a chat template can render, found the way llama.cpp finds it (`common/jinja/caps.cpp`):
 * by rendering small probe conversations and watching which inputs the template reads.
 */
export interface ChatTemplateCapabilities {
  /** It reads a system message's content. Where not, the system text joins the first user turn. */
  readonly systemRole: boolean;
  /** It reads the offered `tools` (describes them to the model). */
  readonly tools: boolean;
  /** It reads an assistant turn's `tool_calls`: the model can be shown and make tool calls. */
  readonly toolCalls: boolean;
  /** It reads a second tool call of the same turn. */
  readonly parallelToolCalls: boolean;
  /** It reads tool call `arguments` as an object (so they are parsed from JSON before rendering). */
  readonly objectArguments: boolean;
  /** It renders `content` given as a string. */
  readonly stringContent: boolean;
  /** It renders `content` given as a list of `{type: "text", text}` parts. */
  readonly typedContent: boolean;
  /** It keeps `reasoning_content` of earlier turns, not only of the last one. */
  readonly preserveReasoning: boolean;
  /** It reads `reasoning_effort` (or `reasoning_strength`). */
  readonly reasoningEffort: boolean;
}

const NOW = new Date(2024, 6, 26);
const STRING_MARKER = "STRING_MARKER";
const REASONING_MARKER = "<REASONING_CONTENT_PLACEHOLDER>";

interface ProbeResult {
  /** Whether the render finished. */
  readonly ok: boolean;
  readonly text: string;
  /** What the template read, up to where it stopped when it threw. */
  readonly usage: UsageReport;
}

function probe(template: Template, messages: unknown[], extra: Record<string, unknown> = {}): ProbeResult {
  let usage: UsageReport | undefined;
  const variables = { messages, tools: [], bos_token: "", eos_token: "", add_generation_prompt: true, ...extra };
  try {
    const text = renderTemplate(template, variables, { now: NOW, trackUsage: (report) => (usage = report) });
    return { ok: true, text, usage: usage! };
  } catch (error) {
    // A probe that throws is part of the method: a template that refuses a system message or
    // tool calls says so by failing.
    if (!usage) throw error;
    return { ok: false, text: "", usage };
  }
}

const PROBE_TOOLS = [
  {
    name: "tool",
    type: "function",
    function: {
      name: "tool1",
      description: "Tool description",
      parameters: { type: "object", properties: { arg: { type: "string", description: "Arg description" } }, required: ["arg"] },
    },
  },
];

function toolConversation(argumentsValue: unknown, calls = 1): unknown[] {
  const toolCalls = Array.from({ length: calls }, (_, index) => ({
    id: `call0000${index + 1}`,
    type: "function",
    function: { name: "tool1", arguments: argumentsValue },
  }));
  return [
    { role: "user", content: "User message" },
    { role: "assistant", content: "", tool_calls: toolCalls },
    { role: "tool", content: "Tool response", tool_call_id: "call00001" },
    { role: "assistant", content: "The tool response was 'tool response'" },
    { role: "user", content: "User message" },
  ];
}

/** Probes `template` as llama.cpp does. */
export function probeCapabilities(template: Template): ChatTemplateCapabilities {
  let stringContent = true;
  let typedContent = false;
  // llama.cpp watches for list operations on the string; @huggingface/jinja's values cannot be
  // watched that way, so the output decides, as minja (llama.cpp's engine before) decided.
  const asString = probe(template, [{ role: "user", content: STRING_MARKER }]);
  if (!asString.ok || !asString.text.includes(STRING_MARKER)) {
    const asParts = probe(template, [{ role: "user", content: [{ type: "text", text: STRING_MARKER }] }]);
    if (asParts.ok && asParts.text.includes(STRING_MARKER)) {
      typedContent = true;
      stringContent = false;
    }
  }

  const system = probe(template, [
    { role: "system", content: "System message" },
    { role: "user", content: "User message" },
  ]);
  // A failed render still reports what it read before failing, as in llama.cpp.
  const systemRole = system.usage.used(["messages", 0, "content"]);

  let tools = true;
  let toolCalls = true;
  let objectArguments = false;
  const withObject = probe(template, toolConversation({ arg: "value" }), { tools: PROBE_TOOLS });
  if (withObject.ok) {
    const usage = withObject.usage;
    if (!usage.used(["tools", 0, "function", "name"])) tools = false;
    if (!usage.used(["messages", 1, "tool_calls"])) toolCalls = false;
    else if (usage.used(["messages", 1, "tool_calls", 0, "function", "arguments", "arg"])) objectArguments = true;
  }
  if (!objectArguments) {
    const withString = probe(template, toolConversation('{"arg": "value"}'), { tools: PROBE_TOOLS });
    if (!withString.ok) {
      tools = false;
      toolCalls = false;
    } else {
      if (!withString.usage.used(["tools", 0, "function", "name"])) tools = false;
      if (!withString.usage.used(["messages", 1, "tool_calls"])) toolCalls = false;
    }
  }

  const parallel = probe(template, toolConversation(objectArguments ? { arg: "value" } : '{"arg": "value"}', 2), { tools: PROBE_TOOLS });
  const parallelToolCalls = parallel.ok && parallel.usage.used(["messages", 1, "tool_calls", 1, "function"]);

  const reasoning = probe(
    template,
    [
      { role: "user", content: "User message" },
      { role: "assistant", content: "Assistant message", reasoning_content: REASONING_MARKER },
      { role: "user", content: "User message" },
      { role: "assistant", content: "Assistant message", reasoning_content: "Reasoning content" },
      { role: "user", content: "User message" },
    ],
    { enable_thinking: true, ...preserveReasoningVariables(true) },
  );
  const preserveReasoning = reasoning.ok && reasoning.text.includes(REASONING_MARKER);

  const effort = probe(template, [{ role: "user", content: "User message" }], { enable_thinking: true, ...reasoningEffortVariables("low") });
  const reasoningEffort = effort.usage.used(["reasoning_effort"]) || effort.usage.used(["reasoning_strength"]);
  return { systemRole, tools, toolCalls, parallelToolCalls, objectArguments, stringContent, typedContent, preserveReasoning, reasoningEffort };
}

/**
 * llama.cpp's `preserve_reasoning` template argument, under each name the templates use for it
 * (`jinja::caps_apply_preserve_reasoning`).
 */
export function preserveReasoningVariables(enabled: boolean): Record<string, boolean> {
  return { preserve_thinking: enabled, clear_thinking: !enabled, truncate_history_thinking: !enabled, drop_thinking: !enabled };
}

/** llama.cpp's `reasoning_effort` template argument, under both names templates use. */
export function reasoningEffortVariables(effort: string): Record<string, string> {
  return { reasoning_effort: effort, reasoning_strength: effort };
}
