import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { NotSupportedError } from "../core/errors.js";
import { ConfiguredModel, withDefaults } from "./configured-model.js";
import type { ChatMessage, LoadedModel } from "./engine.js";

// A model whose template is the messages as JSON: enough to see what the fork adds.
const inner = {
  info: { id: "weights", digest: `sha256:${"a".repeat(64)}`, contextSize: 512 },
  renderChat: (messages: readonly ChatMessage[]) => JSON.stringify(messages.map((message) => [message.role, message.content])),
} as unknown as LoadedModel;
const identity = { id: "fork", digest: `sha256:${"b".repeat(64)}` as const };

describe("ConfiguredModel", () => {
  test("system prompt when the chat has none, then the MESSAGE lines, then the request's", () => {
    const model = new ConfiguredModel(inner, identity, { system: "S", messages: [{ role: "user", content: "m1" }, { role: "assistant", content: "m2" }] });
    assert.equal(model.renderChat([{ role: "user", content: "q" }]), JSON.stringify([["system", "S"], ["user", "m1"], ["assistant", "m2"], ["user", "q"]]));
    assert.equal(model.renderChat([{ role: "system", content: "own" }, { role: "user", content: "q" }]), JSON.stringify([["system", "own"], ["user", "m1"], ["assistant", "m2"], ["user", "q"]]));
    assert.equal(model.info.id, "fork");
    assert.equal(model.info.contextSize, 512);
  });

  test("parameters fill what the request leaves unset", () => {
    const model = new ConfiguredModel(inner, identity, { parameters: { temperature: 1, stop: ["x"], num_predict: 5, seed: -1, num_thread: 4 } });
    assert.deepEqual(model.info.defaults, { temperature: 1, stop: ["x"], maxTokens: 5 });
    const filled = withDefaults({ promptTokens: [1], maxTokens: 1, stop: [] }, model.info.defaults!);
    assert.equal(filled.temperature, 1);
    assert.deepEqual(filled.stop, ["x"]);
    const own = withDefaults({ promptTokens: [1], maxTokens: 1, temperature: 0.2, stop: ["y"] }, model.info.defaults!);
    assert.equal(own.temperature, 0.2);
    assert.deepEqual(own.stop, ["y"]);
  });

  test("a Go TEMPLATE refuses chats with the reason", () => {
    const model = new ConfiguredModel(inner, identity, { template: "{{ .Prompt }}" });
    assert.throws(() => model.renderChat([{ role: "user", content: "q" }]), (error: unknown) => error instanceof NotSupportedError && /Go template/.test(error.message));
  });
});
