import { InvalidRequestError } from "../../core/errors.js";
import { argumentsShape, toConverterSchema } from "./converter-schema.js";
import { GbnfBuilder, gbnfLiteral as literal, jsonLiteral, textWithout } from "./gbnf-builder.js";
import type { ToolCallFormat, ToolCallSyntax, ToolChoice, ToolDefinition } from "./tool-call-types.js";

/** A grammar for llama.cpp's grammar sampler (the shape `SamplerSettings.grammar` takes). */
export interface ToolCallGrammar {
  readonly gbnf: string;
  readonly root: string;
}

/** Options of {@link toolCallGrammar}. */
export interface ToolCallGrammarOptions {
  /** OpenAI's `parallel_tool_calls`: false allows exactly one call. @default true */
  readonly parallelToolCalls?: boolean;
  /** The prompt opened the thinking block (see `promptOpensReasoning`): the output starts as reasoning. @default false */
  readonly startsInReasoning?: boolean;
}

/** What a family's grammar is written from. */
interface GrammarContext {
  readonly builder: GbnfBuilder;
  readonly format: ToolCallFormat;
  readonly tools: readonly ToolDefinition[];
  readonly parallel: boolean;
  readonly choice: ToolChoice;
  /** The rule for tool `index`'s arguments object. */
  readonly args: (index: number) => Promise<string>;
  /** A rule (with a trailing space) for a thinking block the output may open with, or "". */
  readonly reasoning: string;
}

/**
 * The grammar that makes a model call a tool in its family's own syntax — tags, markers and JSON
 * around arguments valid under each tool's schema — when the request requires a call (`required`
 * or a named function), and the generic format's whole-output grammar (a call or a `response`).
 * Undefined where no grammar applies (`none`, or `auto` with a family that writes calls itself).
 * The model may think first where its family does. Schemas go through node-llama-cpp's converter
 * (see `json-grammar.ts`); top-level arguments may leave out optional properties.
 * @throws InvalidRequestError when `tool_choice` names a function that is not among `tools`, no tools are given, or a schema cannot be compiled
 */
export async function toolCallGrammar(
  format: ToolCallFormat,
  tools: readonly ToolDefinition[],
  choice: ToolChoice,
  options: ToolCallGrammarOptions = {},
): Promise<ToolCallGrammar | undefined> {
  if (choice === "none" || (choice === "auto" && format.syntax !== "generic")) return undefined;
  const selected = selectTools(tools, choice);
  const builder = new GbnfBuilder();
  const argsRules = new Map<number, Promise<string>>();
  const context: GrammarContext = {
    builder,
    format,
    tools: selected,
    parallel: options.parallelToolCalls ?? true,
    choice,
    args: (index) => {
      let rule = argsRules.get(index);
      if (rule === undefined) {
        rule = argumentsRule(builder, selected[index]!, index);
        argsRules.set(index, rule);
      }
      return rule;
    },
    reasoning: reasoningRule(builder, format, options.startsInReasoning === true),
  };
  try {
    builder.rule("root", await ROOTS[format.syntax](context));
  } catch (error) {
    if (error instanceof InvalidRequestError) throw error;
    throw new InvalidRequestError(`A tool's parameters schema cannot be turned into a grammar: ${(error as Error).message}`, { param: "tools", cause: error });
  }
  return { gbnf: builder.build(), root: "root" };
}

function selectTools(tools: readonly ToolDefinition[], choice: ToolChoice): readonly ToolDefinition[] {
  if (tools.length === 0) throw new InvalidRequestError("tool_choice asks for a tool call but no tools are given", { param: "tools" });
  if (typeof choice === "string") return tools;
  const named = tools.filter((tool) => tool.function.name === choice.function.name);
  if (named.length === 0) throw new InvalidRequestError(`tool_choice names the function '${choice.function.name}', which is not among the tools`, { param: "tool_choice" });
  return named.slice(0, 1);
}

function reasoningRule(builder: GbnfBuilder, format: ToolCallFormat, startsInReasoning: boolean): string {
  const tags = format.reasoning;
  if (tags === undefined) return "";
  builder.rule("reasoning-text", textWithout(tags.end));
  if (startsInReasoning) return builder.rule("reasoning", `reasoning-text ${literal(tags.end)} space`) + " ";
  return builder.rule("reasoning", `${literal(tags.start)} reasoning-text ${literal(tags.end)} space`) + "? ";
}

/**
 * Tool `index`'s arguments: an object with its required properties in order, then any of its
 * optional ones in order (llama.cpp's converter does the same); other schemas whole through the converter.
 */
