import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import type { RunningGrove } from "../services.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";

// The official OpenAI client against the real server on a loopback port, with a real
// generated GGUF served by Grove's decode loop.

let model: TestModel;
let grove: RunningGrove;
let client: OpenAI;
let modelId: string;

before(async () => {
  model = await createTestModel();
  grove = await startTestGrove(model, { parallel: 4, contextSize: 512 });
  client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
  modelId = grove.engine.models[0]!.info.id;
});

after(async () => {
  await grove?.close();
  await model?.cleanup();
});

const messages = [
  { role: "system" as const, content: "You are terse." },
  { role: "user" as const, content: "Name three colours." },
];

describe("chat completions", () => {
  test("non-streaming: shape, finish reason and usage equal to real token counts", async () => {
    const response = await client.chat.completions.create({
      model: modelId,
      messages,
      max_tokens: 24,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    assert.equal(response.object, "chat.completion");
    assert.match(response.id, /^chatcmpl-[0-9a-f]{24}$/);
    assert.equal(response.choices.length, 1);
    const choice = response.choices[0]!;
    assert.equal(choice.message.role, "assistant");
    assert.ok(choice.finish_reason === "stop" || choice.finish_reason === "length");
    const expectedPrompt = grove.engine.getModel(modelId).applyChatTemplate(messages).length;
    assert.equal(response.usage?.prompt_tokens, expectedPrompt);
    const content = choice.logprobs?.content ?? [];
    // One logprob entry per generated token: the count the usage must report.
    assert.equal(response.usage?.completion_tokens, content.length);
    assert.ok(content.length >= 1 && content.length <= 24);
    if (choice.finish_reason === "length") assert.equal(content.length, 24);
    assert.equal(response.usage?.total_tokens, expectedPrompt + content.length);
    for (const entry of content) {
      assert.ok(Number.isFinite(entry.logprob) && entry.logprob <= 0);
      assert.equal(entry.top_logprobs.length, 3);
    }
  });

  test("streaming matches non-streaming and reports usage", async () => {
    const request = { model: modelId, messages, max_tokens: 20, temperature: 0, seed: 3 };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (choice?.delta.content) text += choice.delta.content;
      if (choice?.finish_reason) finish = choice.finish_reason;
    }
    assert.ok(chunks >= 3, "role chunk, content, finish");
    assert.equal(text, whole.choices[0]!.message.content);
    assert.equal(finish, whole.choices[0]!.finish_reason);
    assert.deepEqual(
      { prompt: usage?.prompt_tokens, completion: usage?.completion_tokens },
      { prompt: whole.usage?.prompt_tokens, completion: whole.usage?.completion_tokens },
    );
  });

  test("ignore_eos generates exactly max_tokens", async () => {
    const response = await client.chat.completions.create({
      model: modelId,
      messages,
      max_tokens: 40,
      temperature: 0,
      // @ts-expect-error llama.cpp extension
      ignore_eos: true,
    });
    assert.equal(response.usage?.completion_tokens, 40);
    assert.equal(response.choices[0]!.finish_reason, "length");
  });

  test("a repeated prompt prefix is served from the slot's cache", async () => {
    const longSystem = { role: "system" as const, content: "You answer questions about gardens. ".repeat(8) };
    const ask = (question: string) =>
      client.chat.completions.create({ model: modelId, messages: [longSystem, { role: "user", content: question }], max_tokens: 2 });
    await ask("What grows in shade?");
    const second = await ask("What needs sun?");
    const cached = second.usage?.prompt_tokens_details?.cached_tokens ?? 0;
    const systemTokens = grove.engine.getModel(modelId).applyChatTemplate([longSystem]).length;
    assert.ok(cached >= systemTokens - 4, `cached ${cached} of a ${systemTokens}-token shared prefix`);
    assert.ok(cached < (second.usage?.prompt_tokens ?? 0));
  });

  test("the same seed reproduces a sampled completion; logit_bias steers it", async () => {
    const request = { model: modelId, messages, max_tokens: 12, temperature: 1, seed: 1234 };
    const first = await client.chat.completions.create(request);
    const again = await client.chat.completions.create(request);
    assert.equal(again.choices[0]!.message.content, first.choices[0]!.message.content);
    const forced = grove.engine.getModel(modelId).tokenize("e")[0]!;
    const biased = await client.chat.completions.create({
      ...request,
      max_tokens: 6,
      logit_bias: { [String(forced)]: 100 },
      logprobs: true,
    });
    assert.ok(biased.choices[0]!.logprobs!.content!.every((entry) => entry.token === "e"));
    const [endToken] = grove.engine.getModel(modelId).tokenize("<|im_end|>", { special: true });
    const ended = await client.chat.completions.create({ ...request, logit_bias: { [String(endToken)]: 100 } });
    assert.equal(ended.choices[0]!.finish_reason, "stop");
    assert.equal(ended.usage?.completion_tokens, 0, "a +100 bias on the end token ends the answer at once");
    const penalised = await client.chat.completions.create({ ...request, presence_penalty: 1.5, frequency_penalty: 1 });
    assert.equal(penalised.choices.length, 1);
  });

  test("json_schema output parses and validates", async () => {
    const schema = {
      type: "object",
      properties: { name: { type: "string" }, age: { type: "integer" }, tags: { type: "array", items: { type: "string" } } },
      required: ["name", "age", "tags"],
      additionalProperties: false,
    };
    const response = await client.chat.completions.create({
      model: modelId,
      messages: [{ role: "user", content: "Describe a person as JSON." }],
      max_tokens: 400,
      temperature: 0.7,
      seed: 11,
      response_format: { type: "json_schema", json_schema: { name: "person", schema, strict: true } },
    });
    assert.equal(response.choices[0]!.finish_reason, "stop");
    const parsed = JSON.parse(response.choices[0]!.message.content ?? "");
    assert.deepEqual(Object.keys(parsed).sort(), ["age", "name", "tags"]);
    assert.equal(typeof parsed.name, "string");
    assert.ok(Number.isInteger(parsed.age));
    assert.ok(Array.isArray(parsed.tags) && parsed.tags.every((tag: unknown) => typeof tag === "string"));
  });

  test("stop strings end the output before the stop string", async () => {
    const free = await client.chat.completions.create({ model: modelId, messages, max_tokens: 30, temperature: 0 });
    const text = free.choices[0]!.message.content ?? "";
    const stop = text.slice(5, 7);
    if (text.length < 8 || stop.trim().length === 0) return; // nothing stable to stop on
    const stopped = await client.chat.completions.create({ model: modelId, messages, max_tokens: 30, temperature: 0, stop: [stop] });
    assert.equal(stopped.choices[0]!.finish_reason, "stop");
    assert.equal(stopped.choices[0]!.message.content, text.slice(0, text.indexOf(stop)));
  });

  test("n: 3 returns three choices, streaming and not, from one evaluated prompt", async () => {
    const response = await client.chat.completions.create({ model: modelId, messages, n: 3, max_tokens: 6, temperature: 1, seed: 11, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    assert.deepEqual(response.choices.map((choice) => choice.index), [0, 1, 2]);
    for (const choice of response.choices) assert.equal(choice.finish_reason, "length");
    assert.equal(response.usage!.completion_tokens, 18);
    const stream = await client.chat.completions.create({ model: modelId, messages, n: 3, max_tokens: 5, stream: true, stream_options: { include_usage: true }, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsStreaming);
    const texts = ["", "", ""];
    const finished = new Set<number>();
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        texts[choice.index] += choice.delta.content ?? "";
        if (choice.finish_reason) finished.add(choice.index);
      }
      usage = chunk.usage ?? usage;
    }
    assert.deepEqual([...finished].sort(), [0, 1, 2]);
    assert.ok(texts.every((text) => text.length > 0));
    assert.equal(usage!.completion_tokens, 15);
    const completions = await client.completions.create({ model: modelId, prompt: ["one", "two"], n: 2, max_tokens: 3, temperature: 0 });
    assert.deepEqual(completions.choices.map((choice) => choice.index), [0, 1, 2, 3]);
  });

  test("8 concurrent streaming clients all finish", async () => {
    const runs = Array.from({ length: 8 }, async (_, index) => {
      const stream = await client.chat.completions.create({
        model: modelId,
        messages: [{ role: "user", content: `Request number ${index}` }],
        max_tokens: 16,
        temperature: 0.8,
        seed: index,
        stream: true,
        stream_options: { include_usage: true },
      });
      let finish: string | null = null;
      let completion = 0;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
        if (chunk.usage) completion = chunk.usage.completion_tokens;
      }
      return { finish, completion };
    });
    const results = await Promise.all(runs);
    for (const result of results) {
      assert.ok(result.finish === "stop" || result.finish === "length");
      assert.ok(result.completion >= 1 && result.completion <= 16);
    }
    const health = (await (await fetch(`${grove.url}/health`)).json()) as { models: { slots_busy: number }[] };
    assert.equal(health.models[0]!.slots_busy, 0);
  });
});

describe("fairness", () => {
  test("a request arriving while other streams run is served before they end", async () => {
    // Fill every slot's cache first, so the newcomer has stale tokens to erase.
    await Promise.all(
      Array.from({ length: 4 }, (_, index) =>
        client.completions.create({ model: modelId, prompt: `warm ${index}`, max_tokens: 2 }),
      ),
    );
    const order: string[] = [];
    let newcomer: Promise<void> | undefined;
    const longStream = async (index: number) => {
      const request = {
        model: modelId,
        prompt: `A long story number ${index}:`,
        max_tokens: 400,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
        ignore_eos: true,
      };
      const stream = await client.completions.create(request as OpenAI.CompletionCreateParamsStreaming);
      let chunks = 0;
      let generated = 0;
      for await (const chunk of stream) {
        if (chunk.usage) generated = chunk.usage.completion_tokens;
        if (++chunks === 5 && index === 0) {
          newcomer = client.completions
            .create({ model: modelId, prompt: "Short question?", max_tokens: 2 })
            .then(() => void order.push("newcomer done"));
        }
      }
      order.push(`stream ${index} done`);
      return generated;
    };
    const generated = await Promise.all([0, 1, 2].map(longStream));
    await newcomer;
    assert.deepEqual(generated, [400, 400, 400]);
    assert.equal(order[0], "newcomer done", order.join(", "));
  });
});

describe("completions", () => {
  test("echo + logprobs scores every prompt token (lm-evaluation-harness style)", async () => {
    const prompt = "The quick brown fox jumps over the lazy dog.";
    const response = await client.completions.create({ model: modelId, prompt, max_tokens: 0, echo: true, logprobs: 1, temperature: 0 });
    const choice = response.choices[0]!;
    assert.equal(choice.text, prompt);
    const logprobs = choice.logprobs!;
    const promptTokens = grove.engine.getModel(modelId).tokenize(prompt).length;
    assert.equal(response.usage?.prompt_tokens, promptTokens);
    assert.equal(logprobs.tokens!.length, promptTokens);
    assert.equal(logprobs.tokens!.join(""), prompt);
    assert.equal(logprobs.token_logprobs![0], null);
    for (const value of logprobs.token_logprobs!.slice(1)) assert.ok(Number.isFinite(value) && (value as number) <= 0);
    assert.equal(logprobs.top_logprobs![1] && Object.keys(logprobs.top_logprobs![1]!).length, 1);
  });

  test("echo + logprobs with generation appends the generated tokens", async () => {
    const prompt = "Once upon a time";
    const response = await client.completions.create({ model: modelId, prompt, max_tokens: 5, echo: true, logprobs: 2, temperature: 0 });
    const choice = response.choices[0]!;
    assert.ok(choice.text.startsWith(prompt));
    const promptTokens = response.usage!.prompt_tokens;
    assert.equal(choice.logprobs!.tokens!.length, promptTokens + response.usage!.completion_tokens);
    assert.equal(choice.logprobs!.tokens!.join(""), choice.text);
  });

  test("a batch of prompts gives one choice each", async () => {
    const response = await client.completions.create({ model: modelId, prompt: ["one", "two", "three"], max_tokens: 4, temperature: 0 });
    assert.deepEqual(response.choices.map((choice) => choice.index), [0, 1, 2]);
  });
});

describe("embeddings", () => {
  test("right dimension, deterministic, base64 and float agree", async () => {
    const info = (await client.models.retrieve(modelId)) as unknown as { embedding_size: number };
    const first = await client.embeddings.create({ model: modelId, input: ["hello world", "another text"] });
    const second = await client.embeddings.create({ model: modelId, input: ["hello world", "another text"], encoding_format: "float" });
    assert.equal(first.data.length, 2);
    assert.equal(first.data[0]!.embedding.length, info.embedding_size);
    assert.ok(info.embedding_size > 0);
    // The client asks for base64 by default; floats must agree to float32 precision.
    first.data[0]!.embedding.forEach((value, index) => assert.ok(Math.abs(value - second.data[0]!.embedding[index]!) < 1e-6));
    assert.notDeepEqual(first.data[0]!.embedding, first.data[1]!.embedding);
    assert.ok(first.usage.prompt_tokens > 0);
  });
});

describe("models and health", () => {
  test("lists the served model", async () => {
    const page = await client.models.list();
    assert.deepEqual(page.data.map((entry) => entry.id), [modelId]);
    const health = await fetch(`${grove.url}/health`);
    assert.equal(health.status, 200);
  });
});
