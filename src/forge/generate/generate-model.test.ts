import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gguf } from "@huggingface/gguf";
// Tests may load models directly: they prove the generated files work in the real engine.
import { ChatMLChatWrapper, getLlama, type Llama, LlamaLogLevel, resolveChatWrapper } from "node-llama-cpp";
import { InvalidRequestError } from "../../core/errors.js";
import { validateGgufFile } from "../../gguf/gguf-validator.js";
import { digestOfFile } from "../../store/file-digest.js";
import { generateModel, type GenerateModelOptions, type GenerateModelResult } from "./generate-model.js";
import { MODEL_PRESETS } from "./model-presets.js";
import { llamaSource } from "../../test-support/llama-source.js";

const ROUND_TRIP_TEXTS = [
  "The grove stood at the edge of the valley.",
  "Hello, world! It's 12:47 pm; 3.14159 + 2 = 5.14159 (approx.) #tag @user {x: [1, 2]}",
  "héllo ✓ 日本 — naïve café, emoji 🌳",
  "  leading spaces\n\ttabs and\r\nnewlines  ",
];
// A real model's vocabulary from the llama.cpp source node-llama-cpp bundles (cloned from its local bundle).
const SPM_VOCABULARY = join(await llamaSource(), "models", "ggml-vocab-llama-spm.gguf");

let llama: Llama;
let directory: string;
before(async () => {
  llama = await getLlama({ gpu: false, maxThreads: 2, logLevel: LlamaLogLevel.error });
  directory = await mkdtemp(join(tmpdir(), "grove-generate-"));
});
after(async () => {
  await llama.dispose();
  await rm(directory, { recursive: true, force: true });
});

async function generate(name: string, options: Omit<GenerateModelOptions, "outPath">): Promise<GenerateModelResult> {
  return generateModel({ ...options, outPath: join(directory, name) });
}

