import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { InvalidRequestError } from "../core/errors.js";
import { llamaSource } from "../test-support/llama-source.js";
import { readLlamaTemplateCases } from "../test-support/llama-template-cases.js";
import { ChatTemplate, type ChatTemplateRenderOptions } from "./chat-template.js";
import type { ChatMessage, ChatTool } from "./engine.js";

// Every chat template of the llama.cpp source node-llama-cpp bundles renders a fixed set of
// conversations; where llama.cpp's own tests state the text a template renders, Grove renders
// exactly that text. The source is read as data from a local clone of the bundle.
const checkout = await llamaSource();
const templateDir = join(checkout, "models", "templates");
const templateFiles = (await readdir(templateDir)).filter((name) => name.endsWith(".jinja")).sort();
const { conversation, cases } = await readLlamaTemplateCases(checkout);
const NOW = new Date(2024, 6, 26, 9, 30);

async function bundled(name: string, tokens = { bosToken: "", eosToken: "" }): Promise<ChatTemplate> {
  return new ChatTemplate(await readFile(join(templateDir, name), "utf8"), tokens);
}

const WEATHER: ChatTool = {
  name: "get_weather",
  description: "The current weather of a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

const SYSTEM_AND_USER: ChatMessage[] = [
  { role: "system", content: "You answer in one sentence." },
  { role: "user", content: "What is a grove?" },
];
const MULTI_TURN: ChatMessage[] = [
  { role: "user", content: "Hello there." },
  { role: "assistant", content: "Hello! How can I help?" },
  { role: "user", content: "Name a tree." },
];
// Mistral's templates want tool call ids of 9 letters and digits.
const TOOL_ROUND: ChatMessage[] = [
  { role: "user", content: "What is the weather in Paris?" },
  { role: "assistant", content: "", toolCalls: [{ id: "call00001", name: "get_weather", arguments: '{"city": "Paris, France"}' }] },
  { role: "tool", content: '{"temperature": 22}', toolCallId: "call00001", name: "get_weather" },
  { role: "assistant", content: "It is 22 degrees in Paris." },
];

interface Special {
  /** Why the template needs more than rendering as it is. */
  readonly why: string;
  /** The template refuses the tool round, with these words. */
  readonly refusesToolRound?: RegExp;
  /** What shows the handling at work. */
  readonly check: (template: ChatTemplate) => void;
}

const render = (template: ChatTemplate, messages: ChatMessage[], options: ChatTemplateRenderOptions = {}) =>
  template.render(messages, { now: NOW, ...options });
const toolRound = (template: ChatTemplate) => render(template, TOOL_ROUND, { tools: [WEATHER], addGenerationPrompt: false });
const includes = (text: string, part: string) => assert.ok(text.includes(part), `${JSON.stringify(part)} missing from:\n${text}`);
const thinkingTurn: ChatMessage[] = [
  { role: "user", content: "Q" },
  { role: "assistant", content: "Answer", reasoningContent: "Let me think." },
  { role: "user", content: "Q2" },
];

/**
 * The templates that need more than rendering as they are, and why; each entry is checked, so the
 * table stays true as the bundled source changes. Handling by llama.cpp's chat code first, then
 * the Jinja features of llama.cpp's engine that @huggingface/jinja lacks (ChatTemplateInterpreter).
 */
const SPECIAL: Record<string, Special> = {
  "google-gemma-2-2b-it.jinja": {
    why: "raises on a system message: the system text joins the first user turn, as llama.cpp does; it knows no tool role, so a tool round is refused",
    refusesToolRound: /Conversation roles must alternate/,
    check: (template) => {
      assert.equal(template.capabilities.systemRole, false);
      includes(render(template, SYSTEM_AND_USER), "<start_of_turn>user\nYou answer in one sentence.\nWhat is a grove?<end_of_turn>");
    },
  },
  "openai-gpt-oss-120b.jinja": {
    why: "raises on content that holds its channel markers, which llama.cpp patches out of the source; a developer role of its own",
    check: (template) => {
      const answered: ChatMessage[] = [{ role: "user", content: "Q" }, { role: "assistant", content: "<|channel|>final<|message|>A" }, { role: "user", content: "Q2" }];
      includes(render(template, answered), "<|start|>assistant<|channel|>final<|message|><|channel|>final<|message|>A<|end|>");
      includes(render(template, [{ role: "developer", content: "Be terse." }, { role: "user", content: "Q" }]), "<|start|>developer<|message|># Instructions\n\nBe terse.");
    },
  },
  "mistralai-Ministral-3-14B-Reasoning-2512.jinja": {
    why: "reads system and assistant content as blocks, thinking first (llama.cpp's Ministral 3 handler)",
    check: (template) => includes(render(template, thinkingTurn), "[INST]Q[/INST][THINK]Let me think.[/THINK]Answer</s>[INST]Q2[/INST]"),
  },
  "unsloth-mistral-Devstral-Small-2507.jinja": {
    why: "has Ministral 3's markers, so llama.cpp (and Grove) hand it content blocks too",
    check: (template) => assert.equal(template.family, "ministral-3"),
  },
  "google-gemma-4-31B-it-interleaved.jinja": {
    why: "an earlier Gemma 4 template that reads tool results from the calling turn: llama.cpp folds them in",
    check: (template) => includes(toolRound(template), "<|tool_response>response:get_weather{temperature:22}<tool_response|>It is 22 degrees in Paris."),
  },
  "StepFun3.5-Flash.jinja": {
    why: "content is trimmed before rendering (llama.cpp #24181: whitespace sends the model into reasoning loops)",
    check: (template) => includes(render(template, [{ role: "user", content: "  padded  \n" }]), "<|im_start|>user\npadded<|im_end|>"),
  },
  "ByteDance-Seed-OSS.jinja": {
    why: "a dict literal with integer keys",
    check: (template) => includes(render(template, SYSTEM_AND_USER), "<seed:bos>system\nYou answer in one sentence.<seed:eos>"),
  },
  "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja": {
    why: "loops over `tools` when there are none (llama.cpp: a loop over undefined runs no iteration)",
    check: (template) => includes(render(template, MULTI_TURN), "<|im_start|>user\nName a tree.<|im_end|>"),
  },
  "NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja": {
    why: "loops over `tools` when there are none",
    check: (template) => includes(render(template, MULTI_TURN), "<|im_start|>user\nName a tree.<|im_end|>"),
  },
  "CohereForAI-c4ai-command-r-plus-tool_use.jinja": {
    why: "loops over `tools` when there are none, and adds strings to undefined values",
    check: (template) => includes(render(template, MULTI_TURN), "Name a tree."),
  },
  "fireworks-ai-llama-3-firefunction-v2.jinja": {
    why: "adds the undefined `functions` to a string (llama.cpp: undefined counts as \"\" there)",
    check: (template) => includes(render(template, MULTI_TURN), "Today is Jul 26 2024."),
  },
  "meetkai-functionary-medium-v3.1.jinja": {
    why: "`selectattr` on a none `tools`",
    check: (template) => includes(render(template, MULTI_TURN), "Name a tree."),
  },
  "meetkai-functionary-medium-v3.2.jinja": {
    why: "unpacks tuples in a `for`, and prints examples with `|string` as Python does",
    check: (template) => {
      const pick: ChatTool = { name: "pick", description: "Pick a number", parameters: { type: "object", properties: { n: { type: "integer", maximum: 5, examples: [{ a: "x" }] } } } };
      includes(render(template, [{ role: "user", content: "Q" }], { tools: [pick] }), "// Pick a number\ntype pick = (_: {\n// Maximum=5\n// Example n:\n// {\"a\": \"x\"}\nn?: number,");
    },
  },
  "unsloth-Apriel-1.5.jinja": {
    why: "`|length` of an undefined value, and tools printed with `|string` as Python dicts",
    check: (template) => includes(toolRound(template), "{'type': 'function', 'function': {'name': 'get_weather'"),
  },
  "Apriel-1.6-15b-Thinker-fixed.jinja": {
    why: "tools printed with `|string` as Python dicts",
    check: (template) => includes(toolRound(template), "{'type': 'function', 'function': {'name': 'get_weather'"),
  },
  "Kimi-K2-Instruct.jinja": {
    why: "`list.append` and `list.pop` to pair tool results with calls",
    check: (template) => includes(toolRound(template), "## Return of functions.get_weather:0"),
  },
  "Kimi-K2-Thinking.jinja": {
    why: "`list.append` and `list.pop` to pair tool results with calls",
    check: (template) => includes(toolRound(template), "## Return of functions.get_weather:0"),
  },
  "tencent-Hy3.jinja": {
    why: "builds its special tokens with `str.format`",
    check: (template) => includes(render(template, MULTI_TURN), "<｜hy_User:opensource｜>Name a tree."),
  },
  "openbmb-MiniCPM5-1B.jinja": {
    why: "the `|min` filter",
    check: (template) => includes(toolRound(template), '<function name="get_weather"><param name="city">Paris, France</param></function>'),
  },
};

describe("every chat template bundled with llama.cpp", () => {
  test("the bundle holds the templates", () => {
    assert.ok(templateFiles.length >= 60, `only ${templateFiles.length} templates in ${templateDir}`);
  });

  for (const file of templateFiles) {
    describe(file, () => {
      const special = SPECIAL[file];
      const load = () => bundled(file, { bosToken: "<s>", eosToken: "</s>" });

      test("a system message and a user message", async () => {
        const text = render(await load(), SYSTEM_AND_USER);
        includes(text, "What is a grove?");
        includes(text, "You answer in one sentence.");
      });

      test("several turns", async () => {
        const text = render(await load(), MULTI_TURN);
        for (const message of MULTI_TURN) includes(text, message.content);
      });

      test("tools offered, a call, its result and the answer", async () => {
        const template = await load();
        if (special?.refusesToolRound) {
          assert.throws(() => toolRound(template), (error) => error instanceof InvalidRequestError && special.refusesToolRound!.test(error.message));
          return;
        }
        const text = toolRound(template);
        includes(text, "What is the weather in Paris?");
        includes(text, "It is 22 degrees in Paris.");
        if (template.capabilities.tools) includes(text, "get_weather");
        // A template without tool calls may drop the call and its result, as it does in llama.cpp.
        if (template.capabilities.toolCalls) for (const part of ["Paris, France", "temperature"]) includes(text, part);
      });

      if (special) test(`special handling: ${special.why}`, async () => special.check(await load()));
    });
  }

  test("every entry of the special table names a bundled template", () => {
    for (const file of Object.keys(SPECIAL)) assert.ok(templateFiles.includes(file), file);
  });
});

describe("llama.cpp tests/test-chat-template.cpp: the exact texts", () => {
  test("the cases are read", () => assert.ok(cases.length >= 30, `${cases.length} cases`));
  for (const testCase of cases.filter((each) => each.supportedWithJinja)) {
    test(testCase.name, () => {
      const template = new ChatTemplate(testCase.template, { bosToken: testCase.bosToken, eosToken: testCase.eosToken });
      // Some cases add turns with roles of the template's own (granite's assistant_tool_call).
      const messages = [...conversation, ...testCase.extraConversation].map(([role, content]) => ({ role, content }) as ChatMessage);
      assert.equal(template.render(messages, { now: NOW }), testCase.expected);
    });
  }
});

describe("llama.cpp tests/test-chat.cpp: generation prompts (test_template_generation_prompt)", () => {
  const messages: ChatMessage[] = [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "Hey there!" },
  ];
  const expectedEnds: [string, string][] = [
    ["Qwen3.5-4B.jinja", "<|im_start|>assistant\n<think>\n"],
    ["openai-gpt-oss-120b.jinja", "<|start|>assistant"],
    ["google-gemma-4-31B-it.jinja", "<|turn>model\n"],
    ["meetkai-functionary-medium-v3.2.jinja", "<|start_header_id|>assistant<|end_header_id|>\n\n>>>"],
    ["Reka-Edge.jinja", "assistant: <think>\n"],
    ["moonshotai-Kimi-K2.jinja", "<|im_assistant|>assistant<|im_middle|>"],
    ["LFM2-8B-A1B.jinja", "<|im_start|>assistant\n"],
    ["LFM2.5-Instruct.jinja", "<|im_start|>assistant\n"],
    ["LFM2.5-8B-A1B.jinja", "<|im_start|>assistant\n"],
    ["GigaChat3-10B-A1.8B.jinja", "assistant<|role_sep|>\n"],
    ["deepseek-ai-DeepSeek-V3.2.jinja", "<｜Assistant｜><think>"],
    ["deepseek-ai-DeepSeek-V4.jinja", "<｜Assistant｜><think>"],
    ["deepseek-ai-DeepSeek-V4-Flash-0731.jinja", "<｜Assistant｜><think>"],
    ["openbmb-MiniCPM5-1B.jinja", "<|im_start|>assistant\n<think>\n"],
  ];
  for (const [file, end] of expectedEnds) {
    test(`${file} ends with ${JSON.stringify(end)}`, async () => {
      const text = (await bundled(file)).render(messages, { now: NOW });
      assert.ok(text.includes("You are a helpful assistant.") && text.includes("Hey there!"), text);
      assert.ok(text.endsWith(end), text);
    });
  }
});