async function argumentsRule(builder: GbnfBuilder, tool: ToolDefinition, index: number): Promise<string> {
  const parameters = tool.function.parameters;
  const shape = argumentsShape(parameters);
  if (shape === undefined) {
    const schema = parameters === undefined ? { type: "object", additionalProperties: true } : toConverterSchema(parameters);
    return builder.jsonValue(schema);
  }
  const members: { rule: string; required: boolean }[] = [];
  for (const [position, property] of shape.properties.entries()) {
    const value = await builder.jsonValue(property.schema);
    members.push({ rule: builder.rule(`t${index}-p${position}`, `${jsonLiteral(property.key)} space ":" space ${value}`), required: property.required });
  }
  const required = members.filter((member) => member.required).map((member) => member.rule);
  const optional = members.filter((member) => !member.required).map((member) => member.rule);
  const optionalAfter = (rules: readonly string[]): string => rules.map((rule) => `( "," space ${rule} )?`).join(" ");
  let body: string;
  if (required.length > 0) {
    body = `${required.join(' "," space ')} ${optionalAfter(optional)}`;
  } else {
    // No property must come: any one of them may be the first, then any later ones in order.
    body = `( ${optional.map((rule, position) => `${rule} ${optionalAfter(optional.slice(position + 1))}`).join(" | ")} )?`;
  }
  return builder.rule(`t${index}-args`, `"{" space ${body} space "}"`);
}

/** `{"<nameKey>": "<name>", "<argsKey>": <args>}`, with the `before` and `after` members (GBNF) around them. */
function callObject(nameKey: string, name: string, argsKey: string, args: string, around: { before?: string; after?: string } = {}): string {
  const before = around.before === undefined ? "" : `${around.before} space "," space `;
  const after = around.after === undefined ? "" : ` space "," space ${around.after}`;
  return `"{" space ${before}${jsonLiteral(nameKey)} space ":" space ${jsonLiteral(name)} space "," space ${jsonLiteral(argsKey)} space ":" space ${args}${after} space "}"`;
}

/**
 * One rule per tool from `body` (given the tool's arguments rule unless `withArgs` is false), and
 * a rule choosing among them; returns its name.
 */
async function eachTool(
  context: GrammarContext,
  name: string,
  body: (tool: ToolDefinition, args: string, index: number) => string | Promise<string>,
  withArgs = true,
): Promise<string> {
  const rules: string[] = [];
  for (const [index, tool] of context.tools.entries()) {
    const args = withArgs ? await context.args(index) : "";
    rules.push(context.builder.rule(`${name}-${index}`, await body(tool, args, index)));
  }
  return context.builder.rule(name, rules.join(" | "));
}

/** `rule`, repeated with `separator` when parallel calls are allowed. */
function several(context: GrammarContext, rule: string, separator: string): string {
  return context.parallel ? `${rule} ( ${separator} ${rule} )*` : rule;
}

/** A JSON array of call objects. */
async function callArray(context: GrammarContext, item: (tool: ToolDefinition, args: string) => string): Promise<string> {
  const rule = await eachTool(context, "item", (tool, args) => item(tool, args));
  return `"[" space ${several(context, rule, '"," space')} space "]"`;
}

const NAME_ARGUMENTS = (tool: ToolDefinition, args: string): string => callObject("name", tool.function.name, "arguments", args);
const ALPHANUMERIC_ID = '"\\"" [a-zA-Z0-9]{9} "\\""';

