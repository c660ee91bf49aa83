// Outputs and expected messages from llama.cpp's tests/test-chat.cpp (the `tst.test(…)` inputs
// and their `message_assist*` expectations), as data. Each case is parsed whole, streamed a
// character at a time, and streamed in two pieces split at every position: the stream's pieces,
// put together, must equal the whole parse.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseToolCallOutput, ToolCallStreamParser } from "./tool-call-parser.js";
import type { ChatOutputDelta, ParsedChatOutput, ToolCallFormat, ToolCallParseOptions, ToolCallSyntax, ToolDefinition } from "./tool-call-types.js";

const THINK = { start: "<think>", end: "</think>" };
function format(syntax: ToolCallSyntax, extra: Partial<ToolCallFormat> = {}): ToolCallFormat {
  return { syntax, label: syntax, nativeTools: syntax !== "generic", ...extra };
}

const SPECIAL_FUNCTION: ToolDefinition = {
  type: "function",
  function: { name: "special_function", parameters: { type: "object", properties: { arg1: { type: "integer" } }, required: ["arg1"] } },
};
const WITH_OPTIONAL: ToolDefinition = {
  type: "function",
  function: { name: "special_function_with_opt", parameters: { type: "object", properties: { arg1: { type: "integer" }, arg2: { type: "integer" } }, required: ["arg1"] } },
};

const HELLO = "Hello, world!\nWhat's up?";
const THINKING = "I'm\nthinking";
const ARG1 = '{"arg1": 1}';

interface Case {
  readonly name: string;
  readonly format: ToolCallFormat;
  readonly text: string;
  readonly options?: ToolCallParseOptions;
  readonly content?: string;
  readonly reasoning?: string;
  /** [name, arguments as written, id the model wrote]. */
  readonly calls?: readonly (readonly [string, string, string?])[];
}

