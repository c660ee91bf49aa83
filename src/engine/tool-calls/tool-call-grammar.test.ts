// Grammars for every family, checked with llama.cpp's own grammar parser and sampler: each must
// compile, accept the family's sample call (the output the parser tests read), and refuse a call
// to a tool that was not offered. The shipped demo model's vocabulary (loaded vocabulary-only)
// splits the text into tokens; the grammar sees their text, as in generation.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { InvalidRequestError } from "../../core/errors.js";
import { probeGrammar } from "../../native/grammar-probe.js";
import { NativeModel } from "../../native/native-model.js";
import { parseToolCallOutput } from "./tool-call-parser.js";
import { toolCallGrammar } from "./tool-call-grammar.js";
import type { ToolCallFormat, ToolCallSyntax, ToolChoice, ToolDefinition } from "./tool-call-types.js";

const MODEL = fileURLToPath(new URL("../../../data/demo/models/demo-s-chat-q4_0.gguf", import.meta.url));
const THINK = { start: "<think>", end: "</think>" };

function format(syntax: ToolCallSyntax, extra: Partial<ToolCallFormat> = {}): ToolCallFormat {
  return { syntax, label: syntax, nativeTools: syntax !== "generic", ...extra };
}

const SPECIAL_FUNCTION: ToolDefinition = {
  type: "function",
  function: { name: "special_function", parameters: { type: "object", properties: { arg1: { type: "integer", description: "The arg." } }, required: ["arg1"] } },
};
const GET_TIME: ToolDefinition = {
  type: "function",
  function: { name: "get_time", parameters: { type: "object", properties: { city: { type: "string" }, zone: { type: "string", description: "optional" } }, required: ["city"] } },
};
const TOOLS = [SPECIAL_FUNCTION, GET_TIME];
const ARG1 = '{"arg1": 1}';

/** A family, and a call to special_function in its syntax (as the parser tests read it). */
const SAMPLES: readonly [ToolCallFormat, string][] = [
  [format("hermes"), `<tool_call>\n{"name": "special_function", "arguments": ${ARG1}}\n</tool_call>`],
  [format("hermes", { reasoning: THINK }), `<think>\nLet me see.\n</think>\n\n<tool_call>\n{"name": "special_function", "arguments": ${ARG1}}\n</tool_call>`],
  [format("qwen3-coder"), "<tool_call>\n<function=special_function>\n<parameter=arg1>\n1\n</parameter>\n</function>\n</tool_call>"],
  [format("llama3"), `{"name": "special_function", "parameters": ${ARG1}}`],
  [format("mistral-nemo"), `[TOOL_CALLS][{"name": "special_function", "arguments": ${ARG1}, "id": "123456789"}]`],
  [format("mistral", { callIds: true }), `[TOOL_CALLS]special_function[CALL_ID]123456789[ARGS]${ARG1}`],
  [format("mistral"), `[TOOL_CALLS]special_function[ARGS]${ARG1}`],
  [format("firefunction-v2"), ` functools[{"name": "special_function", "arguments": ${ARG1}}]`],
  [format("functionary-v3.1"), `<function=special_function>${ARG1}</function>`],
  [format("functionary-v3.2"), `special_function\n${ARG1}`],
  [format("deepseek-r1", { reasoning: THINK }), `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_function\n\`\`\`json\n${ARG1}\n\`\`\`<｜tool▁call▁end｜><｜tool▁calls▁end｜>`],
  [format("deepseek-v3.1", { reasoning: THINK }), `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>special_function<｜tool▁sep｜>${ARG1}<｜tool▁call▁end｜><｜tool▁calls▁end｜>`],
  [format("gpt-oss"), `<|channel|>analysis<|message|>Thinking.<|end|><|start|>assistant<|channel|>commentary to=functions.special_function <|constrain|>json<|message|>${ARG1}`],
  [format("command-r7b", { reasoning: { start: "<|START_THINKING|>", end: "<|END_THINKING|>" } }), `<|START_ACTION|>[{"tool_call_id": "0", "tool_name": "special_function", "parameters": ${ARG1}}]<|END_ACTION|>`],
  [format("granite", { reasoning: THINK }), `<|tool_call|>[{"name": "special_function", "arguments": ${ARG1}}]`],
  [format("phi4"), `<|tool_call|>[{"name": "special_function", "arguments": ${ARG1}}]<|/tool_call|>`],
  [format("generic"), `{"tool_calls": [{"name": "special_function", "arguments": ${ARG1}}]}`],
];

let model: NativeModel;
before(async () => {
  model = await NativeModel.load(MODEL, { vocabOnly: true });
});
after(() => model.free());

async function grammarFor(target: ToolCallFormat, choice: ToolChoice = "required", parallelToolCalls = true): Promise<{ gbnf: string; root: string }> {
  const grammar = await toolCallGrammar(target, TOOLS, choice, { parallelToolCalls });
  assert.ok(grammar !== undefined);
  return grammar;
}

function accepts(grammar: { gbnf: string; root: string }, text: string): boolean {
  const probe = probeGrammar(model, grammar.gbnf, grammar.root, text);
  assert.ok(probe.compiles, `llama.cpp does not parse the grammar:\n${grammar.gbnf}`);
  return probe.accepts;
}

