import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { detectToolCallFormat, promptOpensReasoning } from "./detect-tool-call-format.js";
import type { ToolCallSyntax } from "./tool-call-types.js";
import { llamaSource } from "../../test-support/llama-source.js";

// The lines of real templates (llama.cpp's models/templates) that tell each family apart.
const SNIPPETS: readonly [string, string, ToolCallSyntax, string?][] = [
  ["Hermes 2 Pro", "{{- '<tool_call>\\n' }}{{- tool_call | tojson }}{{- '\\n</tool_call>' }}", "hermes"],
  ["Qwen3", "{{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content }}{{- '<tool_call>\\n{\"name\": \"' }}", "hermes", "<think>"],
  ["Qwen3-Coder", "{{- '<tool_call>\\n<function=' + tool_call.name + '>\\n' }}{{- '<parameter=' + args_name + '>\\n' }}", "qwen3-coder"],
  ["Llama 3.1", "{{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' }}{{- '<|python_tag|>' + tool_call.name }}", "llama3"],
  ["Llama 3.2", "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}{%- if message.role == 'ipython' %}", "llama3"],
  ["Mistral Nemo", "{{- '[TOOL_CALLS][' }}{{- tool_call | tojson }}", "mistral-nemo"],
  ["Mistral Small 3.2", "{{- '[TOOL_CALLS]' + tool.name + '[CALL_ID]' + tool.id + '[ARGS]' + arguments }}", "mistral"],
  ["Magistral", "[SYSTEM_PROMPT]{{- '[THINK]' + thinking + '[/THINK]' }}{{- '[TOOL_CALLS]' + name + '[ARGS]' + arguments }}", "mistral", "[THINK]"],
  ["FireFunction v2", "{{ ' functools[' + tool_calls | tojson + ']' }}<|start_header_id|>", "firefunction-v2"],
  ["Functionary v3.1", "<|start_header_id|>assistant<|end_header_id|>{{ '<function=' + tool_call.name + '>' }}", "functionary-v3.1"],
  ["Functionary v3.2", "{{ '>>>all\\n' + message['content'] }}{{ '>>>' + tool_call['function']['name'] }}", "functionary-v3.2"],
  ["DeepSeek R1", "{{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n'}}<think>", "deepseek-r1", "<think>"],
  ["DeepSeek V3.1", "{{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>'+ tool['function']['name'] + '<｜tool▁sep｜>' + tool['function']['arguments']}}", "deepseek-v3.1", "<think>"],
  ["gpt-oss", "{{- '<|start|>assistant<|channel|>analysis<|message|>' + message.thinking + '<|end|>' }}", "gpt-oss"],
  ["Command R7B", "<|START_THINKING|>{{message.tool_plan}}<|END_THINKING|><|START_ACTION|>[ ]<|END_ACTION|>", "command-r7b", "<|START_THINKING|>"],
  ["Granite 3.3", "respond only with <|tool_call|> followed by a JSON list of tools used. {%- elif thinking %} <think></think>", "granite", "<think>"],
  ["Phi-4-mini", "{{ '<|tool|>' + message['tools'] + '<|/tool|>' }}<|tool_call|>{{ calls }}<|/tool_call|>", "phi4"],
  ["Gemma 2", "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}", "generic"],
];

describe("detectToolCallFormat", () => {
  for (const [family, source, syntax, reasoningStart] of SNIPPETS) {
    test(`${family} → ${syntax}`, () => {
      const format = detectToolCallFormat(source);
      assert.equal(format.syntax, syntax);
      assert.equal(format.reasoning?.start, reasoningStart);
      assert.equal(format.nativeTools, syntax !== "generic");
    });
  }

  test("Mistral's [CALL_ID] is noticed", () => {
    assert.equal(detectToolCallFormat("[TOOL_CALLS]{{ name }}[CALL_ID]{{ id }}[ARGS]").callIds, true);
    assert.equal(detectToolCallFormat("[TOOL_CALLS]{{ name }}[ARGS]").callIds, false);
  });

  test("a prompt that opens the thinking block", () => {
    const format = detectToolCallFormat("<think>");
    assert.equal(promptOpensReasoning(format, "<｜Assistant｜><think>\n"), true);
    assert.equal(promptOpensReasoning(format, "<|im_start|>assistant\n<think>\n\n</think>\n\n"), false);
    assert.equal(promptOpensReasoning(detectToolCallFormat("{{ messages }}"), "<think>"), false);
  });
});

// The whole templates, from the llama.cpp source node-llama-cpp bundles (cloned from its local bundle, no download).
const TEMPLATES = join(await llamaSource(), "models", "templates");
const EXPECTED: Record<string, ToolCallSyntax> = {
  "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja": "hermes",
  "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja": "hermes",
  "Qwen-Qwen2.5-7B-Instruct.jinja": "hermes",
  "Qwen-Qwen3-0.6B.jinja": "hermes",
  "Qwen-QwQ-32B.jinja": "hermes",
  "ibm-granite-granite-4.0.jinja": "hermes",
  "Qwen3-Coder.jinja": "qwen3-coder",
  "Qwen3.5-4B.jinja": "qwen3-coder",
  "meta-llama-Llama-3.1-8B-Instruct.jinja": "llama3",
  "meta-llama-Llama-3.2-3B-Instruct.jinja": "llama3",
  "meta-llama-Llama-3.3-70B-Instruct.jinja": "llama3",
  "mistralai-Mistral-Nemo-Instruct-2407.jinja": "mistral-nemo",
  "Mistral-Small-3.2-24B-Instruct-2506.jinja": "mistral",
  "unsloth-mistral-Devstral-Small-2507.jinja": "mistral",
  "mistralai-Ministral-3-14B-Reasoning-2512.jinja": "mistral",
  "fireworks-ai-llama-3-firefunction-v2.jinja": "firefunction-v2",
  "meetkai-functionary-medium-v3.1.jinja": "functionary-v3.1",
  "meetkai-functionary-medium-v3.2.jinja": "functionary-v3.2",
  "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja": "deepseek-r1",
  "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja": "deepseek-r1",
  "llama-cpp-deepseek-r1.jinja": "deepseek-r1",
  "deepseek-ai-DeepSeek-V3.1.jinja": "deepseek-v3.1",
  "openai-gpt-oss-120b.jinja": "gpt-oss",
  "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja": "command-r7b",
  "ibm-granite-granite-3.3-2B-Instruct.jinja": "granite",
  "unsloth-Apriel-1.5.jinja": "hermes",
  "GLM-4.6.jinja": "generic",
  "poolside-Laguna-XS.2.jinja": "generic",
  "MiniMax-M3.jinja": "generic",
  "google-gemma-2-2b-it.jinja": "generic",
  "microsoft-Phi-3.5-mini-instruct.jinja": "generic",
};

describe("detectToolCallFormat on llama.cpp's bundled templates", () => {
  for (const [file, syntax] of Object.entries(EXPECTED)) {
    test(`${file} → ${syntax}`, () => {
      assert.equal(detectToolCallFormat(readFileSync(join(TEMPLATES, file), "utf8")).syntax, syntax);
    });
  }
});
