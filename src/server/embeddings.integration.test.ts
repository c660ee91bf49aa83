import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { generateModel } from "../forge/generate/generate-model.js";
import { readTokenizerMetadata, writeTokenizerMetadata } from "../forge/generate/tokenizer-metadata.js";
import { GgufWriter } from "../gguf/gguf-writer.js";
import type { RunningGrove } from "../services.js";
import { startTestGrove, type TestModel } from "../test-support/grove-fixture.js";

// Embeddings as llama-server computes them (issue 18, its test_embedding.py): special tokens added
// to text, token ids taken as given, text and ids mixed, vectors normalised unless asked not to,
// llama-server's own /embeddings, and --pooling reaching llama.cpp. The model is a generated one
// whose vocabulary adds BOS and EOS around a text, as BERT's adds [CLS] … [SEP].

let directory: string;
let model: TestModel;
/** --pooling unset (the model has none: its last token's vector), none, cls, mean. */
const servers: Record<"auto" | "none" | "cls" | "mean", RunningGrove> = {} as never;

/** A generated model whose vocabulary adds BOS and EOS (Grove's own adds neither). */
async function modelWithSpecialTokens(dir: string): Promise<string> {
  const plain = join(dir, "plain.gguf");
  await generateModel({ preset: "test-tiny", seed: 3, dtype: "f16", outPath: plain });
  const tokenizer = await readTokenizerMetadata(plain);
  const writer = new GgufWriter();
  writer.setString("general.architecture", "llama");
  writeTokenizerMetadata(writer, {
    ...tokenizer,
    entries: tokenizer.entries.map((entry) => (entry.key === "tokenizer.ggml.add_bos_token" || entry.key === "tokenizer.ggml.add_eos_token" ? { ...entry, value: true } : entry)),
  });
  const vocabulary = join(dir, "vocabulary.gguf");
  await writer.write(vocabulary);
  const path = join(dir, "bos-eos.gguf");
  await generateModel({ preset: "test-tiny", seed: 3, dtype: "f16", outPath: path, vocabularyFrom: vocabulary });
  return path;
}

const post = async (server: RunningGrove, path: string, body: unknown) => {
  const response = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as any };
};
const norm = (vector: readonly number[]) => Math.hypot(...vector);
const near = (a: readonly number[], b: readonly number[], tolerance = 1e-4) => a.length === b.length && a.every((value, index) => Math.abs(value - b[index]!) < tolerance);
const tokensOf = async (server: RunningGrove, content: string, addSpecial: boolean): Promise<number[]> =>
  (await post(server, "/tokenize", { content, add_special: addSpecial })).json.tokens;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-embeddings-"));
  const path = await modelWithSpecialTokens(directory);
  model = { path, directory, cleanup: async () => {} };
  for (const pooling of ["auto", "none", "cls", "mean"] as const) {
    servers[pooling] = await startTestGrove({ ...model, directory: join(directory, pooling) }, { contextSize: 256, parallel: 1, pooling });
  }
});

after(async () => {
  for (const server of Object.values(servers)) await server?.close();
  await rm(directory, { recursive: true, force: true });
});

