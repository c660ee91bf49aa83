import assert from "node:assert/strict";
import { test } from "node:test";
import { genericToolsPrompt } from "./generic-tools-prompt.js";
import type { ToolDefinition } from "./tool-call-types.js";

const TOOL: ToolDefinition = { type: "function", function: { name: "get_time", description: "The time in a city", parameters: { type: "object", properties: { city: { type: "string" } } } } };

test("the generic prompt lists the tools and the JSON answer the grammar allows", () => {
  const auto = genericToolsPrompt([TOOL], "auto");
  assert.match(auto, /"name": "get_time"/);
  assert.match(auto, /`tool_calls`.*`response`/);
  const one = genericToolsPrompt([TOOL], "required", false);
  assert.match(one, /with `tool_call` \(a request to call a tool\)\.$/);
  assert.doesNotMatch(one, /`response`/);
});
