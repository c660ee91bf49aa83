import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { RunningGrove } from "../services.js";
import { startTestGrove, type TestModel } from "../test-support/grove-fixture.js";

// llama-server's chat options on the shipped chat model (ChatML), served by the real server: a
// final assistant message continued (prefill, continue_final_message), llama.cpp's built-in
// template names (--chat-template), --tags, and the sizes a context overflow reports.

const REPO = resolve(fileURLToPath(new URL("../../", import.meta.url)));
const CHAT_MODEL = join(REPO, "data", "demo", "models", "demo-s-chat-f16.gguf");

let directory: string;
let grove: RunningGrove;
let builtin: RunningGrove;

const post = async (url: string, path: string, body: unknown) => {
  const response = await fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, json: JSON.parse(text), text };
};

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-chat-continuation-"));
  const model = (name: string): TestModel => ({ path: CHAT_MODEL, directory: join(directory, name), cleanup: async () => {} });
  grove = await startTestGrove(model("plain"), { parallel: 2, contextSize: 256 });
  builtin = await startTestGrove(model("builtin"), { parallel: 1, contextSize: 256, chatTemplate: "command-r", tags: "chat,small" });
});

after(async () => {
  await grove?.close();
  await builtin?.close();
  await rm(directory, { recursive: true, force: true });
});

const CONVERSATION = [
  { role: "system", content: "Book" },
  { role: "user", content: "What is the best book" },
];

