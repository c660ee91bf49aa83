import type { ToolChoice, ToolDefinition } from "./tool-call-types.js";

/**
 * The system text that tells a model whose template has no tool support (the `generic` format)
 * which tools it has and how to answer — the counterpart of the grammar `toolCallGrammar` gives
 * that format. Follows llama.cpp's generic handler, which adds the same instruction.
 */
export function genericToolsPrompt(tools: readonly ToolDefinition[], choice: ToolChoice, parallelToolCalls = true): string {
  const functions = tools.map((tool) => tool.function);
  const call = parallelToolCalls ? "`tool_calls` (a list of requests to call tools)" : "`tool_call` (a request to call a tool)";
  const answer =
    choice === "auto"
      ? `Respond in JSON format, either with ${call} or with \`response\` (a reply to the user's request).`
      : `Respond in JSON format with ${call}.`;
  return `You can call the following tools (their parameters are JSON schemas):\n${JSON.stringify(functions, null, 2)}\n\n${answer}`;
}