describe("toolCallGrammar accepts each family's call", () => {
  for (const [target, sample] of SAMPLES) {
    test(`${target.syntax}${target.reasoning ? " (thinking)" : ""}${target.callIds ? " (ids)" : ""}`, async () => {
      const grammar = await grammarFor(target);
      assert.ok(accepts(grammar, sample), `refused: ${JSON.stringify(sample)}`);
      assert.ok(!accepts(grammar, sample.replaceAll("special_function", "other_function")), "accepts a tool that was not offered");
      assert.ok(!accepts(grammar, "Hello"), "accepts plain text");
      // What the grammar lets through reads back as the call.
      const parsed = parseToolCallOutput(target, sample, { tools: TOOLS });
      assert.deepEqual(parsed.toolCalls.map((call) => [call.name, JSON.parse(call.arguments)]), [["special_function", { arg1: 1 }]]);
    });
  }
});

describe("toolCallGrammar's choices", () => {
  test("a named function allows only that function", async () => {
    const grammar = await grammarFor(format("hermes"), { type: "function", function: { name: "get_time" } });
    assert.ok(accepts(grammar, '<tool_call>{"name": "get_time", "arguments": {"city": "Paris"}}</tool_call>'));
    assert.ok(!accepts(grammar, `<tool_call>{"name": "special_function", "arguments": ${ARG1}}</tool_call>`));
  });

  test("optional arguments may be left out or given, in order", async () => {
    const grammar = await grammarFor(format("hermes"));
    assert.ok(accepts(grammar, '<tool_call>{"name": "get_time", "arguments": {"city": "Paris", "zone": "CET"}}</tool_call>'));
    assert.ok(!accepts(grammar, '<tool_call>{"name": "get_time", "arguments": {"zone": "CET"}}</tool_call>'), "a required argument is missing");
    assert.ok(!accepts(grammar, '<tool_call>{"name": "get_time", "arguments": {"city": 3}}</tool_call>'), "a string argument is a number");
  });

  test("parallel_tool_calls false allows exactly one call", async () => {
    const two = `<tool_call>{"name": "special_function", "arguments": ${ARG1}}</tool_call>\n<tool_call>{"name": "special_function", "arguments": ${ARG1}}</tool_call>`;
    assert.ok(accepts(await grammarFor(format("hermes")), two));
    assert.ok(!accepts(await grammarFor(format("hermes"), "required", false), two));
    const generic = await grammarFor(format("generic"), "required", false);
    assert.ok(accepts(generic, `{"tool_call": {"name": "special_function", "arguments": ${ARG1}}}`));
    assert.ok(!accepts(generic, `{"tool_calls": [{"name": "special_function", "arguments": ${ARG1}}]}`));
  });

  test("the generic format under auto allows a response or a call", async () => {
    const grammar = await grammarFor(format("generic"), "auto");
    assert.ok(accepts(grammar, '{"response": "Hello, world!\\nWhat\'s up?"}'));
    assert.ok(accepts(grammar, `{"tool_calls": [{"name": "special_function", "arguments": ${ARG1}}]}`));
    assert.ok(!accepts(grammar, "Hello"));
  });

  test("a prompt that opened the thinking block starts the grammar inside it", async () => {
    const grammar = await toolCallGrammar(format("deepseek-r1", { reasoning: THINK }), TOOLS, "required", { startsInReasoning: true });
    assert.ok(grammar !== undefined);
    const call = `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_function\n\`\`\`json\n${ARG1}\n\`\`\`<｜tool▁call▁end｜><｜tool▁calls▁end｜>`;
    assert.ok(accepts(grammar, `Let me think.</think>\n${call}`));
    assert.ok(!accepts(grammar, call), "the thinking block is closed first");
  });

  test("no grammar where the family calls tools by itself, or tools are off", async () => {
    assert.equal(await toolCallGrammar(format("hermes"), TOOLS, "auto"), undefined);
    assert.equal(await toolCallGrammar(format("generic"), TOOLS, "none"), undefined);
  });

  test("a named function that is not offered, or no tools, is the request's fault", async () => {
    await assert.rejects(toolCallGrammar(format("hermes"), TOOLS, { type: "function", function: { name: "nope" } }), (error: unknown) => error instanceof InvalidRequestError && error.param === "tool_choice");
    await assert.rejects(toolCallGrammar(format("hermes"), [], "required"), (error: unknown) => error instanceof InvalidRequestError && error.param === "tools");
  });

  test("schemas beyond the converter's dialect still compile", async () => {
    const tool: ToolDefinition = {
      type: "function",
      function: {
        name: "search",
        parameters: {
          type: "object",
          properties: {
            query: { description: "anything" },
            filters: { anyOf: [{ type: "string" }, { type: "null" }] },
            tags: { type: "array" },
            options: { type: "object" },
            limit: { type: ["integer", "null"] },
          },
        },
      },
    };
    const grammar = await toolCallGrammar(format("hermes"), [tool], "required");
    assert.ok(grammar !== undefined);
    assert.ok(accepts(grammar, '<tool_call>{"name": "search", "arguments": {"query": {"a": [1, "b"]}, "filters": null, "tags": ["x"], "options": {"k": true}, "limit": 5}}</tool_call>'));
    assert.ok(accepts(grammar, '<tool_call>{"name": "search", "arguments": {"query": "x"}}</tool_call>') === false, "without a required list every property is required");
  });
});
