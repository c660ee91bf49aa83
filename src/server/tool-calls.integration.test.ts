import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import Anthropic from "@anthropic-ai/sdk";
import { ChatOpenAI } from "@langchain/openai";
import { generateText, stepCountIs, tool } from "ai";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { z } from "zod";
import type { RunningGrove } from "../services.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";
import { llamaSource } from "../test-support/llama-source.js";

// Tool calls end to end with the clients agents are built on — the official `openai` client,
// the AI SDK (generateText, two steps) and LangChain (bindTools), Anthropic's SDK and the
// Responses API — on a generated model given Qwen 2.5's real chat template (Hermes-style
// `<tool_call>` calls, from the llama.cpp source node-llama-cpp bundles). The model is untrained:
// a call is made because `tool_choice` requires one and Grove's grammar then allows only a valid
// call in the family's own syntax — the grammar, the template and the parser are what is tested.
// One call per turn (parallel_tool_calls false): the grammar then ends after the call, where an
// untrained model would otherwise go on writing more calls to the token limit.

let TEMPLATE = "";

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 } }, required: ["city"], additionalProperties: false },
  },
};

let model: TestModel;
let grove: RunningGrove;
let openai: OpenAI;
let modelId: string;

before(async () => {
  TEMPLATE = join(await llamaSource(), "models", "templates", "Qwen-Qwen2.5-7B-Instruct.jinja");
  assert.ok(existsSync(TEMPLATE), `no ${TEMPLATE} in the bundled llama.cpp source`);
  model = await createTestModel();
  grove = await startTestGrove(model, { parallel: 2, contextSize: 1024, chatTemplateFile: TEMPLATE });
  openai = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
  modelId = grove.defaultModel;
});

after(async () => {
  await grove?.close();
  await model?.cleanup();
});

const question = [{ role: "user" as const, content: "What is the weather in Paris?" }];