/** Loads the file, round-trips text through the tokenizer and decodes `count` tokens greedily. */
async function checkLoadsAndGenerates(path: string, count: number, texts = ROUND_TRIP_TEXTS): Promise<number[]> {
  const model = await llama.loadModel({ modelPath: path });
  try {
    for (const text of texts) {
      const tokens = model.tokenize(text);
      assert.ok(tokens.length > 0 && tokens.length <= Buffer.byteLength(text) + 1, `${tokens.length} tokens for ${JSON.stringify(text)}`);
      assert.equal(model.detokenize(tokens), text);
    }
    const context = await model.createContext({ threads: 1, contextSize: 128 });
    try {
      const generated: number[] = [];
      for await (const token of context.getSequence().evaluate(model.tokenize("The grove"))) {
        generated.push(token);
        if (generated.length === count) break;
      }
      assert.equal(generated.length, count);
      const vocabularySize = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
      assert.ok(generated.every((token) => Number.isInteger(token) && token >= 0 && token < vocabularySize));
      return generated;
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

describe("generateModel", () => {
  it("writes a test-tiny model that loads, round-trips text, chats in ChatML and generates", async () => {
    const result = await generate("tiny.gguf", { preset: "test-tiny", seed: 42 });
    const preset = MODEL_PRESETS["test-tiny"];
    assert.equal(result.vocabularySize, preset.vocabularySize);
    const summary = await validateGgufFile(result.path);
    assert.deepEqual(
      [summary.embeddingLength, summary.blockCount, summary.headCount, summary.headCountKv, summary.feedForwardLength, summary.contextLength],
      [64, 2, 4, 2, 192, 1024],
    );
    assert.equal(summary.parameterCount, result.parameterCount);
    assert.equal(summary.fileType, "F16");
    assert.equal(summary.tensorCount, 3 + 9 * preset.blockCount);
    assert.equal(result.fileSize, summary.fileSize);
    assert.equal(result.digest, await digestOfFile(result.path));

    // Pinned: a change here means every generated model changed. Bump GENERATOR_VERSION
    // (which itself changes the digest) and update this value on purpose.
    assert.equal(result.digest, "sha256:bc4e5be19abcc9220b86b21f42c20a71b7b08a33e876767d43d9eacef97c3c50");

    const parsed = await gguf(result.path, { allowLocalFile: true });
    const metadata = parsed.metadata as unknown as Record<string, unknown>;
    assert.equal(metadata["general.name"], "grove-test-tiny-s42");
    assert.equal(metadata["grove.generator.preset"], "test-tiny");
    assert.equal(metadata["grove.generator.seed"], 42n);
    assert.equal(typeof metadata["grove.generator.version"], "string");
    assert.ok(parsed.tensorInfos.some((tensor) => tensor.name === "output.weight"), "untied output");

    const model = await llama.loadModel({ modelPath: result.path });
    try {
      const [imEnd] = model.tokenize("<|im_end|>", true);
      const [endOfText] = model.tokenize("<|endoftext|>", true);
      assert.deepEqual([model.tokens.eos, model.tokens.bos], [imEnd, endOfText]);
      assert.ok(model.isEogToken(imEnd) && model.isEogToken(endOfText), "both end generation");
      const turn = model.tokenize("<|im_start|>user", true);
      assert.equal(model.detokenize(turn.slice(0, 1), true), "<|im_start|>");
      assert.equal(model.detokenize(turn.slice(1)), "user");
      assert.ok(resolveChatWrapper(model) instanceof ChatMLChatWrapper);
    } finally {
      await model.dispose();
    }
    await checkLoadsAndGenerates(result.path, 8);
  });

  it("writes qwen2-tiny and qwen3-tiny with their architecture's keys and tensors, which llama.cpp loads and generates with", async () => {
    // Per block: Llama's 9 tensors, plus Qwen2's three biases or Qwen3's two per-head norms.
    for (const [preset, architecture, perBlock] of [["qwen2-tiny", "qwen2", 12], ["qwen3-tiny", "qwen3", 11]] as const) {
      const result = await generate(`${preset}.gguf`, { preset, seed: 42 });
      const summary = await validateGgufFile(result.path);
      assert.equal(summary.architecture, architecture);
      assert.equal(summary.tensorCount, 3 + perBlock * MODEL_PRESETS[preset].blockCount);
      assert.equal(summary.parameterCount, result.parameterCount);
      const parsed = await gguf(result.path, { allowLocalFile: true });
      const metadata = parsed.metadata as unknown as Record<string, unknown>;
      assert.equal(metadata[`${architecture}.rope.freq_base`], 1_000_000);
      const shapes = new Map(parsed.tensorInfos.map((tensor) => [tensor.name, tensor.shape.map(Number)]));
      if (architecture === "qwen2") {
        assert.deepEqual([shapes.get("blk.0.attn_q.bias"), shapes.get("blk.0.attn_k.bias"), shapes.get("blk.0.attn_v.bias")], [[64], [32], [32]]);
      } else {
        // Qwen3's heads are wider than embedding / heads: 4 heads of 32 from a 64-wide embedding.
        assert.equal(metadata["qwen3.attention.key_length"], 32);
        assert.deepEqual([shapes.get("blk.0.attn_q.weight"), shapes.get("blk.0.attn_output.weight"), shapes.get("blk.0.attn_q_norm.weight")], [[64, 128], [128, 64], [32]]);
      }
      await checkLoadsAndGenerates(result.path, 4, ROUND_TRIP_TEXTS.slice(0, 2));
    }
  });

  it("writes llama3-tiny with Llama 3's RoPE factors, which llama.cpp loads and generates with", async () => {
    const result = await generate("llama3-tiny.gguf", { preset: "llama3-tiny", seed: 42 });
    const parsed = await gguf(result.path, { allowLocalFile: true });
    const ropeFactors = parsed.tensorInfos.find((tensor) => tensor.name === "rope_freqs.weight");
    assert.deepEqual(ropeFactors?.shape.map(Number), [8], "one factor per rotated pair of a 16-wide head");
    assert.equal((await validateGgufFile(result.path)).parameterCount, result.parameterCount + 8, "the factors are not parameters");
    await checkLoadsAndGenerates(result.path, 4, ROUND_TRIP_TEXTS.slice(0, 2));
  });

  it("is deterministic: same seed, same digest; another seed or dtype, another digest", async () => {
    const first = await generate("same-1.gguf", { preset: "test-tiny", seed: 7 });
    const second = await generate("same-2.gguf", { preset: "test-tiny", seed: 7 });
    const other = await generate("other.gguf", { preset: "test-tiny", seed: 8 });
    const q8 = await generate("q8.gguf", { preset: "test-tiny", seed: 7, dtype: "q8_0" });
    assert.equal(first.digest, second.digest);
    assert.notEqual(first.digest, other.digest);
    assert.notEqual(first.digest, q8.digest);
    assert.equal(first.fileSize, other.fileSize);
  });

  it("writes f32 and q8_0 files that load and generate", async () => {
    for (const dtype of ["f32", "q8_0"] as const) {
      const result = await generate(`tiny-${dtype}.gguf`, { preset: "test-tiny", seed: 3, dtype });
      assert.equal((await validateGgufFile(result.path)).fileType, dtype === "f32" ? "F32" : "Q8_0");
      await checkLoadsAndGenerates(result.path, 4, ROUND_TRIP_TEXTS.slice(2));
    }
  });

  it("writes a small model that loads and generates", async () => {
    const result = await generate("small.gguf", { preset: "small", seed: 1 });
    assert.equal(result.vocabularySize, 2048);
    assert.ok(result.parameterCount > 2e6 && result.parameterCount < 2e7, `${result.parameterCount} parameters`);
    await checkLoadsAndGenerates(result.path, 8);
  });

  it("writes a llama-1b model (q8_0) that loads and generates", async () => {
    const result = await generate("llama-1b.gguf", { preset: "llama-1b", seed: 1, dtype: "q8_0" });
    try {
      assert.equal(result.vocabularySize, 32000);
      assert.ok(result.parameterCount > 1.0e9 && result.parameterCount < 1.2e9, `${result.parameterCount} parameters`);
      await checkLoadsAndGenerates(result.path, 3, ROUND_TRIP_TEXTS.slice(0, 2));
    } finally {
      await rm(result.path, { force: true });
    }
  });

  it("copies the vocabulary of a generated model", async () => {
    const source = await generate("vocab-source.gguf", { preset: "test-tiny", seed: 11 });
    const copy = await generate("vocab-copy.gguf", { preset: "small", seed: 12, vocabularyFrom: source.path });
    assert.equal(copy.vocabularySize, 512);
    const [from, to] = await Promise.all([source.path, copy.path].map((path) => gguf(path, { allowLocalFile: true })));
    const tokenizerKeys = (metadata: object): Record<string, unknown> =>
      Object.fromEntries(Object.entries(metadata).filter(([key]) => key.startsWith("tokenizer.")));
    assert.deepEqual(tokenizerKeys(to.metadata), tokenizerKeys(from.metadata));
    assert.ok(Object.keys(tokenizerKeys(to.metadata)).length >= 10);
    await checkLoadsAndGenerates(copy.path, 4);
  });

  it(
    "copies llama.cpp's SPM vocabulary",
    async () => {
      const copy = await generate("spm.gguf", { preset: "test-tiny", seed: 5, vocabularyFrom: SPM_VOCABULARY });
      assert.equal(copy.vocabularySize, 32000);
      assert.equal((await validateGgufFile(copy.path)).tokenizerModel, "llama");
      await checkLoadsAndGenerates(copy.path, 4, ROUND_TRIP_TEXTS.slice(0, 3));
    },
  );

  it("rejects unknown presets, bad seeds and leaves no file behind", async () => {
    const sub = await mkdtemp(join(directory, "bad-"));
    await assert.rejects(generateModel({ preset: "huge", seed: 1, outPath: join(sub, "x.gguf") }), (error: unknown) => {
      assert.ok(error instanceof InvalidRequestError);
      assert.match(error.message, /Unknown preset 'huge'; valid presets: test-tiny, llama3-tiny, qwen2-tiny, qwen3-tiny, small, demo-s, demo-m, demo-l, llama-1b/);
      return true;
    });
    await assert.rejects(generateModel({ preset: "test-tiny", seed: -1, outPath: join(sub, "x.gguf") }), InvalidRequestError);
    await assert.rejects(generateModel({ preset: "test-tiny", seed: 1, outPath: join(sub, "missing", "x.gguf") }), /ENOENT/);
    assert.deepEqual(await readdir(sub), []);
  });
});