const ROOTS: Record<ToolCallSyntax, (context: GrammarContext) => Promise<string>> = {
  hermes: async (context) => {
    const call = await eachTool(context, "call", (tool, args) => `"<tool_call>" space ${NAME_ARGUMENTS(tool, args)} space "</tool_call>"`);
    return `${context.reasoning}${several(context, call, "space")}`;
  },
  "qwen3-coder": async (context) => {
    const call = await eachTool(context, "call", (tool, _args, index) => qwen3CoderCall(context, tool, index), false);
    return `${context.reasoning}${several(context, call, "space")}`;
  },
  llama3: async (context) => {
    const call = await eachTool(context, "call", (tool, args) => callObject("name", tool.function.name, "parameters", args));
    return several(context, call, 'space ";" space');
  },
  "mistral-nemo": async (context) => {
    const id = `${jsonLiteral("id")} space ":" space ${ALPHANUMERIC_ID}`;
    const items = await callArray(context, (tool, args) => callObject("name", tool.function.name, "arguments", args, { after: id }));
    return `${context.reasoning}"[TOOL_CALLS]" space ${items}`;
  },
  mistral: async (context) => {
    const id = context.format.callIds === true ? `"[CALL_ID]" [a-zA-Z0-9]{9} ` : "";
    const call = await eachTool(context, "call", (tool, args) => `"[TOOL_CALLS]" ${literal(tool.function.name)} ${id}"[ARGS]" ${args}`);
    return `${context.reasoning}${several(context, call, "")}`;
  },
  "firefunction-v2": async (context) => `" functools" ${await callArray(context, NAME_ARGUMENTS)}`,
  "functionary-v3.1": async (context) => {
    const call = await eachTool(context, "call", (tool, args) => `${literal(`<function=${tool.function.name}>`)} ${args} "</function>"`);
    return several(context, call, "space");
  },
  "functionary-v3.2": async (context) => {
    const first = await eachTool(context, "first", (tool, args) => `${literal(`${tool.function.name}\n`)} ${args}`);
    if (!context.parallel) return first;
    const next = await eachTool(context, "next", (tool, args) => `${literal(`>>>${tool.function.name}\n`)} ${args}`);
    return `${first} ( space ${next} )*`;
  },
  "deepseek-r1": async (context) => {
    const call = await eachTool(context, "call", (tool, args) => `${literal(`<｜tool▁call▁begin｜>function<｜tool▁sep｜>${tool.function.name}\n\`\`\`json\n`)} ${args} space "\`\`\`<｜tool▁call▁end｜>"`);
    return `${context.reasoning}"<｜tool▁calls▁begin｜>" ${several(context, call, "space")} "<｜tool▁calls▁end｜>"`;
  },
  "deepseek-v3.1": async (context) => {
    const call = await eachTool(context, "call", (tool, args) => `${literal(`<｜tool▁call▁begin｜>${tool.function.name}<｜tool▁sep｜>`)} ${args} "<｜tool▁call▁end｜>"`);
    return `${context.reasoning}"<｜tool▁calls▁begin｜>" ${several(context, call, "space")} "<｜tool▁calls▁end｜>"`;
  },
  "gpt-oss": async (context) => {
    // One call per message: the model ends each with <|call|> and waits for the result.
    context.builder.rule("analysis", `"<|channel|>analysis<|message|>" ${textWithout("<|end|>")} "<|end|><|start|>assistant"`);
    const call = await eachTool(context, "call", (tool, args) => `${literal(`<|channel|>commentary to=functions.${tool.function.name}`)} ( " <|constrain|>json" )? "<|message|>" ${args}`);
    return `analysis? ${call}`;
  },
  "command-r7b": async (context) => {
    const id = `${jsonLiteral("tool_call_id")} space ":" space "\\"" [0-9]{1,10} "\\""`;
    const items = await callArray(context, (tool, args) => callObject("tool_name", tool.function.name, "parameters", args, { before: id }));
    return `${context.reasoning}"<|START_ACTION|>" space ${items} space "<|END_ACTION|>"`;
  },
  granite: async (context) => `${context.reasoning}"<|tool_call|>" space ${await callArray(context, NAME_ARGUMENTS)}`,
  phi4: async (context) => `${context.reasoning}"<|tool_call|>" space ${await callArray(context, NAME_ARGUMENTS)} space "<|/tool_call|>"`,
  generic: async (context) => {
    const item = await eachTool(context, "item", NAME_ARGUMENTS);
    const calls = context.parallel
      ? `"{" space ${jsonLiteral("tool_calls")} space ":" space "[" space ${item} ( "," space ${item} )* space "]" space "}"`
      : `"{" space ${jsonLiteral("tool_call")} space ":" space ${item} space "}"`;
    if (context.choice !== "auto") return `${context.reasoning}${calls}`;
    const text = await context.builder.jsonValue({ type: "string" });
    context.builder.rule("response", `"{" space ${jsonLiteral("response")} space ":" space ${text} space "}"`);
    return `${context.reasoning}( ${context.builder.rule("calls", calls)} | response )`;
  },
};

/** Qwen3-Coder's XML call: each parameter's value raw where its schema says string, else JSON. */
async function qwen3CoderCall(context: GrammarContext, tool: ToolDefinition, index: number): Promise<string> {
  const { builder } = context;
  const shape = argumentsShape(tool.function.parameters);
  const parameters: string[] = [];
  for (const [position, property] of (shape?.properties ?? []).entries()) {
    const value = property.schema.type === "string" ? builder.rule("xml-text", textWithout("\n</parameter>")) : await builder.jsonValue(property.schema);
    const rule = builder.rule(`t${index}-x${position}`, `${literal(`<parameter=${property.key}>\n`)} ${value} "\\n</parameter>\\n"`);
    parameters.push(property.required ? rule : `${rule}?`);
  }
  return `${literal(`<tool_call>\n<function=${tool.function.name}>\n`)} ${parameters.join(" ")} "</function>\\n</tool_call>"`;
}