const CASES: readonly Case[] = [
  // NousResearch Hermes 2 Pro / Hermes 3, Qwen 2.5, MiMo-VL, Granite 4
  { name: "hermes: a call", format: format("hermes"), text: `<tool_call>\n{"name": "special_function", "arguments": ${ARG1}}</tool_call>`, calls: [["special_function", ARG1]] },
  { name: "hermes: content then a call", format: format("hermes"), text: `${HELLO}<tool_call>\n{"name": "special_function", "arguments": ${ARG1}}</tool_call>`, content: HELLO, calls: [["special_function", ARG1]] },
  { name: "hermes: content only", format: format("hermes"), text: HELLO, content: HELLO },
  { name: "qwen 2.5: a call on its own lines", format: format("hermes"), text: `<tool_call>\n{"name": "special_function", "arguments": ${ARG1}}\n</tool_call>`, calls: [["special_function", ARG1]] },
  {
    name: "hermes: two calls",
    format: format("hermes"),
    text: `<tool_call>\n{"name": "special_function", "arguments": ${ARG1}}\n</tool_call>\n<tool_call>\n{"name": "special_function_with_opt", "arguments": {"arg1": 1, "arg2": 2}}\n</tool_call>`,
    calls: [["special_function", ARG1], ["special_function_with_opt", '{"arg1": 1, "arg2": 2}']],
  },
  { name: "hermes: arguments written as a JSON string", format: format("hermes"), text: `<tool_call>{"name": "special_function", "arguments": "{\\"arg1\\": 1}"}</tool_call>`, calls: [["special_function", ARG1]] },
  {
    name: "apriel 1.5: a list of calls in one tag",
    format: format("hermes"),
    text: `<tool_call>[{"name": "special_function", "arguments": ${ARG1}}, {"name": "special_function", "arguments": {"arg1": 2}}]</tool_call>`,
    calls: [["special_function", ARG1], ["special_function", '{"arg1": 2}']],
  },
  { name: "hermes: not a call stays content", format: format("hermes"), text: "<tool_call>oops</tool_call> then", content: "<tool_call>oops</tool_call> then" },
  // Qwen3 / QwQ: <think>
  { name: "qwen3: thinking then content", format: format("hermes", { reasoning: THINK }), text: `<think>${THINKING}</think>${HELLO}`, content: HELLO, reasoning: THINKING },
  {
    name: "qwen3: thinking then a call",
    format: format("hermes", { reasoning: THINK }),
    text: `<think>\n${THINKING}\n</think>\n\n<tool_call>\n{"name": "special_function", "arguments": ${ARG1}}\n</tool_call>`,
    reasoning: THINKING,
    calls: [["special_function", ARG1]],
  },
  {
    name: "qwq: thinking forced open by the prompt",
    format: format("hermes", { reasoning: THINK }),
    options: { startsInReasoning: true },
    text: "Let me think about this...\n</think>\nThe answer is 42.",
    content: "The answer is 42.",
    reasoning: "Let me think about this...",
  },
  { name: "qwq: empty thinking", format: format("hermes", { reasoning: THINK }), options: { startsInReasoning: true }, text: "</think>Hello, world!", content: "Hello, world!" },
  { name: "qwen3: reasoning not extracted", format: format("hermes", { reasoning: THINK }), options: { extractReasoning: false }, text: `<think>${THINKING}</think>${HELLO}`, content: `<think>${THINKING}</think>${HELLO}` },
  { name: "qwen3: unfinished thinking", format: format("hermes", { reasoning: THINK }), text: `<think>${THINKING}`, reasoning: THINKING },
  // Qwen3-Coder / Qwen3.5 / Nemotron 3 XML
  {
    name: "qwen3-coder: a call",
    format: format("qwen3-coder"),
    options: { tools: [SPECIAL_FUNCTION] },
    text: "<tool_call>\n<function=special_function>\n<parameter=arg1>\n1\n</parameter>\n</function>\n</tool_call>",
    calls: [["special_function", '{"arg1": 1}']],
  },
  {
    name: "qwen3-coder: content, then a call without its opening tag",
    format: format("qwen3-coder"),
    options: { tools: [SPECIAL_FUNCTION] },
    text: "Let me call it.\n<function=special_function>\n<parameter=arg1>\n1\n</parameter>\n</function>\n</tool_call>",
    content: "Let me call it.",
    calls: [["special_function", '{"arg1": 1}']],
  },
  {
    name: "qwen3-coder: two calls, string parameters kept as strings",
    format: format("qwen3-coder"),
    options: { tools: [SPECIAL_FUNCTION, { type: "function", function: { name: "get_time", parameters: { type: "object", properties: { city: { type: "string" } } } } }] },
    text: "<function=special_function>\n<parameter=arg1>\n1\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n<function=get_time>\n<parameter=city>\n1984\n</parameter>\n</function>\n</tool_call>",
    calls: [["special_function", '{"arg1": 1}'], ["get_time", '{"city": "1984"}']],
  },
  // Llama 3.x
  { name: "llama 3.1: content", format: format("llama3"), text: HELLO, content: HELLO },
  { name: "llama 3.1: a call", format: format("llama3"), text: `{"name": "special_function", "parameters": ${ARG1}}`, calls: [["special_function", ARG1]] },
  { name: "llama 3.1: a call with its type", format: format("llama3"), text: `{"type": "function", "name": "special_function", "parameters": ${ARG1}}`, calls: [["special_function", ARG1]] },
  { name: "llama 3.1: JSON that is not a call", format: format("llama3"), text: '{"answer": 42}', content: '{"answer": 42}' },
  { name: "llama 3.1: a built-in call", format: format("llama3"), text: `<|python_tag|>python.call(code="print('hey')")`, calls: [["python", '{"code":"print(\'hey\')"}']] },
  {
    name: "llama 3.2: two calls",
    format: format("llama3"),
    text: `{"name": "special_function", "parameters": ${ARG1}}; {"name": "special_function", "parameters": {"arg1": 2}}`,
    calls: [["special_function", ARG1], ["special_function", '{"arg1": 2}']],
  },
  // Mistral
  { name: "mistral nemo: content", format: format("mistral-nemo"), text: HELLO, content: HELLO },
  { name: "mistral nemo: a call with its id", format: format("mistral-nemo"), text: `[TOOL_CALLS][{"name": "special_function", "arguments": ${ARG1}, "id": "123456789"}]`, calls: [["special_function", ARG1, "123456789"]] },
  { name: "mistral small 3.2: a call with its id", format: format("mistral", { callIds: true }), text: `[TOOL_CALLS]special_function[CALL_ID]123456789[ARGS]${ARG1}`, calls: [["special_function", ARG1, "123456789"]] },
  {
    name: "mistral small 3.2: two calls",
    format: format("mistral", { callIds: true }),
    text: `[TOOL_CALLS]special_function[CALL_ID]000000001[ARGS]${ARG1}[TOOL_CALLS]special_function_with_opt[CALL_ID]000000002[ARGS]{"arg1": 1, "arg2": 2}`,
    calls: [["special_function", ARG1, "000000001"], ["special_function_with_opt", '{"arg1": 1, "arg2": 2}', "000000002"]],
  },
  { name: "devstral: a call", format: format("mistral"), text: `[TOOL_CALLS]special_function[ARGS]${ARG1}`, calls: [["special_function", ARG1]] },
  { name: "devstral: content then a call", format: format("mistral"), text: `${HELLO}[TOOL_CALLS]special_function[ARGS]${ARG1}`, content: HELLO, calls: [["special_function", ARG1]] },
  { name: "magistral: thinking", format: format("mistral", { reasoning: { start: "[THINK]", end: "[/THINK]" } }), text: "[THINK]raisonnement[/THINK]Réponse", content: "Réponse", reasoning: "raisonnement" },
  // FireFunction v2, Functionary
  { name: "firefunction v2: a call", format: format("firefunction-v2"), text: ` functools[{"name": "special_function", "arguments": ${ARG1}}]`, calls: [["special_function", ARG1]] },
  { name: "firefunction v2: content", format: format("firefunction-v2"), text: HELLO, content: HELLO },
  { name: "functionary v3.1: a call", format: format("functionary-v3.1"), text: `<function=special_function>${ARG1}</function>`, calls: [["special_function", ARG1]] },
  { name: "functionary v3.1: content", format: format("functionary-v3.1"), text: HELLO, content: HELLO },
  { name: "functionary v3.1: raw python", format: format("functionary-v3.1"), text: "<|python_tag|>print('hey')", calls: [["python", '{"code":"print(\'hey\')"}']] },
  { name: "functionary v3.2: content", format: format("functionary-v3.2"), text: `all\n${HELLO}`, content: HELLO },
  { name: "functionary v3.2: a call", format: format("functionary-v3.2"), text: `special_function\n${ARG1}`, calls: [["special_function", ARG1]] },
  { name: "functionary v3.2: content then a call", format: format("functionary-v3.2"), text: `all\n${HELLO}>>>special_function\n${ARG1}`, content: HELLO, calls: [["special_function", ARG1]] },
  // DeepSeek
  { name: "deepseek r1: empty thinking", format: format("deepseek-r1", { reasoning: THINK }), options: { startsInReasoning: true }, text: `</think>${HELLO}`, content: HELLO },
  { name: "deepseek r1: thinking", format: format("deepseek-r1", { reasoning: THINK }), options: { startsInReasoning: true }, text: `${THINKING}</think>${HELLO}`, content: HELLO, reasoning: THINKING },
  {
    name: "deepseek r1: a call",
    format: format("deepseek-r1", { reasoning: THINK }),
    options: { startsInReasoning: true },
    text: `</think><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_function\n\`\`\`json\n${ARG1}\`\`\`<｜tool▁call▁end｜><｜tool▁calls▁end｜>`,
    calls: [["special_function", ARG1]],
  },
  {
    name: "deepseek r1 distill qwen: a call without thinking",
    format: format("deepseek-r1", { reasoning: THINK }),
    text: `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_function\n\`\`\`json\n${ARG1}\`\`\`<｜tool▁call▁end｜><｜tool▁calls▁end｜>`,
    calls: [["special_function", ARG1]],
  },
  {
    name: "deepseek v3.1: a call",
    format: format("deepseek-v3.1", { reasoning: THINK }),
    text: '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{"city": "XYZCITY"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
    calls: [["get_time", '{"city": "XYZCITY"}']],
  },
  {
    name: "deepseek v3.1: thinking, content and two calls",
    format: format("deepseek-v3.1", { reasoning: THINK }),
    options: { startsInReasoning: true },
    text: 'REASONING</think>CONTENT<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{"city": "Paris"}<｜tool▁call▁end｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>',
    content: "CONTENT",
    reasoning: "REASONING",
    calls: [["get_time", '{"city": "Paris"}'], ["get_weather", '{"city": "Paris"}']],
  },
  // llama.cpp keeps the newline in "REASONING\n"; Grove trims reasoning as its older parsers did.
  { name: "deepseek v3.1: thinking then content", format: format("deepseek-v3.1", { reasoning: THINK }), options: { startsInReasoning: true }, text: "REASONING</think>\nCONTENT", content: "CONTENT", reasoning: "REASONING" },
  // Command R7B, Granite
  { name: "command r7b: a response", format: format("command-r7b", { reasoning: { start: "<|START_THINKING|>", end: "<|END_THINKING|>" } }), text: `<|START_RESPONSE|>${HELLO}<|END_RESPONSE|>`, content: HELLO },
  {
    name: "command r7b: thinking and a call",
    format: format("command-r7b", { reasoning: { start: "<|START_THINKING|>", end: "<|END_THINKING|>" } }),
    text: `<|START_THINKING|>${THINKING}<|END_THINKING|><|START_ACTION|>[\n    {"tool_call_id": "0", "tool_name": "special_function", "parameters": ${ARG1}}\n]<|END_ACTION|>`,
    reasoning: THINKING,
    calls: [["special_function", ARG1, "0"]],
  },
  { name: "granite 3.3: thinking", format: format("granite", { reasoning: THINK }), text: `<think>${THINKING}</think>${HELLO}`, content: HELLO, reasoning: THINKING },
  { name: "granite 3.3: thinking and a wrapped response", format: format("granite", { reasoning: THINK }), text: `<think>${THINKING}</think><response>${HELLO}</response>`, content: HELLO, reasoning: THINKING },
  { name: "granite 3.3: a call", format: format("granite", { reasoning: THINK }), text: `<|tool_call|>[{"name": "special_function", "arguments": ${ARG1}}]`, calls: [["special_function", ARG1]] },
  { name: "phi-4: a call", format: format("phi4"), text: `<|tool_call|>[{"name": "special_function", "arguments": ${ARG1}}]<|/tool_call|>`, calls: [["special_function", ARG1]] },
  // gpt-oss (harmony)
  { name: "gpt-oss: final channel", format: format("gpt-oss"), text: `<|channel|>final<|message|>${HELLO}`, content: HELLO },
  { name: "gpt-oss: commentary channel", format: format("gpt-oss"), text: `<|channel|>commentary<|message|>${HELLO}`, content: HELLO },
  { name: "gpt-oss: analysis then final", format: format("gpt-oss"), text: `<|channel|>analysis<|message|>${THINKING}<|end|><|start|>assistant<|channel|>final<|message|>${HELLO}`, content: HELLO, reasoning: THINKING },
  { name: "gpt-oss: unfinished analysis", format: format("gpt-oss"), text: `<|channel|>analysis<|message|>${THINKING}`, reasoning: THINKING },
  { name: "gpt-oss: recipient in the role", format: format("gpt-oss"), text: ` to=functions.special_function<|channel|>analysis<|message|>${ARG1}`, calls: [["special_function", ARG1]] },
  { name: "gpt-oss: recipient in the channel", format: format("gpt-oss"), text: `<|channel|>analysis to=functions.special_function<|message|>${ARG1}`, calls: [["special_function", ARG1]] },
  { name: "gpt-oss: constrained call", format: format("gpt-oss"), text: ` to=functions.special_function<|channel|>analysis <|constrain|>json<|message|>${ARG1}`, calls: [["special_function", ARG1]] },
  { name: "gpt-oss: commentary call", format: format("gpt-oss"), text: `<|channel|>commentary to=functions.special_function<|message|>${ARG1}`, calls: [["special_function", ARG1]] },
  {
    name: "gpt-oss: thinking then a call",
    format: format("gpt-oss"),
    text: `<|channel|>analysis<|message|>${THINKING}<|end|><|start|>assistant to=functions.special_function<|channel|>analysis<|message|>${ARG1}`,
    reasoning: THINKING,
    calls: [["special_function", ARG1]],
  },
  {
    name: "gpt-oss: a complex call",
    format: format("gpt-oss"),
    text: '<|channel|>analysis<|message|>Thinking about edit...<|end|><|start|>assistant<|channel|>commentary to=functions.edit <|constrain|>json<|message|>{"oldString": "if (part < railCount - 1) {", "newString": "if (part < 4) {", "replaceAll": false}',
    reasoning: "Thinking about edit...",
    calls: [["edit", '{"oldString": "if (part < railCount - 1) {", "newString": "if (part < 4) {", "replaceAll": false}']],
  },
  {
    name: "gpt-oss: a built-in tool's call is dropped",
    format: format("gpt-oss"),
    text: "<|channel|>analysis<|message|>I will execute python to say hello<|end|><|start|>assistant to=container.exec<|channel|>commentary<|message|>python3 -c 'print(\"hello\")'",
    reasoning: "I will execute python to say hello",
  },
  {
    name: "gpt-oss: commentary to=assistant before reasoning",
    format: format("gpt-oss"),
    text: `<|channel|>commentary to=assistant<|channel|>analysis<|message|>${THINKING}<|end|><|start|>assistant<|channel|>final<|message|>${HELLO}`,
    content: HELLO,
    reasoning: THINKING,
  },
  // Generic JSON format (llama.cpp's older tests); ids come from Grove, not the model.
  {
    name: "generic: tool calls",
    format: format("generic"),
    text: '{\n  "tool_calls": [\n    {\n      "name": "special_function",\n      "arguments": {\n        "arg1": 1\n      },\n      "id": "123456789"\n    }\n  ]\n}',
    calls: [["special_function", '{\n        "arg1": 1\n      }']],
  },
  { name: "generic: one tool call", format: format("generic"), text: `{"tool_call": {"name": "special_function", "arguments": ${ARG1}}}`, calls: [["special_function", ARG1]] },
  { name: "generic: a response", format: format("generic"), text: '{\n  "response": "Hello, world!\\nWhat\'s up?"\n}', content: HELLO },
  { name: "generic: a response with escapes", format: format("generic"), text: '{"response": "caf\\u00e9 \\ud83d\\ude00 \\"q\\""}', content: 'café 😀 "q"' },
];