describe("llama.cpp tests/test-chat.cpp: template details", () => {
  test("developer messages render as system messages", () => {
    const template = new ChatTemplate(
      "{%- for message in messages -%}\n  {{- '<|' + message.role + '|>' + message.content + '<|end|>' -}}\n{%- endfor -%}\n" +
        "{%- if add_generation_prompt -%}\n  {{- '<|assistant|>' -}}\n{%- endif -%}",
      { bosToken: "", eosToken: "" },
    );
    const text = template.render([{ role: "developer", content: "You are a helpful developer assistant." }], { addGenerationPrompt: false });
    assert.equal(text, "<|system|>You are a helpful developer assistant.<|end|>");
  });

  test("LFM2.5 8B-A1B shows earlier reasoning through `thinking`", async () => {
    const template = await bundled("LFM2.5-8B-A1B.jinja");
    const call: ChatMessage = { role: "assistant", content: "", reasoningContent: "I'm\nthinking", toolCalls: [{ name: "special_function", arguments: '{"arg1":1}' }] };
    const result: ChatMessage = { role: "tool", name: "special_function", toolCallId: "call0", content: "Sunny" };
    includes(template.render([{ role: "user", content: "Hey there!" }, call, result]), "<think>I'm\nthinking</think>");
  });

  test("DeepSeek V4 renders tool results in the order of the calls", async () => {
    const template = await bundled("deepseek-ai-DeepSeek-V4.jinja");
    const calls: ChatMessage = {
      role: "assistant",
      content: "",
      toolCalls: [
        { id: "call_1", name: "get_time", arguments: '{"city": "Paris"}' },
        { id: "call_2", name: "get_weather", arguments: '{"city": "Paris"}' },
      ],
    };
    const time: ChatMessage = { role: "tool", name: "get_time", toolCallId: "call_1", content: "12:00" };
    const weather: ChatMessage = { role: "tool", name: "get_weather", toolCallId: "call_2", content: "sunny" };
    for (const results of [[weather, time], [time, weather]]) {
      const text = template.render([{ role: "user", content: "Question" }, calls, ...results], { addGenerationPrompt: false });
      assert.ok(text.includes("<tool_result>12:00</tool_result>\n\n<tool_result>sunny</tool_result>"), text);
    }
  });

  test("DeepSeek V4 drops earlier reasoning only when asked and no tools were called", async () => {
    const template = await bundled("deepseek-ai-DeepSeek-V4.jinja");
    const conversation: ChatMessage[] = [
      { role: "user", content: "Question 1" },
      { role: "assistant", content: "Answer 1", reasoningContent: "thinking A1" },
      { role: "user", content: "Question 2" },
      { role: "assistant", content: "Answer 2", reasoningContent: "thinking A2" },
    ];
    const render = (dropThinking: boolean) =>
      template.render(conversation, { addGenerationPrompt: false, templateArguments: { thinking: true, drop_thinking: dropThinking } });
    assert.ok(render(false).includes("<｜Assistant｜><think>thinking A1</think>"));
    assert.ok(!render(true).includes("<｜Assistant｜><think>thinking A1</think>"));
    assert.ok(render(true).includes("<｜Assistant｜></think>Answer 1"));
    assert.ok(render(true).includes("<｜Assistant｜><think>thinking A2</think>"));
  });

  test("reasoning effort: the templates that read it (test_reasoning_effort_caps)", async () => {
    const expected: [string, boolean][] = [
      ["deepseek-ai-DeepSeek-V4.jinja", true],
      ["muse-glimmer.jinja", true],
      ["tencent-Hy3.jinja", true],
      ["openai-gpt-oss-120b.jinja", true],
      ["upstage-Solar-Open-100B.jinja", true],
      ["Cohere2MoE.jinja", true],
      ["meta-llama-Llama-3.1-8B-Instruct.jinja", false],
      ["Qwen-Qwen3-0.6B.jinja", false],
    ];
    for (const [file, reads] of expected) assert.equal((await bundled(file)).capabilities.reasoningEffort, reads, file);
    assert.equal((await bundled("deepseek-ai-DeepSeek-V4.jinja")).capabilities.preserveReasoning, true);
  });
});