describe("tool calls through the OpenAI chat API", () => {
  test("tool_choice required: a call to the tool with arguments valid under its schema, finish_reason tool_calls", async () => {
    const response = await openai.chat.completions.create({ model: modelId, messages: question, tools: [weatherTool], tool_choice: "required", parallel_tool_calls: false, max_tokens: 96, seed: 1 });
    const choice = response.choices[0]!;
    assert.equal(choice.finish_reason, "tool_calls");
    const call = choice.message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    assert.equal(call.type, "function");
    assert.equal(call.function.name, "get_weather");
    assert.match(call.id, /^call_/);
    const args = JSON.parse(call.function.arguments) as { city: unknown };
    assert.equal(typeof args.city, "string");
    assert.equal(choice.message.content, null);
  });

  test("the round trip: the call and its result sent back, tool_choice none answers in text", async () => {
    const first = await openai.chat.completions.create({ model: modelId, messages: question, tools: [weatherTool], tool_choice: { type: "function", function: { name: "get_weather" } }, parallel_tool_calls: false, max_tokens: 96, seed: 2 });
    const call = first.choices[0]!.message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    const second = await openai.chat.completions.create({
      model: modelId,
      messages: [...question, first.choices[0]!.message, { role: "tool", tool_call_id: call.id, content: '{"temperature_c": 21}' }],
      tools: [weatherTool],
      tool_choice: "none",
      max_tokens: 8,
    });
    const answer = second.choices[0]!;
    assert.equal(answer.message.tool_calls, undefined);
    assert.equal(typeof answer.message.content, "string");
    assert.notEqual(answer.finish_reason, "tool_calls");
    // The call and its result are in the prompt the template rendered.
    assert.ok(second.usage!.prompt_tokens > first.usage!.prompt_tokens + 10);
  });

  test("streaming: tool_calls deltas (id and name first, then arguments) add up to the non-streamed call", async () => {
    const stream = await openai.chat.completions.create({ model: modelId, messages: question, tools: [weatherTool], tool_choice: "required", parallel_tool_calls: false, max_tokens: 96, seed: 1, stream: true });
    let id = "";
    let name = "";
    let args = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta;
      for (const piece of delta?.tool_calls ?? []) {
        if (piece.id) id = piece.id;
        if (piece.function?.name) name += piece.function.name;
        args += piece.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.match(id, /^call_/);
    assert.equal(name, "get_weather");
    assert.equal(finish, "tool_calls");
    const whole = await openai.chat.completions.create({ model: modelId, messages: question, tools: [weatherTool], tool_choice: "required", parallel_tool_calls: false, max_tokens: 96, seed: 1 });
    assert.deepEqual(JSON.parse(args), JSON.parse((whole.choices[0]!.message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall).function.arguments));
  });

  test("parallel_tool_calls false: exactly one call", async () => {
    const response = await openai.chat.completions.create({ model: modelId, messages: question, tools: [weatherTool], tool_choice: "required", parallel_tool_calls: false, max_tokens: 200, seed: 5 });
    assert.equal(response.choices[0]!.message.tool_calls!.length, 1);
  });
});

describe("tool calls through the agent frameworks", () => {
  test("AI SDK generateText: step 1 calls the tool (executed by the SDK), step 2 answers with its result", async () => {
    const provider = createOpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused" });
    const seen: string[] = [];
    const result = await generateText({
      model: provider.chat(modelId),
      messages: question,
      maxOutputTokens: 256,
      seed: 3,
      tools: {
        get_weather: tool({
          description: "The weather in a city",
          // The grammar keeps the city short (maxLength 12 in the schema sent); zod counts UTF-16 units, so no bound here.
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => {
            seen.push(city);
            return { temperatureC: 21 };
          },
        }),
      },
      stopWhen: stepCountIs(2),
      providerOptions: { openai: { parallelToolCalls: false } },
      prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? "required" : "none" }),
    });
    assert.equal(result.steps.length, 2, JSON.stringify(result.steps.map((step) => ({ finish: step.finishReason, content: step.content }))).slice(0, 2000));
    assert.equal(result.steps[0]!.toolCalls[0]!.toolName, "get_weather");
    assert.equal(seen.length, 1, JSON.stringify(result.steps[0]!.content).slice(0, 1000));
    assert.deepEqual(result.steps[0]!.toolResults[0]!.output, { temperatureC: 21 });
    assert.equal(result.steps[1]!.toolCalls.length, 0);
  });

  test("LangChain ChatOpenAI.bindTools: the AI message carries the parsed call", async () => {
    const chat = new ChatOpenAI({ model: modelId, apiKey: "unused", configuration: { baseURL: `${grove.url}/v1` }, maxTokens: 96, maxRetries: 0 });
    const bound = chat.bindTools([weatherTool], { tool_choice: "required", parallel_tool_calls: false });
    const message = await bound.invoke("What is the weather in Paris?");
    assert.equal(message.tool_calls?.[0]?.name, "get_weather");
    assert.equal(typeof message.tool_calls?.[0]?.args.city, "string");
  });

  test("Anthropic SDK: tool_choice any gives a tool_use block and stop_reason tool_use; the result goes back as tool_result", async () => {
    const anthropic = new Anthropic({ baseURL: grove.url, apiKey: "unused", maxRetries: 0 });
    const tools = [{ name: "get_weather", description: "The weather in a city", input_schema: weatherTool.function.parameters as Anthropic.Tool.InputSchema }];
    const message = await anthropic.messages.create({ model: modelId, max_tokens: 256, messages: question, tools, tool_choice: { type: "any", disable_parallel_tool_use: true } });
    assert.equal(message.stop_reason, "tool_use");
    const use = message.content.find((block) => block.type === "tool_use") as Anthropic.ToolUseBlock;
    assert.equal(use.name, "get_weather");
    assert.equal(typeof (use.input as { city: unknown }).city, "string");
    const answer = await anthropic.messages.create({
      model: modelId,
      max_tokens: 8,
      tools,
      tool_choice: { type: "none" },
      messages: [...question, { role: "assistant", content: message.content }, { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "21 C" }] }],
    });
    assert.notEqual(answer.stop_reason, "tool_use");
  });

  test("Responses API: a function_call output item with call_id, name and arguments", async () => {
    const response = await openai.responses.create({
      model: modelId,
      input: "What is the weather in Paris?",
      tools: [{ type: "function", name: "get_weather", description: "The weather in a city", parameters: weatherTool.function.parameters, strict: true }],
      tool_choice: "required",
      parallel_tool_calls: false,
      max_output_tokens: 96,
      // Greedy: sampled, the random test model can spin the city out past max_output_tokens and
      // the cut-off call is text, not a function_call (it did once in a full run).
      temperature: 0,
    });
    const call = response.output.find((item) => item.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall;
    assert.equal(call.name, "get_weather");
    assert.match(call.call_id, /^call_/);
    assert.equal(typeof (JSON.parse(call.arguments) as { city: unknown }).city, "string");
  });
});

