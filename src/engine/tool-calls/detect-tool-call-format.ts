import type { ReasoningTags, ToolCallFormat } from "./tool-call-types.js";

const THINK: ReasoningTags = { start: "<think>", end: "</think>" };
const MISTRAL_THINK: ReasoningTags = { start: "[THINK]", end: "[/THINK]" };
const COMMAND_R_THINK: ReasoningTags = { start: "<|START_THINKING|>", end: "<|END_THINKING|>" };

function format(syntax: ToolCallFormat["syntax"], label: string, extra: Partial<ToolCallFormat> = {}): ToolCallFormat {
  return { syntax, label, nativeTools: syntax !== "generic", ...extra };
}

/** `<think>` tags where the template mentions them. */
function thinkTags(source: string): { reasoning?: ReasoningTags } {
  return source.includes("<think>") || source.includes("</think>") ? { reasoning: THINK } : {};
}

/**
 * The tool-call format of the model whose chat template is `templateSource`, told from the
 * template's text as llama.cpp's `common_chat_templates_apply` picks a handler (the checks and
 * their order follow its handlers for gpt-oss, Functionary, DeepSeek, Command R7B, Hermes/Qwen,
 * Granite, FireFunction, Llama 3.x and Mistral). A template without a known syntax gets the
 * generic JSON format, which works with any model under a grammar.
 */
export function detectToolCallFormat(templateSource: string): ToolCallFormat {
  const source = templateSource;
  const has = (text: string): boolean => source.includes(text);

  if (has("<|channel|>")) return format("gpt-oss", "gpt-oss (harmony)");
  if (has(">>>all")) return format("functionary-v3.2", "Functionary v3.2");
  if (has("<｜tool▁calls▁begin｜>") || has("<｜tool▁call▁begin｜>")) {
    // V3.1 writes the name before the separator; R1 writes the type ("function") there.
    const v31 = /\[['"]name['"]\]\s*\+\s*['"]<｜tool▁sep｜>/.test(source);
    return v31 ? format("deepseek-v3.1", "DeepSeek V3.1", { reasoning: THINK }) : format("deepseek-r1", "DeepSeek R1", { reasoning: THINK });
  }
  if (has("<|START_ACTION|>") && has("<|END_ACTION|>") && !has("<|START_TEXT|>")) {
    return format("command-r7b", "Command R7B", { reasoning: COMMAND_R_THINK });
  }
  // GLM and Laguna (<arg_key>/<arg_value>) and MiniMax (<invoke name=…>) write XML calls inside
  // <tool_call> that no parser here reads: the generic format (under its grammar) serves them.
  if (has("<tool_call>") && (has("<arg_key>") || has("<invoke name="))) return format("generic", "Generic (JSON)", thinkTags(source));
  if (has("<tool_call>") && has("<function=") && has("<parameter=")) return format("qwen3-coder", "Qwen3-Coder (XML)", thinkTags(source));
  if (has("<tool_call>")) return format("hermes", "Hermes 2 Pro / Qwen", thinkTags(source));
  if (has("<|tool_call|>")) {
    return has("<|/tool_call|>") ? format("phi4", "Phi-4", thinkTags(source)) : format("granite", "Granite 3", thinkTags(source));
  }
  if (has(" functools[")) return format("firefunction-v2", "FireFunction v2");
  if (has("<|start_header_id|>") && has("<function=")) return format("functionary-v3.1", "Functionary v3.1 (Llama 3.1)");
  if (has("<|start_header_id|>ipython<|end_header_id|>") || (has("<|start_header_id|>") && has("ipython"))) {
    return format("llama3", has("<|python_tag|>") ? "Llama 3.x (with built-in tools)" : "Llama 3.x");
  }
  if (has("[TOOL_CALLS]")) {
    const reasoning = has("[THINK]") ? { reasoning: MISTRAL_THINK } : {};
    if (has("[ARGS]")) return format("mistral", "Mistral", { callIds: has("[CALL_ID]"), ...reasoning });
    return format("mistral-nemo", "Mistral Nemo", reasoning);
  }
  return format("generic", "Generic (JSON)", thinkTags(source));
}

/**
 * Whether a rendered prompt leaves the model inside its thinking block (the prompt ends with the
 * start tag, as DeepSeek R1 distills' and QwQ's do): pass it as `startsInReasoning`.
 */
export function promptOpensReasoning(format: ToolCallFormat, prompt: string): boolean {
  return format.reasoning !== undefined && prompt.trimEnd().endsWith(format.reasoning.start);
}