function counter(): () => string {
  let next = 0;
  return () => `call_${++next}`;
}

function expected(item: Case): ParsedChatOutput {
  let generated = 0;
  return {
    content: item.content ?? "",
    ...(item.reasoning === undefined ? {} : { reasoningContent: item.reasoning }),
    toolCalls: (item.calls ?? []).map(([name, args, id]) => ({ id: id ?? `call_${++generated}`, name, arguments: args })),
  };
}

/** The stream's deltas put together as one output. */
function streamed(item: Case, pieces: readonly string[]): ParsedChatOutput {
  const parser = new ToolCallStreamParser(item.format, { ...item.options, newCallId: counter() });
  let content = "";
  let reasoning = "";
  const calls: { id: string; name: string; arguments: string }[] = [];
  const add = (delta: ChatOutputDelta): void => {
    content += delta.content ?? "";
    reasoning += delta.reasoningContent ?? "";
    for (const call of delta.toolCalls ?? []) {
      if (call.id !== undefined) {
        assert.equal(call.index, calls.length, "a call's first delta comes in order");
        assert.equal(call.type, "function");
        calls.push({ id: call.id, name: call.function.name!, arguments: call.function.arguments });
      } else {
        calls[call.index]!.arguments += call.function.arguments;
      }
    }
  };
  for (const piece of pieces) add(parser.push(piece));
  add(parser.finish());
  const output = { content, ...(reasoning === "" ? {} : { reasoningContent: reasoning }), toolCalls: calls };
  assert.deepEqual(parser.result(), output, "result() agrees with the deltas");
  return output;
}