describe("a template without tool support (the generic JSON format) and Ollama's /api/chat", () => {
  let plain: RunningGrove;
  before(async () => {
    plain = await startTestGrove(model, { parallel: 1, contextSize: 1024, home: join(model.directory, "plain-home") });
  });
  after(async () => {
    await plain?.close();
  });

  test("under tool_choice auto the grammar allows a call or an answer, both read into their fields; tools and results reach the prompt", async () => {
    const ollama = new Ollama({ host: plain.url });
    const tools = [weatherTool];
    let calls = 0;
    let answers = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const response = await ollama.chat({ model: plain.defaultModel, messages: question, tools, options: { seed, num_predict: 160 } });
      const call = response.message.tool_calls?.[0];
      if (call !== undefined) {
        calls++;
        assert.equal(call.function.name, "get_weather");
        assert.equal(typeof (call.function.arguments as { city?: unknown }).city, "string");
        assert.equal(response.message.content, "");
      } else {
        answers++;
        assert.ok(!response.message.content.includes('"response"'), response.message.content);
      }
    }
    assert.ok(calls > 0, `no call in 10 seeds (${answers} answers)`);
    const bare = await ollama.chat({ model: plain.defaultModel, messages: question, options: { num_predict: 1 } });
    const withTools = await ollama.chat({ model: plain.defaultModel, messages: question, tools, options: { num_predict: 1 } });
    const withResult = await ollama.chat({
      model: plain.defaultModel,
      messages: [...question, { role: "assistant", content: "", tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }] }, { role: "tool", content: "21 C", tool_name: "get_weather" }],
      tools,
      options: { num_predict: 1 },
    });
    assert.ok(withTools.prompt_eval_count > bare.prompt_eval_count + 20, "the tools are in the system text");
    assert.ok(withResult.prompt_eval_count > withTools.prompt_eval_count + 5, "the call and its result are in the prompt");
  });

  test("a call cut off by max_tokens inside its arguments is no tool_use block: the output is text, stop_reason max_tokens", async () => {
    const anthropic = new Anthropic({ baseURL: plain.url, apiKey: "unused", maxRetries: 0 });
    const tools = [{ name: "get_weather", description: "The weather in a city", input_schema: { type: "object" as const, properties: { city: { type: "string", maxLength: 12 } }, required: ["city"] } }];
    let cutCalls = 0;
    let wholeCalls = 0;
    // The grammar forces a call (tool_choice any); limits from a few tokens up cut it at every point.
    for (let limit = 4; limit <= 96; limit += 4) {
      const message = await anthropic.messages.create({ model: plain.defaultModel, max_tokens: limit, tool_choice: { type: "any", disable_parallel_tool_use: true }, tools, messages: [{ role: "user", content: "What is the weather in Paris?" }] });
      const uses = message.content.filter((block) => block.type === "tool_use");
      if (uses.length > 0) {
        // Whole arguments, never a cut-off `_raw` (the limit may still fall just after them).
        assert.equal(typeof (uses[0]!.input as { city?: unknown }).city, "string", JSON.stringify(message));
        wholeCalls++;
        continue;
      }
      assert.equal(message.stop_reason, "max_tokens", JSON.stringify(message));
      const text = message.content.find((block) => block.type === "text")?.text ?? "";
      if (text.includes('"arguments"')) cutCalls++;
    }
    assert.ok(cutCalls > 0, "some limit cuts a call inside its arguments; its text is the answer");
    assert.ok(wholeCalls > 0, "a limit high enough gives the whole call");
  });
});