describe("llama.cpp tools/server/tests/unit/test_template.py", () => {
  const testTool: ChatTool = {
    name: "test",
    description: "",
    parameters: { type: "object", properties: { success: { type: "boolean", const: true } }, required: ["success"] },
  };
  const question: ChatMessage[] = [{ role: "user", content: "What is today?" }];
  const tokens = { bosToken: "<s>", eosToken: "</s>" };
  const reasoning: [string, boolean, string][] = [
    ["deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", true, "<think>\n"],
    ["Qwen-Qwen3-0.6B.jinja", true, "<|im_start|>assistant\n"],
    ["Qwen-Qwen3-0.6B.jinja", false, "<|im_start|>assistant\n<think>\n\n</think>\n\n"],
    ["Qwen-QwQ-32B.jinja", true, "<|im_start|>assistant\n<think>\n"],
    ["CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", true, "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"],
  ];
  for (const [file, enableThinking, end] of reasoning) {
    test(`test_reasoning: ${file}, thinking ${enableThinking ? "on" : "off"}, ends with ${JSON.stringify(end)}`, async () => {
      const template = await bundled(file, tokens);
      for (const tools of [undefined, [], [testTool]]) {
        const text = template.render(question, { now: NOW, enableThinking, tools });
        assert.ok(text.endsWith(end), text);
      }
    });
  }

  for (const [file, date] of [
    ["meta-llama-Llama-3.3-70B-Instruct.jinja", "26 Jul 2024"],
    ["fireworks-ai-llama-3-firefunction-v2.jinja", "Jul 26 2024"],
  ] as const) {
    test(`test_date_inside_prompt: ${file} shows ${date}`, async () => {
      const template = await bundled(file, tokens);
      for (const tools of [undefined, [], [testTool]]) assert.ok(template.render(question, { now: NOW, tools }).includes(date));
    });
  }

  test("test_add_generation_prompt: Llama 3.3 opens the assistant turn only when asked", async () => {
    const template = await bundled("meta-llama-Llama-3.3-70B-Instruct.jinja", tokens);
    const opening = "<|start_header_id|>assistant<|end_header_id|>";
    assert.ok(template.render(question, { now: NOW }).includes(opening));
    assert.ok(!template.render(question, { now: NOW, addGenerationPrompt: false }).includes(opening));
  });
});
