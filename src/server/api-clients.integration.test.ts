import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import type { RunningGrove } from "../services.js";
import { startTestGrove, type TestModel } from "../test-support/grove-fixture.js";

// The official clients of the Responses and Messages APIs against the real server, on the
// shipped chat model (it answers a word's part of speech), with a key so x-api-key is exercised.

const REPO = resolve(fileURLToPath(new URL("../../", import.meta.url)));
const CHAT_MODEL = join(REPO, "data", "demo", "models", "demo-s-chat-f16.gguf");
const KEY = "test-key-123";
const PARTS = /^(noun|verb|adjective|adverb)\.?$/;
// Greedy decoding; this SDK's types no longer list temperature, which the Messages API still takes.
const GREEDY = { temperature: 0 } as object;

let directory: string;
let grove: RunningGrove;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-clients-"));
  const model: TestModel = { path: CHAT_MODEL, directory, cleanup: async () => {} };
  grove = await startTestGrove(model, { parallel: 2, contextSize: 512, apiKey: KEY });
  openai = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: KEY, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: grove.url, apiKey: KEY, maxRetries: 0 });
});

after(async () => {
  await grove?.close();
  await rm(directory, { recursive: true, force: true });
});

describe("OpenAI Responses API (openai client)", () => {
  test("responses.create answers, with resp_/msg_ ids, output_text and usage", async () => {
    const response = await openai.responses.create({ model: grove.defaultModel, input: "What part of speech is dog?", temperature: 0, max_output_tokens: 8 });
    assert.match(response.id, /^resp_/);
    assert.equal(response.status, "completed");
    assert.match(response.output[0]!.id!, /^msg_/);
    assert.match(response.output_text.trim(), PARTS);
    assert.ok(response.usage!.input_tokens > 5);
    assert.ok(response.usage!.output_tokens >= 1);
  });

  test("streaming: the events in order, deltas adding up to the completed response's text", async () => {
    const stream = await openai.responses.create({ model: grove.defaultModel, input: [{ role: "user", content: "What part of speech is quickly?" }], temperature: 0, stream: true });
    const types: string[] = [];
    let text = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed") completed = event.response;
    }
    assert.deepEqual(types.slice(0, 4), ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]);
    assert.equal(types.at(-1), "response.completed");
    const item = completed!.output[0] as OpenAI.Responses.ResponseOutputMessage;
    assert.equal((item.content[0] as OpenAI.Responses.ResponseOutputText).text, text);
    assert.match(text.trim(), PARTS);
  });

  test("max_output_tokens reached: status incomplete with its reason; previous_response_id is refused by name", async () => {
    const response = await openai.responses.create({ model: grove.defaultModel, input: "What part of speech is dog?", max_output_tokens: 1 });
    assert.equal(response.status, "incomplete");
    assert.equal(response.incomplete_details?.reason, "max_output_tokens");
    await assert.rejects(openai.responses.create({ model: grove.defaultModel, input: "hi", previous_response_id: "resp_1" }), (error: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(error.status, 400);
      assert.match(error.message, /previous_response_id/);
      return true;
    });
  });
});

