import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadConfig } from "../config/config.js";
import type { RunningGrove } from "../services.js";
import { startGrove } from "../services.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";

// One slot and a wait queue of one: a third concurrent request must get 503, and an aborted
// stream must hand its slot to the waiting request.

let model: TestModel;
let grove: RunningGrove;
let client: OpenAI;
let modelId: string;

before(async () => {
  model = await createTestModel();
  grove = await startTestGrove(model, { parallel: 1, queueLimit: 1, contextSize: 512, bodyLimit: 65_536 });
  client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
  modelId = grove.engine.models[0]!.info.id;
});

after(async () => {
  await grove?.close();
  await model?.cleanup();
});

async function post(path: string, body: string | object, headers: Record<string, string> = {}) {
  const response = await fetch(`${grove.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json().catch(() => undefined)) as any };
}

const chat = (extra: object) => ({ model: "x", messages: [{ role: "user", content: "hi" }], ...extra });

describe("bad requests get 4xx with an OpenAI-style body, and the server keeps serving", () => {
  const cases: { name: string; path?: string; body: () => string | object; status: number; param?: string }[] = [
    { name: "unknown model", body: () => chat({ model: "no-such-model" }), status: 404, param: "model" },
    { name: "negative max_tokens", body: () => chat({ model: modelId, max_tokens: -1 }), status: 400, param: "max_tokens" },
    { name: "huge max_tokens", body: () => chat({ model: modelId, max_tokens: 1_000_000 }), status: 400, param: "max_tokens" },
    { name: "max_tokens not an integer", body: () => chat({ model: modelId, max_tokens: 2.5 }), status: 400, param: "max_tokens" },
    { name: "malformed JSON", body: () => '{"model": "x", "messages": [', status: 400 },
    { name: "body not an object", body: () => "[1,2]", status: 400 },
    {
      name: "bad JSON schema",
      body: () => chat({ model: modelId, response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "no-such-type" } } } }),
      status: 400,
      param: "response_format",
    },
    {
      name: "over-deep JSON schema",
      body: () => {
        let schema: object = { type: "string" };
        for (let depth = 0; depth < 40; depth++) schema = { type: "object", properties: { a: schema } };
        return chat({ model: modelId, response_format: { type: "json_schema", json_schema: { name: "x", schema } } });
      },
      status: 400,
      param: "response_format",
    },
    { name: "n=5", body: () => chat({ model: modelId, n: 5 }), status: 400, param: "n" },
    { name: "a tool name with a space", body: () => chat({ model: modelId, tools: [{ type: "function", function: { name: "get weather" } }] }), status: 400, param: "tools[0].function.name" },
    { name: "tool_choice naming a tool not offered", body: () => chat({ model: modelId, tools: [{ type: "function", function: { name: "f" } }], tool_choice: { type: "function", function: { name: "g" } } }), status: 400, param: "tool_choice" },
    { name: "image content part", body: () => ({ model: modelId, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }), status: 400 },
    { name: "streaming a batch of prompts", path: "/v1/completions", body: () => ({ model: modelId, prompt: ["a", "b"], stream: true }), status: 400, param: "prompt" },
    { name: "empty messages", body: () => ({ model: modelId, messages: [] }), status: 400, param: "messages" },
    { name: "unknown role", body: () => ({ model: modelId, messages: [{ role: "wizard", content: "x" }] }), status: 400 },
    { name: "temperature out of range", body: () => chat({ model: modelId, temperature: 7 }), status: 400, param: "temperature" },
    { name: "too many stop strings", body: () => chat({ model: modelId, stop: Array.from({ length: 40 }, (_, i) => `s${i}`) }), status: 400, param: "stop" },
    { name: "logit_bias on a token outside the vocabulary", body: () => chat({ model: modelId, logit_bias: { "99999999": 5 } }), status: 400, param: "logit_bias" },
    { name: "top_logprobs over 20", body: () => chat({ model: modelId, logprobs: true, top_logprobs: 50 }), status: 400, param: "top_logprobs" },
    { name: "oversized body", body: () => chat({ model: modelId, messages: [{ role: "user", content: "x".repeat(100_000) }] }), status: 413 },
    { name: "completions: token id outside the vocabulary", path: "/v1/completions", body: () => ({ model: modelId, prompt: [1, 2, 99999999] }), status: 400, param: "prompt" },
    { name: "completions: empty prompt", path: "/v1/completions", body: () => ({ model: modelId, prompt: "" }), status: 400, param: "prompt" },
    { name: "embeddings: missing input", path: "/v1/embeddings", body: () => ({ model: modelId }), status: 400, param: "input" },
    { name: "embeddings: dimensions", path: "/v1/embeddings", body: () => ({ model: modelId, input: "x", dimensions: 8 }), status: 400, param: "dimensions" },
  ];
  for (const entry of cases) {
    test(entry.name, async () => {
      const { status, body } = await post(entry.path ?? "/v1/chat/completions", entry.body());
      assert.equal(status, entry.status, JSON.stringify(body));
      assert.equal(typeof body?.error?.message, "string");
      assert.ok(body.error.message.length > 0);
      assert.equal(typeof body.error.type, "string");
      assert.ok("param" in body.error && "code" in body.error);
      if (entry.param) assert.equal(body.error.param, entry.param);
    });
  }

  test("unknown route is a 404 in the same shape", async () => {
    const response = await fetch(`${grove.url}/v1/nothing-here`);
    assert.equal(response.status, 404);
    assert.equal(((await response.json()) as any).error.code, "not_found");
  });

  test("still serves after all of them", async () => {
    const response = await client.chat.completions.create({ model: modelId, messages: [{ role: "user", content: "hi" }], max_tokens: 4 });
    assert.equal(response.choices.length, 1);
  });
});

async function health(): Promise<any> {
  return (await fetch(`${grove.url}/health`)).json();
}

/** Polls /health until `predicate` holds; a bounded wait on state, not a sleep. */
async function waitForHealth(predicate: (model: any) => boolean): Promise<any> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const model = (await health()).models[0];
    if (predicate(model)) return model;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail("the server never reached the expected state");
}

describe("slots", () => {
  test("a full queue answers 503; an aborted stream frees its slot for the waiting request", async () => {
    const before = (await health()).models[0].finished;
    const controller = new AbortController();
    // ignore_eos (a llama.cpp extension) keeps the stream going until it is aborted.
    const request = {
      model: modelId,
      messages: [{ role: "user", content: "Tell a long story." }],
      max_tokens: 400,
      temperature: 0,
      stream: true,
      ignore_eos: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming;
    const stream = await client.chat.completions.create(request, { signal: controller.signal });
    let chunks = 0;
    let waiting: Promise<{ status: number; body: any }> | undefined;
    try {
      for await (const chunk of stream) {
        void chunk;
        if (++chunks !== 3) continue;
        // The only slot is busy: one request may wait, the next is refused at once.
        waiting = post("/v1/chat/completions", chat({ model: modelId, max_tokens: 4, ignore_eos: true }));
        await waitForHealth((model) => model.queued === 1);
        const refused = await post("/v1/chat/completions", chat({ model: modelId, max_tokens: 2 }));
        assert.equal(refused.status, 503);
        assert.equal(refused.body.error.code, "overloaded");
        controller.abort();
      }
    } catch (error) {
      assert.ok(controller.signal.aborted, `stream failed before the abort: ${String(error)}`);
    }
    // Chunks the client had already received when it aborted still come out of its buffer (a
    // fast model streams several per read); what matters is that the stream ends and its slot frees.
    assert.ok(chunks >= 3 && chunks < 400, `${chunks} chunks`);
    // The waiting request needs the only slot: it is served once the abort frees it.
    const served = await waiting!;
    assert.equal(served.status, 200);
    assert.equal(served.body.choices.length, 1);
    const after = await waitForHealth((model) => model.slots_busy === 0);
    assert.equal(after.finished.aborted, before.aborted + 1, "the stream's generation ended as aborted, not by length");
    assert.equal(after.finished.length, before.length + 1, "the waiting request ran to max_tokens");
  });
});

describe("binding and keys", () => {
  test("refuses a non-loopback bind without a key", async () => {
    const config = loadConfig({ env: {}, flags: { home: model.directory, model: model.path, host: "0.0.0.0", port: 0 } });
    await assert.rejects(startGrove(config), (error: any) => error.code === "config_invalid" && /API key/.test(error.message));
  });

  test("with a key, /v1 requires it", async () => {
    const keyed = await startTestGrove(model, { apiKey: "s3cret-key", parallel: 1 });
    try {
      const denied = await fetch(`${keyed.url}/v1/models`);
      assert.equal(denied.status, 401);
      assert.equal(((await denied.json()) as any).error.type, "authentication_error");
      const wrong = await fetch(`${keyed.url}/v1/models`, { headers: { authorization: "Bearer wrong" } });
      assert.equal(wrong.status, 401);
      const allowed = await fetch(`${keyed.url}/v1/models`, { headers: { authorization: "Bearer s3cret-key" } });
      assert.equal(allowed.status, 200);
      assert.equal((await fetch(`${keyed.url}/health`)).status, 200);
    } finally {
      await keyed.close();
    }
  });
});