describe("a final assistant message is continued", () => {
  test("as llama-server's prefill: the prompt ends with the assistant's text after the generation prompt; parts join with a blank line", async () => {
    const prefill = await post(grove.url, "/v1/chat/completions", { messages: [...CONVERSATION, { role: "assistant", content: "Whill" }], max_tokens: 2, verbose: true });
    assert.equal(prefill.status, 200, prefill.text);
    assert.ok(prefill.json.__verbose.prompt.endsWith("<|im_start|>user\nWhat is the best book<|im_end|>\n<|im_start|>assistant\nWhill"), prefill.json.__verbose.prompt);
    const parts = [{ type: "text", text: "Wh" }, { type: "text", text: "ill" }];
    const joined = await post(grove.url, "/v1/chat/completions", { messages: [...CONVERSATION, { role: "assistant", content: parts }], max_tokens: 2, verbose: true });
    assert.ok(joined.json.__verbose.prompt.endsWith("<|im_start|>assistant\nWh\n\nill"), joined.json.__verbose.prompt);
    // A user message's parts join with one newline, as llama.cpp joins them for a template.
    const user = await post(grove.url, "/apply-template", { messages: [{ role: "user", content: parts }] });
    assert.ok(user.json.prompt.includes("<|im_start|>user\nWh\nill<|im_end|>"), user.json.prompt);
  });

  test("continue_final_message (vLLM's name) gives the same prompt; /apply-template and input_tokens follow it", async () => {
    const messages = [...CONVERSATION, { role: "assistant", content: "Whill" }];
    const explicit = await post(grove.url, "/v1/chat/completions", { messages, max_tokens: 2, verbose: true, add_generation_prompt: false, continue_final_message: true });
    const implicit = await post(grove.url, "/v1/chat/completions", { messages, max_tokens: 2, verbose: true });
    assert.equal(explicit.status, 200, explicit.text);
    assert.equal(explicit.json.__verbose.prompt, implicit.json.__verbose.prompt);
    const template = await post(grove.url, "/apply-template", { messages });
    assert.ok(template.json.prompt.endsWith("<|im_start|>assistant\nWhill"), template.json.prompt);
    const counted = await post(grove.url, "/v1/chat/completions/input_tokens", { messages });
    assert.equal(counted.json.input_tokens, implicit.json.usage.prompt_tokens);
  });

  test("bad input: both switches on, two final assistant messages, a call continued, a wrong type — each a 400 naming the problem", async () => {
    const both = await post(grove.url, "/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }], add_generation_prompt: true, continue_final_message: true });
    assert.equal(both.status, 400, both.text);
    assert.equal(both.json.error.param, "continue_final_message");
    const twice = await post(grove.url, "/v1/chat/completions", { messages: [{ role: "user", content: "test" }, { role: "assistant", content: "test" }, { role: "assistant", content: "test" }] });
    assert.equal(twice.status, 400, twice.text);
    assert.match(twice.json.error.message, /2 or more assistant messages/);
    const call = { id: "call_1", type: "function", function: { name: "f", arguments: "{}" } };
    const withCall = await post(grove.url, "/v1/chat/completions", { messages: [{ role: "user", content: "x" }, { role: "assistant", content: "", tool_calls: [call] }] });
    assert.equal(withCall.status, 400, withCall.text);
    assert.match(withCall.json.error.message, /tool calls/);
    const user = await post(grove.url, "/v1/chat/completions", { messages: [{ role: "user", content: "x" }], add_generation_prompt: false, continue_final_message: true });
    assert.equal(user.status, 400, user.text);
    const wrongType = await post(grove.url, "/v1/chat/completions", { messages: [{ role: "user", content: "x" }], continue_final_message: "yes" });
    assert.equal(wrongType.status, 400, wrongType.text);
    assert.equal(wrongType.json.error.param, "continue_final_message");
  });
});

describe("llama.cpp's built-in templates and --tags", () => {
  test("--chat-template command-r renders with llama.cpp's own formatter", async () => {
    const response = await post(builtin.url, "/apply-template", { messages: [{ role: "system", content: "You are a test." }, { role: "user", content: "Hi there" }] });
    assert.equal(response.status, 200, response.text);
    assert.equal(response.json.prompt, "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a test.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
    const chat = await post(builtin.url, "/v1/chat/completions", { messages: [{ role: "user", content: "Hi there" }, { role: "assistant", content: "Hel" }], max_tokens: 2, verbose: true });
    assert.equal(chat.status, 200, chat.text);
    assert.ok(chat.json.__verbose.prompt.endsWith("<|CHATBOT_TOKEN|>Hel"), chat.json.__verbose.prompt);
  });

  test("/props and /api/show report the template in use and what it reads", async () => {
    const props = (await (await fetch(`${builtin.url}/props`)).json()) as { chat_template: string; chat_template_caps: Record<string, boolean> };
    assert.equal(props.chat_template, "command-r");
    assert.equal(props.chat_template_caps.supports_tools, false);
    assert.equal(props.chat_template_caps.supports_system_role, true);
    const show = await post(builtin.url, "/api/show", { model: builtin.defaultModel });
    assert.equal(show.json.template, "command-r");
    assert.deepEqual(show.json.template_notes, ["the template does not read tools: offered tools are described in the system message, calls read as JSON (the generic format)"]);
    const plain = (await (await fetch(`${grove.url}/props`)).json()) as { chat_template: string };
    assert.match(plain.chat_template, /<\|im_start\|>/);
  });

  test("/v1/models lists --tags with the model", async () => {
    const models = (await (await fetch(`${builtin.url}/v1/models`)).json()) as { data: { tags?: string[] }[] };
    assert.deepEqual(models.data[0]!.tags, ["chat", "small"]);
  });

  test("bad input: --chat-template with --chat-template-file, Jinja that does not parse, a malformed tag", async () => {
    const model = (name: string): TestModel => ({ path: CHAT_MODEL, directory: join(directory, name), cleanup: async () => {} });
    await assert.rejects(startTestGrove(model("both"), { chatTemplate: "llama3", chatTemplateFile: join(directory, "t.jinja") }), /--chat-template or --chat-template-file, not both/);
    await assert.rejects(startTestGrove(model("broken"), { chatTemplate: "{% if %}" }), /chat template does not parse/);
    await assert.rejects(startTestGrove(model("tag"), { tags: "a b" }), /expected labels/);
  });
});

describe("a context overflow", () => {
  test("answers 400 with llama-server's type and sizes, OpenAI's code", async () => {
    const messages = Array.from({ length: 60 }, () => CONVERSATION).flat();
    for (const stream of [false, true]) {
      const response = await post(grove.url, "/chat/completions", { messages, stream });
      assert.equal(response.status, 400, response.text);
      assert.equal(response.json.error.type, "exceed_context_size_error");
      assert.equal(response.json.error.code, "context_length_exceeded");
      assert.equal(response.json.error.n_ctx, 256);
      assert.ok(response.json.error.n_prompt_tokens > 256, response.text);
    }
  });
});
