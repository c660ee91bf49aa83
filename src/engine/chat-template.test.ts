import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EngineError, InvalidRequestError } from "../core/errors.js";
import { ChatTemplate } from "./chat-template.js";
import { chatTemplateFamily } from "./chat-template-family.js";
import { strftime } from "./chat-template-runtime.js";
import type { ChatMessage } from "./engine.js";

const tokens = { bosToken: "<s>", eosToken: "</s>" };
const call: ChatMessage = { role: "assistant", content: "", toolCalls: [{ id: "call00001", name: "get_weather", arguments: '{"city": "Paris"}' }] };

describe("ChatTemplate", () => {
  test("a template that does not parse is an EngineError at load", () => {
    assert.throws(() => new ChatTemplate("{% for message in messages %}", tokens), EngineError);
  });

  test("raise_exception refuses the conversation with the template's words", () => {
    const template = new ChatTemplate("{% if messages[0]['role'] == 'user' %}{{ raise_exception('Only system first!') }}{% endif %}", tokens);
    assert.throws(
      () => template.render([{ role: "user", content: "Hi" }]),
      (error) => error instanceof InvalidRequestError && error.message.includes("Only system first!"),
    );
  });

  test("a template failing for another reason is an EngineError", () => {
    const template = new ChatTemplate("{{ messages[0].content | no_such_filter }}", tokens);
    assert.throws(() => template.render([{ role: "user", content: "Hi" }]), EngineError);
  });

  test("without a template: ChatML, which takes system messages but not tools", () => {
    const template = new ChatTemplate(undefined, tokens);
    assert.equal(template.render([{ role: "user", content: "Hi" }]), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    assert.equal(template.capabilities.systemRole, true);
    assert.equal(template.capabilities.tools, false);
    assert.equal(template.capabilities.toolCalls, false);
  });

  test("a template that ignores system messages gets the system text joined to the next turn", () => {
    const template = new ChatTemplate("{% for m in messages %}{% if m.role == 'user' %}[U]{{ m.content }}{% endif %}{% endfor %}", tokens);
    assert.equal(template.capabilities.systemRole, false);
    const text = template.render([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
    ]);
    assert.equal(text, "[U]Be brief.\nHi");
  });

  test("tool call arguments are parsed for a template that reads them as an object", () => {
    const template = new ChatTemplate(
      "{% for m in messages %}{% for c in m.tool_calls or [] %}{{ c.function.name }}({{ c.function.arguments | tojson }}){% endfor %}{% endfor %}",
      tokens,
    );
    assert.equal(template.capabilities.objectArguments, true);
    assert.equal(template.render([call], { addGenerationPrompt: false }), 'get_weather({"city": "Paris"})');
    const broken: ChatMessage = { ...call, toolCalls: [{ name: "get_weather", arguments: "{city" }] };
    assert.throws(() => template.render([broken]), InvalidRequestError);
  });

  test("tool call arguments stay text for a template that prints them", () => {
    const template = new ChatTemplate("{% for m in messages %}{% for c in m.tool_calls or [] %}{{ c.function.arguments }}{% endfor %}{% endfor %}", tokens);
    assert.equal(template.capabilities.toolCalls, true);
    assert.equal(template.capabilities.objectArguments, false);
    assert.equal(template.render([call], { addGenerationPrompt: false }), '{"city": "Paris"}');
  });

  test("tools, tool results and reasoning reach the template in OpenAI's shape", () => {
    const template = new ChatTemplate(
      "{{ tools | tojson }}|{% for m in messages %}{{ m | tojson }}{% endfor %}|{{ add_generation_prompt is defined }}",
      tokens,
    );
    const text = template.render(
      [
        { role: "assistant", content: "Done.", reasoningContent: "Think." },
        { role: "tool", content: "22", toolCallId: "call00001", name: "get_weather" },
      ],
      { tools: [{ name: "get_weather" }], addGenerationPrompt: false },
    );
    assert.equal(
      text,
      '[{"type": "function", "function": {"name": "get_weather", "description": "", "parameters": {}}}]|' +
        '{"role": "assistant", "content": "Done.", "reasoning_content": "Think."}' +
        '{"role": "tool", "content": "22", "name": "get_weather", "tool_call_id": "call00001"}|False',
    );
  });

  test("content goes as text parts to a template that reads only parts", () => {
    const template = new ChatTemplate("{% for m in messages %}{% for part in m.content %}{{ part.text }}{% endfor %}{% endfor %}", tokens);
    assert.equal(template.capabilities.typedContent, true);
    assert.equal(template.capabilities.stringContent, false);
    assert.equal(template.render([{ role: "user", content: "Hi" }]), "Hi");
  });

  test("dates: strftime_now, date_string and datetime at the given time", () => {
    const template = new ChatTemplate("{{ strftime_now('%B %-d, %Y') }}|{{ date_string }}|{{ datetime }}", tokens);
    assert.equal(template.render([], { now: new Date(2024, 6, 6) }), "July 6, 2024|06 Jul 2024|Jul 06 2024");
  });

  test("template arguments override, and reasoning_effort is set under both names", () => {
    const template = new ChatTemplate("{{ enable_thinking }} {{ reasoning_strength }} {{ custom }}", tokens);
    assert.equal(template.render([], { enableThinking: false, templateArguments: { reasoning_effort: "low", custom: 3 } }), "False low 3");
  });
});

test("strftime follows C's conversions in the C locale", () => {
  const date = new Date(2026, 11, 7, 14, 5, 9);
  assert.equal(strftime(date, "%Y-%m-%d %H:%M:%S %a %A %b %B %j %I%p %% %e"), "2026-12-07 14:05:09 Mon Monday Dec December 341 02PM %  7");
});

test("chatTemplateFamily tells families apart by llama.cpp's markers, first match first", () => {
  assert.equal(chatTemplateFamily("<|start|>{{ '<|channel|>' }}"), "gpt-oss");
  assert.equal(chatTemplateFamily("<tool_call><function=x><parameter=y>"), "qwen3-coder");
  assert.equal(chatTemplateFamily("dsml_token DSML function_calls tool_calls"), "deepseek-v3.2");
  assert.equal(chatTemplateFamily("dsml_token DSML tool_calls"), "deepseek-v4");
  assert.equal(chatTemplateFamily("{{ messages }}"), undefined);
});