describe("/v1/embeddings", () => {
  test("unit vectors; text gets BOS and EOS, counted in usage; token ids are taken as given", async () => {
    const server = servers.auto;
    const plain = await tokensOf(server, "hello world", false);
    const special = await tokensOf(server, "hello world", true);
    assert.equal(special.length, plain.length + 2, "the vocabulary adds BOS and EOS");
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const text = await client.embeddings.create({ model: server.defaultModel, input: ["hello world", "hello world"], encoding_format: "float" });
    assert.equal(text.usage.prompt_tokens, 2 * special.length);
    assert.equal(text.usage.total_tokens, text.usage.prompt_tokens);
    for (const entry of text.data) assert.ok(Math.abs(norm(entry.embedding) - 1) < 1e-4, `unit length: ${norm(entry.embedding)}`);
    // The client's default, base64, carries the same floats.
    const base64 = await client.embeddings.create({ model: server.defaultModel, input: "hello world" });
    assert.ok(near(base64.data[0]!.embedding, text.data[0]!.embedding, 1e-6));
    // Token ids are not given special tokens: the ids of the text with them give its vector.
    const ids = await post(server, "/v1/embeddings", { input: special });
    assert.equal(ids.json.usage.prompt_tokens, special.length);
    assert.ok(near(ids.json.data[0].embedding, text.data[0]!.embedding));
    const bare = await post(server, "/v1/embeddings", { input: plain });
    assert.ok(!near(bare.json.data[0].embedding, text.data[0]!.embedding), "without BOS and EOS the vector differs");
  });

  test("embd_normalize: -1 returns the vector as computed, 1 the taxicab-normalised one", async () => {
    const server = servers.auto;
    const unit = (await post(server, "/v1/embeddings", { input: "a dog" })).json.data[0].embedding as number[];
    const raw = (await post(server, "/v1/embeddings", { input: "a dog", embd_normalize: -1 })).json.data[0].embedding as number[];
    assert.ok(Math.abs(norm(raw) - 1) > 1e-3, `not normalised: ${norm(raw)}`);
    assert.ok(near(raw.map((value) => value / norm(raw)), unit));
    const taxicab = (await post(server, "/v1/embeddings", { input: "a dog", embd_normalize: 1 })).json.data[0].embedding as number[];
    assert.ok(Math.abs(taxicab.reduce((sum, value) => sum + Math.abs(value), 0) - 1) < 1e-4);
  });

  test("llama-server's inputs: text and ids mixed in one list are one input, a list of lists several, empty text is BOS and EOS", async () => {
    const server = servers.auto;
    const hello = await tokensOf(server, "hello", false);
    const world = await tokensOf(server, " world", false);
    // Special tokens go around the first piece only when it is text, as llama-server's tokenize_mixed.
    const mixed = await post(server, "/v1/embeddings", { input: [...hello, " world"] });
    assert.equal(mixed.status, 200, JSON.stringify(mixed.json));
    assert.equal(mixed.json.data.length, 1);
    assert.equal(mixed.json.usage.prompt_tokens, hello.length + world.length);
    const several = await post(server, "/v1/embeddings", { input: ["hello", [...hello, " world"], hello] });
    assert.equal(several.status, 200);
    assert.equal(several.json.data.length, 3);
    assert.equal(several.json.usage.prompt_tokens, hello.length + 2 + hello.length + world.length + hello.length);
    assert.ok(near(several.json.data[1].embedding, mixed.json.data[0].embedding));
    const empty = await post(server, "/v1/embeddings", { input: "" });
    assert.equal(empty.status, 200);
    assert.equal(empty.json.usage.prompt_tokens, 2);
  });

  test("bad input: a clear 400 naming the parameter, and the server keeps serving", async () => {
    const server = servers.auto;
    const cases: [unknown, string][] = [
      [{ input: [1, [2, 3]] }, "input"],
      [{ input: [] }, "input"],
      [{ input: [[]] }, "input"],
      [{ input: [1e9] }, "input"],
      [{ input: "x", embd_normalize: 99 }, "embd_normalize"],
      [{ input: "x", embd_normalize: 1.5 }, "embd_normalize"],
      [{ input: { text: "x" } }, "input"],
    ];
    for (const [body, param] of cases) {
      const answer = await post(server, "/v1/embeddings", body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.match(answer.json.error.param, new RegExp(`^${param}`), JSON.stringify(answer.json));
    }
    assert.equal((await post(server, "/v1/embeddings", { input: "still here" })).status, 200);
  });
});

describe("llama-server's /embeddings", () => {
  test("a list of {index, embedding: [vector]}, normalised as /v1/embeddings; `content` is `input`'s old name; /embedding too", async () => {
    const server = servers.auto;
    const oai = (await post(server, "/v1/embeddings", { input: ["hello world", "a dog"] })).json.data;
    const native = await post(server, "/embeddings", { input: ["hello world", "a dog"] });
    assert.equal(native.status, 200);
    assert.deepEqual(native.json.map((entry: any) => entry.index), [0, 1]);
    for (const [index, entry] of native.json.entries()) {
      assert.equal(entry.embedding.length, 1);
      assert.ok(near(entry.embedding[0], oai[index].embedding));
    }
    const legacy = await post(server, "/embedding", { content: "hello world" });
    assert.equal(legacy.status, 200);
    assert.ok(near(legacy.json[0].embedding[0], oai[0].embedding));
    const missing = await post(server, "/embeddings", {});
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error.param, "input");
  });
});

describe("--pooling", () => {
  test("none: /embeddings returns every token's vector as computed; /v1/embeddings and /api/embed refuse", async () => {
    const server = servers.none;
    const tokens = await tokensOf(server, "hello hello hello", true);
    const native = await post(server, "/embeddings", { input: "hello hello hello" });
    assert.equal(native.status, 200);
    assert.equal(native.json[0].embedding.length, tokens.length, "one vector per token, BOS and EOS included");
    for (const vector of native.json[0].embedding) assert.ok(Math.abs(norm(vector) - 1) > 1e-3, "not normalised");
    // The last token's vector is what a server without pooling embeds the text as.
    const last = (await post(servers.auto, "/v1/embeddings", { input: "hello hello hello", embd_normalize: -1 })).json.data[0].embedding;
    assert.ok(near(native.json[0].embedding.at(-1), last));
    const oai = await post(server, "/v1/embeddings", { input: "hello hello hello" });
    assert.equal(oai.status, 400);
    assert.equal(oai.json.error.type, "invalid_request_error");
    assert.match(oai.json.error.message, /--pooling none/);
    const ollama = await post(server, "/api/embed", { model: server.defaultModel, input: "hello" });
    assert.equal(ollama.status, 400);
  });

  test("cls and mean reach llama.cpp: cls is the first token's vector (BOS: one vector for every text of a causal model), mean differs from the last token's", async () => {
    const embed = async (server: RunningGrove, input: string) => (await post(server, "/v1/embeddings", { input })).json.data[0].embedding as number[];
    assert.ok(near(await embed(servers.cls, "hello world"), await embed(servers.cls, "a dog ran")));
    const mean = await embed(servers.mean, "hello world");
    assert.ok(Math.abs(norm(mean) - 1) < 1e-4);
    assert.ok(!near(mean, await embed(servers.auto, "hello world")));
    assert.ok(!near(mean, await embed(servers.mean, "a dog ran")));
    const models = (await (await fetch(`${servers.mean.url}/v1/models`)).json()) as any;
    assert.equal(models.data[0].embedding_size > 0, true);
  });
});