describe("tool-call output, llama.cpp's test cases", () => {
  for (const item of CASES) {
    test(item.name, () => {
      const want = expected(item);
      assert.deepEqual(parseToolCallOutput(item.format, item.text, { ...item.options, newCallId: counter() }), want, "whole");
      const characters = [...item.text];
      assert.deepEqual(streamed(item, characters), want, "a character at a time");
      for (let split = 1; split < characters.length; split++) {
        const pieces = [characters.slice(0, split).join(""), characters.slice(split).join("")];
        assert.deepEqual(streamed(item, pieces), want, `split at ${split}`);
      }
    });
  }
});

describe("streaming holds back what may be a marker", () => {
  test("the beginning of <tool_call> is not sent as content", () => {
    const parser = new ToolCallStreamParser(format("hermes"), { newCallId: counter() });
    assert.deepEqual(parser.push("Sure. <tool"), { content: "Sure." });
    assert.deepEqual(parser.push("_call>"), {});
    assert.deepEqual(parser.push('{"name": "special_function", "arguments": {'), {
      toolCalls: [{ index: 0, id: "call_1", type: "function", function: { name: "special_function", arguments: "{" } }],
    });
    assert.deepEqual(parser.push('"arg1": 1}}</tool_call>'), { toolCalls: [{ index: 0, function: { arguments: '"arg1": 1}' } }] });
    assert.deepEqual(parser.finish(), {});
  });

  test("text that turns out not to be a marker is released", () => {
    const parser = new ToolCallStreamParser(format("hermes"));
    assert.deepEqual(parser.push("a <t"), { content: "a" });
    assert.deepEqual(parser.push("> c"), { content: " <t> c" });
  });

  test("a Llama 3 output held while it may be a call, released once it is not", () => {
    const parser = new ToolCallStreamParser(format("llama3"));
    assert.deepEqual(parser.push('{"na'), {});
    assert.deepEqual(parser.push('me": 1'), { content: '{"name": 1' });
  });

  test("reasoning streams as reasoning_content", () => {
    const parser = new ToolCallStreamParser(format("hermes", { reasoning: THINK }));
    assert.deepEqual(parser.push("<thi"), {});
    assert.deepEqual(parser.push("nk>Let me see"), { reasoningContent: "Let me see" });
    assert.deepEqual(parser.push("</th"), {});
    assert.deepEqual(parser.push("ink>\n\nDone"), { content: "Done" });
  });

  test("a generated id is stable between the stream and result()", () => {
    const parser = new ToolCallStreamParser(format("hermes"));
    const delta = parser.push('<tool_call>{"name": "f", "arguments": {}}</tool_call>');
    const id = delta.toolCalls?.[0]?.id;
    assert.match(id ?? "", /^call_[A-Za-z0-9]{24}$/);
    parser.finish();
    assert.equal(parser.result().toolCalls[0]?.id, id);
  });
});

