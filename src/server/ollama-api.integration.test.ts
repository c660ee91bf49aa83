import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Ollama, type ChatResponse, type GenerateResponse, type ProgressResponse } from "ollama";
import { loadConfig } from "../config/config.js";
import { generateModel, type GenerateModelResult } from "../forge/generate/generate-model.js";
import { startGrove, type RunningGrove } from "../services.js";
import { FakeHub } from "../test-support/fake-hub.js";
import { ModelStore } from "../store/model-store.js";

// The official `ollama` client against the real server (store mode) on a loopback port, with
// generated GGUF models, and a local Hugging Face-style hub for /api/pull.

let directory: string;
let grove: RunningGrove;
let hub: FakeHub;
let client: Ollama;
let base: GenerateModelResult;
const hubFiles = {} as Record<"q8" | "f16", GenerateModelResult>;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-ollama-api-"));
  const home = join(directory, "home");
  base = await generateModel({ preset: "test-tiny", seed: 7, dtype: "f16", outPath: join(directory, "base.gguf") });
  hubFiles.q8 = await generateModel({ preset: "test-tiny", seed: 9, dtype: "q8_0", outPath: join(directory, "hub.q8.gguf") });
  hubFiles.f16 = await generateModel({ preset: "test-tiny", seed: 9, dtype: "f16", outPath: join(directory, "hub.f16.gguf") });
  const store = await ModelStore.open(home);
  await store.importFile(base.path, { name: "tiny:a" });
  await store.close();
  hub = await FakeHub.start({
    repos: [
      {
        repo: "acme/Tiny-GGUF",
        readme: "---\nlicense: mit\n---\n# Tiny\n",
        files: [
          { path: "tiny.Q8_0.gguf", content: await readFile(hubFiles.q8.path) },
          { path: "tiny.F16.gguf", content: await readFile(hubFiles.f16.path) },
        ],
      },
    ],
  });
  const config = loadConfig({
    env: {},
    flags: { home, model: "tiny:a", port: 0, threads: 1, parallel: 2, contextSize: 512, logLevel: "silent", hubEndpoint: hub.endpoint },
  });
  grove = await startGrove(config);
  client = new Ollama({ host: grove.url });
});

after(async () => {
  await grove?.close();
  await hub?.close();
  await rm(directory, { recursive: true, force: true });
});

const messages = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Name three colours." },
];

/** Asserts Ollama's timing and count fields: whole nanoseconds, counts that add up. */
function assertStats(response: ChatResponse | GenerateResponse, maxTokens: number): void {
  assert.equal(response.done, true);
  assert.ok(response.done_reason === "stop" || response.done_reason === "length", response.done_reason);
  for (const field of ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"] as const) {
    assert.ok(Number.isInteger(response[field]) && response[field] >= 0, `${field} = ${response[field]}`);
  }
  assert.ok(response.total_duration > 0);
  assert.ok(response.total_duration >= response.prompt_eval_duration + response.eval_duration);
  assert.ok(response.prompt_eval_count > 0);
  assert.ok(response.eval_count >= 1 && response.eval_count <= maxTokens);
  if (response.done_reason === "length") assert.equal(response.eval_count, maxTokens);
  assert.ok(!Number.isNaN(new Date(response.created_at).getTime()));
}

