/**
 * The template families llama.cpp handles with code of their own (`common/chat.cpp`,
 * `common_chat_try_specialized_template`), told apart by the same markers in the template's
 * source and in the same order, so that the first match wins as there. A template of no family
 * is rendered as it is (llama.cpp's "autoparser" path).
 */
export type ChatTemplateFamily =
  | "ministral-3"
  | "gpt-oss"
  | "muse-glimmer"
  | "functionary-v3.2"
  | "kimi-k2"
  | "kimi-k3"
  | "cohere2-moe"
  | "lfm2"
  | "lfm2.5"
  | "gigachat-v3"
  | "minimax-m3"
  | "deepseek-v3.2"
  | "deepseek-v4"
  | "gemma4"
  | "minicpm5"
  | "qwen3-coder";

const has = (source: string, ...markers: string[]) => markers.every((marker) => source.includes(marker));

const DETECTIONS: readonly [ChatTemplateFamily, (source: string) => boolean][] = [
  // Mistral Small 3.2 has [CALL_ID]; Ministral and Magistral do not.
  ["ministral-3", (source) => has(source, "[SYSTEM_PROMPT]", "[TOOL_CALLS]", "[ARGS]") && !source.includes("[CALL_ID]")],
  ["gpt-oss", (source) => has(source, "<|channel|>")],
  ["muse-glimmer", (source) => has(source, "<atem:function_calls>", "<|eom|>")],
  ["functionary-v3.2", (source) => has(source, ">>>all", ">>>${recipient}")],
  ["kimi-k2", (source) => has(source, "<|tool_calls_section_begin|>", "<|tool_call_begin|>")],
  ["kimi-k3", (source) => has(source, "<|open|>", "<|close|>", "<|end_of_msg|>")],
  ["cohere2-moe", (source) => has(source, "<|START_TEXT|>", "<|START_ACTION|>")],
  ["lfm2", (source) => has(source, "<|tool_list_start|>", "<|tool_list_end|>")],
  ["lfm2.5", (source) => has(source, "List of tools: [") && !source.includes("<|tool_list_start|>")],
  ["gigachat-v3", (source) => has(source, "<|role_sep|>", "<|message_sep|>") && !source.includes("<|function_call|>")],
  ["minimax-m3", (source) => has(source, "]<]minimax[>[", "<tool_call>", "<invoke name=")],
  // V4 names its tool call block "tool_calls" where V3.2 says "function_calls".
  ["deepseek-v3.2", (source) => has(source, "dsml_token", "DSML", "function_calls")],
  ["deepseek-v4", (source) => has(source, "dsml_token", "DSML", "tool_calls")],
  ["gemma4", (source) => has(source, "'<|tool_call>call:'")],
  ["minicpm5", (source) => has(source, "Tool usage guidelines:", '<function name="', '<param name="')],
  // Also Nemotron Nano 3, Qwen3.5 and StepFun-3.5-Flash.
  ["qwen3-coder", (source) => has(source, "<tool_call>", "<function=", "<parameter=")],
];

/** The family of a template's source, or undefined for a template rendered as it is. */
export function chatTemplateFamily(source: string): ChatTemplateFamily | undefined {
  return DETECTIONS.find(([, matches]) => matches(source))?.[0];
}

/**
 * llama.cpp's two edits of a template's source before it parses it (`common_chat_templates_init`),
 * both for templates that raise on conversations llama.cpp itself produces: gpt-oss refuses
 * content holding its own channel markers, and Mistral templates with `[TOOL_CALLS]` refuse an
 * assistant turn with neither content nor tool calls.
 */
export function patchTemplateSource(source: string): string {
  let patched = source;
  if (patched.includes("<|channel|>") && patched.includes("in message.content or")) {
    patched = patched.replaceAll(
      '{%- if "<|channel|>analysis<|message|>" in message.content or "<|channel|>final<|message|>" in message.content %}',
      "{%- if false %}",
    );
  }
  if (patched.includes("[TOOL_CALLS]") && patched.includes("if (message['content'] is none or")) {
    patched = patched.replaceAll(
      "{%- if (message['content'] is none or message['content'] == '' or message['content']|length == 0) and " +
        "(message['tool_calls'] is not defined or message['tool_calls'] is none or message['tool_calls']|length == 0) %}",
      "{%- if false %}",
    );
  }
  return patched;
}