test("a truncated call keeps the arguments written so far", () => {
  const output = parseToolCallOutput(format("hermes"), '<tool_call>{"name": "special_function", "arguments": {"arg', { newCallId: counter() });
  assert.deepEqual(output.toolCalls, [{ id: "call_1", name: "special_function", arguments: '{"arg' }]);
});

test("an optional parameter's tool is read like any other", () => {
  const output = parseToolCallOutput(format("hermes"), `<tool_call>{"name": "special_function_with_opt", "arguments": ${ARG1}}</tool_call>`, {
    tools: [WITH_OPTIONAL],
    newCallId: counter(),
  });
  assert.equal(output.toolCalls[0]?.name, "special_function_with_opt");
});

describe("a call cut off at the token limit", () => {
  const cut = '{"tool_call": {"name": "special_function", "arguments": {"arg1": 1';
  test("is text, not a call, when the output ended at the limit (llama.cpp's final parse yields no call from unfinished syntax)", () => {
    assert.deepEqual(parseToolCallOutput(format("generic"), cut, { cutOff: true }), { content: cut, toolCalls: [] });
    const hermes = 'Sure.\n<tool_call>\n{"name": "special_function", "arguments": {"arg1": ';
    assert.deepEqual(parseToolCallOutput(format("hermes"), hermes, { cutOff: true }), { content: hermes.trimEnd(), toolCalls: [] });
    const stream = new ToolCallStreamParser(format("generic"), { newCallId: () => "call_1" });
    const streamed = stream.push(cut);
    assert.equal(streamed.toolCalls?.[0]?.function.name, "special_function", "while streaming the call is sent as it comes");
    assert.deepEqual(stream.finish({ cutOff: true }), { content: cut });
    assert.deepEqual(stream.result(), { content: cut, toolCalls: [] });
  });

  test("a whole call before the limit stays a call, and without cutOff a cut call is read as before", () => {
    const whole = `{"tool_call": {"name": "special_function", "arguments": ${ARG1}}}`;
    assert.equal(parseToolCallOutput(format("generic"), whole.slice(0, -2) + "} ", { cutOff: true }).toolCalls.length, 1);
    assert.equal(parseToolCallOutput(format("generic"), cut).toolCalls.length, 1);
  });
});