/** The raw error answer of a POST: status and parsed body. */
async function postRaw(path: string, body: string, contentType = "application/json") {
  const response = await fetch(`${grove.url}${path}`, { method: "POST", headers: { "content-type": contentType }, body });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("Ollama-compatible API", () => {
  test("version and tags: the store's models with Ollama's fields", async () => {
    assert.match((await client.version()).version, /^\d+\.\d+\.\d+$/);
    const { models } = await client.list();
    const tiny = models.find((model) => model.name === "tiny:a");
    assert.ok(tiny, JSON.stringify(models));
    assert.equal(tiny.model, "tiny:a");
    assert.equal(tiny.digest, base.digest.slice(7));
    assert.equal(tiny.size, base.fileSize);
    assert.equal(tiny.details.format, "gguf");
    assert.equal(tiny.details.family, "llama");
    assert.deepEqual(tiny.details.families, ["llama"]);
    assert.equal(tiny.details.quantization_level, "F16");
    assert.match(tiny.details.parameter_size, /^\d+(\.\d+)?[KMB]$/);
    assert.ok(!Number.isNaN(new Date(tiny.modified_at).getTime()));
  });

  test("chat without streaming: message, done reason, counts and durations", async () => {
    const response = await client.chat({ model: "tiny:a", messages, stream: false, options: { temperature: 0, num_predict: 12 } });
    assert.equal(response.model, "tiny:a");
    assert.equal(response.message.role, "assistant");
    assert.equal(typeof response.message.content, "string");
    assertStats(response, 12);
    const model = grove.engine.models.find((candidate) => candidate.info.digest === base.digest)!;
    assert.equal(response.prompt_eval_count, model.applyChatTemplate(messages as never).length);
  });

  test("chat streams NDJSON by default; the pieces add up to the non-streamed answer", async () => {
    const options = { temperature: 0, num_predict: 12, seed: 3 };
    const whole = await client.chat({ model: "tiny:a", messages, stream: false, options });
    const parts: ChatResponse[] = [];
    for await (const part of await client.chat({ model: "tiny:a", messages, stream: true, options })) parts.push(part);
    const last = parts.at(-1)!;
    assert.ok(parts.slice(0, -1).every((part) => part.done === false && part.message.role === "assistant"));
    assert.equal(last.message.content, "");
    assertStats(last, 12);
    assert.equal(parts.map((part) => part.message.content).join(""), whole.message.content);
    assert.equal(last.eval_count, whole.eval_count);

    // Raw: the default is a stream of lines with Ollama's content type.
    const raw = await fetch(`${grove.url}/api/chat`, {
      method: "POST",
      body: JSON.stringify({ model: "tiny:a", messages, options: { num_predict: 3 } }),
      headers: { "content-type": "application/json" },
    });
    assert.equal(raw.headers.get("content-type"), "application/x-ndjson");
    const lines = (await raw.text()).trim().split("\n").map((line) => JSON.parse(line) as ChatResponse);
    assert.equal(lines.at(-1)!.done, true);
  });

  test("chat with no messages loads the model; format json and stop are accepted", async () => {
    const loaded = await client.chat({ model: "tiny:a", messages: [], stream: false });
    assert.equal(loaded.done, true);
    assert.equal(loaded.done_reason, "load");
    const json = await client.chat({
      model: "tiny:a",
      messages: [{ role: "user", content: "JSON please" }],
      format: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
      stream: false,
      options: { num_predict: 200, temperature: 0.7, seed: 11, stop: ["\n\n\n"] },
      keep_alive: "5m",
    });
    assertStats(json, 200);
    if (json.done_reason === "stop") assert.equal(typeof JSON.parse(json.message.content).name, "string");
  });

  test("generate: templated and raw prompts, streamed and not, with context", async () => {
    const response = await client.generate({ model: "tiny:a", prompt: "Once upon a time", system: "Be brief.", stream: false, options: { num_predict: 8, temperature: 0 } });
    assert.equal(typeof response.response, "string");
    assertStats(response, 8);
    assert.ok(Array.isArray(response.context) && response.context.length >= response.prompt_eval_count);

    const parts: GenerateResponse[] = [];
    for await (const part of await client.generate({ model: "tiny:a", prompt: "Once upon a time", system: "Be brief.", stream: true, options: { num_predict: 8, temperature: 0 } })) {
      parts.push(part);
    }
    assertStats(parts.at(-1)!, 8);
    assert.equal(parts.map((part) => part.response).join(""), response.response);

    const raw = await client.generate({ model: "tiny:a", prompt: "abc", raw: true, stream: false, options: { num_predict: 4 } });
    assertStats(raw, 4);
    assert.equal(raw.context, undefined);
    const model = grove.engine.models.find((candidate) => candidate.info.digest === base.digest)!;
    assert.equal(raw.prompt_eval_count, model.tokenize("abc", { special: true }).length);

    const loaded = await client.generate({ model: "tiny:a", prompt: "", stream: false });
    assert.equal(loaded.done_reason, "load");
  });

  test("embed returns unit vectors; the legacy embeddings route one raw vector", async () => {
    const embedded = await client.embed({ model: "tiny:a", input: ["hello world", "another text"] });
    assert.equal(embedded.model, "tiny:a");
    assert.equal(embedded.embeddings.length, 2);
    const size = grove.engine.models.find((candidate) => candidate.info.digest === base.digest)!.info.embeddingSize;
    for (const vector of embedded.embeddings) {
      assert.equal(vector.length, size);
      assert.ok(Math.abs(Math.hypot(...vector) - 1) < 1e-4);
    }
    assert.ok(embedded.prompt_eval_count > 0 && Number.isInteger(embedded.total_duration));
    const single = await client.embed({ model: "tiny:a", input: "hello world" });
    assert.deepEqual(single.embeddings[0], embedded.embeddings[0]);
    const legacy = await client.embeddings({ model: "tiny:a", prompt: "hello world" });
    assert.equal(legacy.embedding.length, size);
    const norm = Math.hypot(...legacy.embedding);
    assert.ok(legacy.embedding.every((value, index) => Math.abs(value / norm - embedded.embeddings[0]![index]!) < 1e-4));
  });

  test("show and ps describe the model", async () => {
    const shown = await client.show({ model: "tiny:a" });
    assert.equal(shown.details.family, "llama");
    assert.equal(shown.details.format, "gguf");
    const info = shown.model_info as unknown as Record<string, unknown>;
    assert.equal(info["general.architecture"], "llama");
    assert.equal(typeof info["llama.context_length"], "number");
    assert.equal(info["tokenizer.ggml.tokens"], null, "arrays only with verbose");
    assert.ok(shown.capabilities.includes("completion"));
    assert.equal(typeof shown.template, "string");
    const verbose = await client.show({ model: "tiny:a", verbose: true } as never);
    assert.ok(Array.isArray((verbose.model_info as unknown as Record<string, unknown>)["tokenizer.ggml.tokens"]));

    const { models } = await client.ps();
    const running = models.find((model) => model.name === "tiny:a");
    assert.ok(running, JSON.stringify(models));
    assert.equal(running.digest, base.digest.slice(7));
    assert.equal((running as unknown as { context_length: number }).context_length, 512);
    assert.ok(new Date(running.expires_at).getTime() > Date.now());
  });

  test("pull from the hub streams Ollama's status lines, names the model, and serves it", async () => {
    const statuses: ProgressResponse[] = [];
    for await (const line of await client.pull({ model: "hf.co/acme/Tiny-GGUF:Q8_0", stream: true })) statuses.push(line);
    assert.equal(statuses[0]!.status, "pulling manifest");
    assert.equal(statuses.at(-1)!.status, "success");
    const layer = statuses.filter((line) => line.status.startsWith("pulling ") && line.status !== "pulling manifest");
    assert.ok(layer.length >= 1);
    assert.equal(layer.at(-1)!.status, `pulling ${hubFiles.q8.digest.slice(7, 19)}`);
    assert.equal(layer.at(-1)!.digest, hubFiles.q8.digest);
    assert.equal(layer.at(-1)!.completed, hubFiles.q8.fileSize);
    assert.equal(layer.at(-1)!.total, hubFiles.q8.fileSize);
    assert.ok(statuses.some((line) => line.status === "verifying sha256 digest"));

    const { models } = await client.list();
    const pulled = models.find((model) => model.name === "acme/tiny-gguf:q8_0");
    assert.ok(pulled, JSON.stringify(models.map((model) => model.name)));
    assert.equal(pulled.digest, hubFiles.q8.digest.slice(7));
    assert.equal(pulled.details.quantization_level, "Q8_0");

    // The name the client pulled is the name it chats with. Greedy: a sampled first token can be
    // the end of the turn on this random model (eval_count 0), which failed the stats check once.
    const chat = await client.chat({ model: "hf.co/acme/Tiny-GGUF:Q8_0", messages, stream: false, options: { num_predict: 4, temperature: 0 } });
    assert.equal(chat.model, "hf.co/acme/Tiny-GGUF:Q8_0");
    assertStats(chat, 4);

    // Pulling again downloads nothing; a store name needs no pull.
    const fileRequests = hub.fileRequests().length;
    assert.deepEqual(await client.pull({ model: "hf.co/acme/Tiny-GGUF:Q8_0", stream: false }), { status: "success" });
    assert.deepEqual(await client.pull({ model: "tiny:a", stream: false }), { status: "success" });
    assert.equal(hub.fileRequests().length, fileRequests);
  });

  test("pull errors: unknown names 404, an ambiguous repository 400, a missing quantization fails in the stream", async () => {
    await assert.rejects(client.pull({ model: "llama3.2", stream: false }), (error: any) => error.status_code === 404 && /hf\.co/.test(error.error));
    await assert.rejects(client.pull({ model: "hf.co/acme/Tiny-GGUF", stream: false }), (error: any) => error.status_code === 400 && /2 GGUF files/.test(error.error));
    await assert.rejects(
      (async () => {
        for await (const _line of await client.pull({ model: "hf.co/acme/Tiny-GGUF:Q4_K_M", stream: true })) void _line;
      })(),
      /no GGUF file matching 'Q4_K_M'/,
    );
  });

  test("errors take Ollama's shape: unknown model 404, bad options 400", async () => {
    await assert.rejects(
      client.chat({ model: "nothing:here", messages, stream: false }),
      (error: any) => error.name === "ResponseError" && error.status_code === 404 && /nothing:here/.test(error.error),
    );
    const unknown = await postRaw("/api/generate", JSON.stringify({ model: "nothing:here", prompt: "hi" }));
    assert.equal(unknown.status, 404);
    assert.deepEqual(Object.keys(unknown.body), ["error"]);
    assert.equal(typeof unknown.body.error, "string");

    const bad: [string, object][] = [
      ["temperature", { temperature: "hot" }],
      ["top_p", { top_p: 5 }],
      ["num_predict", { num_predict: -3 }],
      ["mirostat", { mirostat: 2 }],
      ["stop", { stop: [""] }],
    ];
    for (const [field, options] of bad) {
      await assert.rejects(
        client.chat({ model: "tiny:a", messages, stream: false, options: options as never }),
        (error: any) => error.status_code === 400 && error.error.includes(field),
        field,
      );
    }
    for (const request of [
      { model: "tiny:a", messages, think: true },
      { model: "tiny:a", messages, tools: [{ type: "function", function: { name: "get weather" } }] },
      { model: "tiny:a", messages: [{ role: "assistant", content: "", tool_calls: [{ function: { name: "f", arguments: "not an object" } }] }] },
      { model: "tiny:a", messages: [{ role: "wizard", content: "x" }] },
      { model: "tiny:a", messages, format: "yaml" },
      { model: "tiny:a", messages, keep_alive: "soon" },
    ]) {
      const answer = await postRaw("/api/chat", JSON.stringify({ ...request, stream: false }));
      assert.equal(answer.status, 400, JSON.stringify(request));
      assert.deepEqual(Object.keys(answer.body), ["error"]);
    }
    const malformed = await postRaw("/api/chat", "{not json");
    assert.equal(malformed.status, 400);
    assert.equal(typeof malformed.body.error, "string");
    const tooLong = await postRaw("/api/generate", JSON.stringify({ model: "tiny:a", prompt: "word ".repeat(600), stream: false }));
    assert.equal(tooLong.status, 400);
  });

  test("curl-style bodies parse, and Grove's own /api and /v1 routes keep their shapes", async () => {
    // `curl -d` sends application/x-www-form-urlencoded, as in Ollama's docs.
    const curl = await postRaw("/api/generate", JSON.stringify({ model: "tiny:a", prompt: "hi", stream: false, options: { num_predict: 2 } }), "application/x-www-form-urlencoded");
    assert.equal(curl.status, 200);
    assert.equal(curl.body.done, true);
    const admin = (await (await fetch(`${grove.url}/api/models`)).json()) as { models: { names: string[] }[] };
    assert.ok(admin.models.some((model) => model.names.includes("tiny:a")));
    const openai = await postRaw("/v1/chat/completions", JSON.stringify({ model: "nothing:here", messages }));
    assert.equal(openai.status, 404);
    assert.equal((openai.body.error as { code: string }).code, "model_not_found");
  });
});
