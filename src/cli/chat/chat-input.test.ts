import assert from "node:assert/strict";
import { test } from "node:test";
import { ChatInput, parseParameter } from "./chat-input.js";

test('""" opens a message over several lines, kept as typed, sent when it closes', () => {
  const input = new ChatInput();
  assert.deepEqual(input.accept('"""first line'), { kind: "more" });
  assert.equal(input.continuing, true);
  assert.deepEqual(input.accept("  second /not a command"), { kind: "more" });
  assert.deepEqual(input.accept('third"""'), { kind: "send" });
  assert.deepEqual(input.conversation(), [{ role: "user", content: "first line\n  second /not a command\nthird" }]);
  assert.deepEqual(input.accept('"""one line"""'), { kind: "send" });
  assert.equal(input.turns.at(-1)?.content, "one line");
});

test("/set system comes first in every request; /clear keeps it and drops the turns", () => {
  const input = new ChatInput();
  assert.deepEqual(input.accept("/set system  Be   brief."), { kind: "print", text: "Set system message.\n" });
  input.accept("hi");
  input.answered("hello");
  assert.deepEqual(input.conversation().map((message) => message.role), ["system", "user", "assistant"]);
  assert.equal(input.conversation()[0]!.content, "Be   brief.");
  input.accept("/clear");
  assert.deepEqual(input.conversation(), [{ role: "system", content: "Be   brief." }]);
  assert.deepEqual(input.accept('/set system """You'), { kind: "more" });
  input.accept('answer in French."""');
  assert.equal(input.system, "You\nanswer in French.");
});

test("/set parameter types values as Ollama's options and refuses what is not one", () => {
  const input = new ChatInput();
  input.accept("/set parameter temperature 0.2");
  input.accept("/set parameter num_ctx 1024");
  input.accept("/set parameter stop <|im_end|> END");
  assert.deepEqual(input.options, { temperature: 0.2, num_ctx: 1024, stop: ["<|im_end|>", "END"] });
  assert.deepEqual(parseParameter("seed", ["1.5"]), { error: "seed takes a whole number, not '1.5'" });
  assert.deepEqual(parseParameter("top_p", ["high"]), { error: "top_p takes a number, not 'high'" });
  assert.deepEqual(parseParameter("mirostat_x", ["1"]), { error: "unknown parameter 'mirostat_x'; /set parameter lists them" });
  assert.match((input.accept("/set parameter") as { text: string }).text, /Available Parameters:/);
});

test("a message without an answer leaves the conversation; commands and help answer as Ollama's", () => {
  const input = new ChatInput();
  input.accept("question");
  input.unanswered();
  assert.deepEqual(input.turns, []);
  assert.deepEqual(input.accept("/bye"), { kind: "exit" });
  assert.deepEqual(input.accept("/show info"), { kind: "show", what: "info" });
  assert.deepEqual(input.accept("/load other:q4"), { kind: "load", model: "other:q4" });
  assert.deepEqual(input.accept("/show nothing"), { kind: "print", text: "Unknown command '/show nothing'. Type /? for help\n" });
  assert.deepEqual(input.accept("/set bogus"), { kind: "print", text: "Unknown command '/set bogus'. Type /? for help\n" });
  assert.match((input.accept("/? shortcuts") as { text: string }).text, /Ctrl \+ c\s+Stop the model from responding/);
  assert.deepEqual(input.accept("   "), { kind: "none" });
  input.accept('"""half');
  input.interrupt();
  assert.equal(input.continuing, false);
  assert.deepEqual(input.accept("/set format json"), { kind: "print", text: "Set format to 'json' mode.\n" });
  assert.equal(input.format, "json");
});