describe("Anthropic Messages API (@anthropic-ai/sdk)", () => {
  test("messages.create with a system prompt answers; usage and stop_reason as Anthropic's", async () => {
    const message = await anthropic.messages.create({
      model: grove.defaultModel,
      max_tokens: 8,
      ...GREEDY,
      system: "You answer with a part of speech.",
      messages: [{ role: "user", content: "What part of speech is dog?" }],
    });
    assert.equal(message.type, "message");
    assert.equal(message.role, "assistant");
    const block = message.content[0]!;
    assert.equal(block.type, "text");
    assert.match((block as Anthropic.TextBlock).text.trim(), PARTS);
    assert.ok(["end_turn", "max_tokens"].includes(message.stop_reason!));
    assert.ok(message.usage.input_tokens > 5);
  });

  test("streaming: message_start … message_stop, and the SDK's final message equals the deltas", async () => {
    const stream = anthropic.messages.stream({ model: grove.defaultModel, max_tokens: 8, ...GREEDY, messages: [{ role: "user", content: "What part of speech is happy?" }] });
    const types: string[] = [];
    let text = "";
    stream.on("streamEvent", (event) => types.push(event.type));
    stream.on("text", (delta) => (text += delta));
    const final = await stream.finalMessage();
    assert.equal(types[0], "message_start");
    assert.equal(types.at(-1), "message_stop");
    assert.equal((final.content[0] as Anthropic.TextBlock).text, text);
    assert.match(text.trim(), PARTS);
  });

  test("stop_sequences: stop_reason stop_sequence names the one that ended it", async () => {
    const message = await anthropic.messages.create({ model: grove.defaultModel, max_tokens: 16, ...GREEDY, stop_sequences: ["."], messages: [{ role: "user", content: "What part of speech is dog?" }] });
    assert.equal(message.stop_reason, "stop_sequence");
    assert.equal(message.stop_sequence, ".");
    assert.ok(!(message.content[0] as Anthropic.TextBlock).text.includes("."));
  });

  test("count_tokens counts the templated conversation; a wrong key is refused", async () => {
    const counted = await anthropic.messages.countTokens({ model: grove.defaultModel, messages: [{ role: "user", content: "What part of speech is dog?" }] });
    const created = await anthropic.messages.create({ model: grove.defaultModel, max_tokens: 1, messages: [{ role: "user", content: "What part of speech is dog?" }] });
    assert.equal(counted.input_tokens, created.usage.input_tokens);
    const stranger = new Anthropic({ baseURL: grove.url, apiKey: "wrong", maxRetries: 0 });
    await assert.rejects(stranger.messages.create({ model: grove.defaultModel, max_tokens: 1, messages: [{ role: "user", content: "x" }] }), (error: InstanceType<typeof Anthropic.APIError>) => error.status === 401);
  });

  test("an empty conversation is answered (llama-server's rule); an image, in a message or a tool result, is a 400 that says images are not read", async () => {
    const anthropic = new Anthropic({ baseURL: grove.url, apiKey: KEY, maxRetries: 0 });
    const empty = await anthropic.messages.create({ model: grove.defaultModel, max_tokens: 2, messages: [] });
    assert.equal(empty.type, "message");
    assert.ok(empty.usage.input_tokens > 0 && empty.usage.output_tokens > 0, JSON.stringify(empty.usage));
    const image = { type: "image" as const, source: { type: "base64" as const, media_type: "image/png" as const, data: "iVBORw0KGgo=" } };
    for (const messages of [
      [{ role: "user" as const, content: [image, { type: "text" as const, text: "What is this?" }] }],
      [
        { role: "user" as const, content: "Read it" },
        { role: "assistant" as const, content: [{ type: "tool_use" as const, id: "tool_1", name: "read", input: { file: "a.png" } }] },
        { role: "user" as const, content: [{ type: "tool_result" as const, tool_use_id: "tool_1", content: [{ type: "text" as const, text: "File: a.png" }, image] }] },
      ],
    ]) {
      await assert.rejects(anthropic.messages.create({ model: grove.defaultModel, max_tokens: 2, messages }), (error: InstanceType<typeof Anthropic.APIError>) => {
        assert.equal(error.status, 400);
        assert.match(error.message, /Image input is not supported: this model has no multimodal projector/);
        return true;
      });
    }
  });

  test("bad input: missing max_tokens, messages that are not a list and a bad block are 400s naming the field", async () => {
    const post = (body: unknown) => fetch(`${grove.url}/v1/messages`, { method: "POST", headers: { "content-type": "application/json", "x-api-key": KEY }, body: JSON.stringify(body) });
    for (const [body, field] of [
      [{ model: grove.defaultModel, messages: [{ role: "user", content: "x" }] }, "max_tokens"],
      [{ model: grove.defaultModel, max_tokens: 4, messages: "x" }, "messages"],
      [{ model: grove.defaultModel, max_tokens: 4, messages: [{ role: "user", content: [{ type: "image", source: { type: "file", file_id: "f" } }] }] }, "messages"],
      [{ model: grove.defaultModel, max_tokens: 4, messages: [{ role: "user", content: [{ type: "image", source: {} }] }] }, "messages"],
      [{ model: grove.defaultModel, max_tokens: 4, messages: [{ role: "system", content: "x" }] }, "messages"],
    ] as const) {
      const response = await post(body);
      assert.equal(response.status, 400);
      const json = (await response.json()) as { error: { message: string } };
      assert.match(json.error.message, new RegExp(field), JSON.stringify(body));
    }
    const responses = await fetch(`${grove.url}/v1/responses`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` }, body: JSON.stringify({ model: grove.defaultModel, input: [] }) });
    assert.equal(responses.status, 400);
  });
});
