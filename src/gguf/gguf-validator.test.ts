import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, open, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { InvalidModelFileError } from "../core/errors.js";
import { readGgufHeader } from "./gguf-header-reader.js";
import { GgufWriter } from "./gguf-writer.js";
import { TINY_EMBEDDING, TINY_FEED_FORWARD, TINY_TOKENS, writeTinyLlama as writeTinyLlamaIn, type TinyLlamaOptions } from "../test-support/gguf-test-fixtures.js";
import { validateGgufFile } from "./gguf-validator.js";

let directory: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-gguf-validator-"));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

const N_EMBD = TINY_EMBEDDING;
const N_FF = TINY_FEED_FORWARD;
const TOKENS = TINY_TOKENS;

function writeTinyLlama(name: string, options: TinyLlamaOptions = {}): Promise<string> {
  return writeTinyLlamaIn(directory, name, options);
}

async function assertRejects(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(validateGgufFile(path), (error: unknown) => {
    assert.ok(error instanceof InvalidModelFileError, `expected InvalidModelFileError, got ${String(error)}`);
    assert.equal(error.code, "invalid_model_file");
    assert.match(error.message, pattern);
    return true;
  });
}

/** Overwrites a u32 or u64 inside the last tensor info (type at -12, offset at -8). */
async function patchLastTensorInfo(path: string, field: "type" | "offset", value: number): Promise<void> {
  const end = (await readGgufHeader(path)).headerEnd;
  const handle = await open(path, "r+");
  try {
    const bytes = Buffer.alloc(8);
    if (field === "type") bytes.writeUInt32LE(value);
    else bytes.writeBigUInt64LE(BigInt(value));
    await handle.write(bytes, 0, field === "type" ? 4 : 8, field === "type" ? end - 12 : end - 8);
  } finally {
    await handle.close();
  }
}

describe("validateGgufFile", () => {
  it("accepts a well-formed llama model and summarizes it", async () => {
    const summary = await validateGgufFile(await writeTinyLlama("good.gguf"));
    assert.deepEqual(
      { ...summary, fileSize: undefined },
      {
        architecture: "llama",
        name: "tiny",
        contextLength: 128,
        embeddingLength: N_EMBD,
        blockCount: 1,
        headCount: 2,
        headCountKv: 1,
        feedForwardLength: N_FF,
        vocabularySize: TOKENS.length,
        tensorCount: 11,
        parameterCount: N_EMBD * TOKENS.length + 3 * N_EMBD + 2 * N_EMBD * N_EMBD + 2 * N_EMBD * 16 + 3 * N_EMBD * N_FF,
        fileSize: undefined,
        fileType: "F32",
        chatTemplate: "{{ messages }}",
        tokenizerModel: "gpt2",
      },
    );
  });

  it("rejects files that are not GGUF", async () => {
    const empty = join(directory, "empty.gguf");
    await writeFile(empty, "");
    await assertRejects(empty, /^empty\.gguf: is empty/);
    const random = join(directory, "random.gguf");
    await writeFile(random, Buffer.concat([Buffer.from([0]), randomBytes(4095)]));
    await assertRejects(random, /^random\.gguf: is not a GGUF file/);
    const text = join(directory, "notes.txt");
    await writeFile(text, "These are my notes about models.\nNothing to see here.\n");
    await assertRejects(text, /^notes\.txt: is not a GGUF file .*looks like text/);
    const magicOnly = join(directory, "magic.gguf");
    await writeFile(magicOnly, "GGUF\x03\x00");
    await assertRejects(magicOnly, /magic\.gguf: is truncated: 6 bytes/);
    await assertRejects(join(directory, "missing.gguf"), /missing\.gguf: cannot read the file \(ENOENT\)/);
  });

  it("rejects unsupported versions", async () => {
    const path = await writeTinyLlama("v1.gguf");
    const handle = await open(path, "r+");
    await handle.write(Buffer.from([1, 0, 0, 0]), 0, 4, 4);
    await handle.close();
    await assertRejects(path, /GGUF version 1/);
  });

  it("rejects truncated files", async () => {
    const header = await writeTinyLlama("cut-header.gguf");
    await truncate(header, 700);
    await assertRejects(header, /^cut-header\.gguf: is truncated or corrupt: the value of metadata key 'tokenizer\.ggml\.tokens' is a string of 10 bytes, but only 8 bytes are left/);
    await truncate(header, 300);
    await assertRejects(header, /^cut-header\.gguf: is truncated or corrupt: it declares 16 metadata keys and 11 tensors, which need at least 587 bytes, but only 276 follow/);
    const data = await writeTinyLlama("cut-data.gguf");
    const size = (await readFile(data)).length;
    await truncate(data, size - 100);
    await assertRejects(data, new RegExp(`cut-data\\.gguf: tensor output_norm\\.weight \\(128 bytes at offset \\d+\\) ends at byte \\d+ beyond the file size ${size - 100}`));
  });

  it("rejects missing or inconsistent hyperparameters", async () => {
    await assertRejects(
      await writeTinyLlama("no-ff.gguf", { omit: ["llama.feed_forward_length"] }),
      /no-ff\.gguf: metadata key 'llama\.feed_forward_length' is missing/,
    );
    await assertRejects(await writeTinyLlama("no-heads.gguf", { omit: ["llama.attention.head_count"] }), /'llama\.attention\.head_count' is missing/);
    await assertRejects(await writeTinyLlama("no-arch.gguf", { omit: ["general.architecture"] }), /'general\.architecture' is missing/);
    await assertRejects(await writeTinyLlama("no-merges.gguf", { omit: ["tokenizer.ggml.merges"] }), /'tokenizer\.ggml\.merges' is missing/);
    await assertRejects(
      await writeTinyLlama("heads3.gguf", { set: [["llama.attention.head_count", "uint32", 3]] }),
      /embedding_length 32 is not divisible by llama\.attention\.head_count 3/,
    );
    await assertRejects(
      await writeTinyLlama("kv.gguf", { set: [["llama.attention.head_count_kv", "uint32", 3]] }),
      /head_count 2 is not divisible by llama\.attention\.head_count_kv 3/,
    );
    await assertRejects(
      await writeTinyLlama("wrong-type.gguf", { omit: ["llama.block_count"], set: [["llama.block_count", "string", "one"]] }),
      /'llama\.block_count' has type str, expected u32/,
    );
  });

  it("rejects tensors that do not fit the hyperparameters", async () => {
    await assertRejects(
      await writeTinyLlama("shape.gguf", { shapes: { "blk.0.attn_q.weight": [N_EMBD, 64] } }),
      /tensor blk\.0\.attn_q\.weight has shape \[32, 64\], expected \[32, 32\]/,
    );
    await assertRejects(await writeTinyLlama("no-ffn.gguf", { omitTensors: ["blk.0.ffn_up.weight"] }), /tensor blk\.0\.ffn_up\.weight is missing/);
  });

  it("rejects broken tensor infos", async () => {
    const unknownType = await writeTinyLlama("type.gguf");
    await patchLastTensorInfo(unknownType, "type", 4);
    await assertRejects(unknownType, /tensor output_norm\.weight has unknown ggml type 4/);
    const misaligned = await writeTinyLlama("misaligned.gguf");
    await patchLastTensorInfo(misaligned, "offset", 4);
    await assertRejects(misaligned, /tensor output_norm\.weight has offset 4, not a multiple of the alignment 32/);
    const beyond = await writeTinyLlama("beyond.gguf");
    await patchLastTensorInfo(beyond, "offset", 2 ** 40);
    await assertRejects(beyond, /tensor output_norm\.weight \(128 bytes at offset 1099511627776\) ends at byte \d+ beyond the file size \d+/);
  });

  it("rejects inconsistent vocabularies", async () => {
    await assertRejects(
      await writeTinyLlama("types.gguf", { tokenTypes: [1, 1, 1] }),
      /types\.gguf: tokenizer\.ggml\.token_type has 3 entries for 8 tokens/,
    );
    await assertRejects(
      await writeTinyLlama("bos.gguf", { set: [["tokenizer.ggml.bos_token_id", "uint32", 8]] }),
      /tokenizer\.ggml\.bos_token_id 8 is outside the vocabulary of 8 tokens/,
    );
    await assertRejects(
      await writeTinyLlama("eos.gguf", { set: [["tokenizer.ggml.eos_token_id", "uint32", 1000]] }),
      /tokenizer\.ggml\.eos_token_id 1000 is outside/,
    );
    await assertRejects(
      await writeTinyLlama("duplicate.gguf", { tokens: ["a", "b", "a", "c", "d", "e", "f", "g"] }),
      /has the token "a" twice \(id 2\)/,
    );
  });

  it("checks the tensors of qwen2 (optional biases) and qwen3 (required head norms)", async () => {
    const qwen2 = await validateGgufFile(await writeTinyLlama("qwen2.gguf", { architecture: "qwen2" }));
    assert.equal(qwen2.architecture, "qwen2");
    await validateGgufFile(await writeTinyLlama("qwen2-bias.gguf", { architecture: "qwen2", extraTensors: { "blk.0.attn_q.bias": [N_EMBD], "blk.0.attn_k.bias": [N_EMBD / 2] } }));
    await assertRejects(
      await writeTinyLlama("qwen2-bad-bias.gguf", { architecture: "qwen2", extraTensors: { "blk.0.attn_k.bias": [N_EMBD] } }),
      /tensor blk\.0\.attn_k\.bias has shape \[32\], expected \[16\]/,
    );
    await assertRejects(await writeTinyLlama("qwen3-no-norms.gguf", { architecture: "qwen3" }), /tensor blk\.0\.attn_q_norm\.weight is missing/);
    const headNorms = { "blk.0.attn_q_norm.weight": [N_EMBD / 2], "blk.0.attn_k_norm.weight": [N_EMBD / 2] };
    assert.equal((await validateGgufFile(await writeTinyLlama("qwen3.gguf", { architecture: "qwen3", extraTensors: headNorms }))).architecture, "qwen3");
  });

  it("checks the tensors of gemma2 and gemma3 (post norms, head norms) and accepts a fused attn_qkv", async () => {
    const postNorms = { "blk.0.attn_post_norm.weight": [N_EMBD], "blk.0.ffn_post_norm.weight": [N_EMBD] };
    const headNorms = { "blk.0.attn_q_norm.weight": [N_EMBD / 2], "blk.0.attn_k_norm.weight": [N_EMBD / 2] };
    await assertRejects(await writeTinyLlama("gemma2-no-post.gguf", { architecture: "gemma2" }), /tensor blk\.0\.attn_post_norm\.weight is missing/);
    assert.equal((await validateGgufFile(await writeTinyLlama("gemma2.gguf", { architecture: "gemma2", extraTensors: postNorms }))).architecture, "gemma2");
    await assertRejects(
      await writeTinyLlama("gemma3-no-k-norm.gguf", { architecture: "gemma3", extraTensors: { ...postNorms, "blk.0.attn_q_norm.weight": [N_EMBD / 2] } }),
      /tensor blk\.0\.attn_k_norm\.weight is missing/,
    );
    await validateGgufFile(await writeTinyLlama("gemma3.gguf", { architecture: "gemma3", extraTensors: { ...postNorms, ...headNorms } }));
    await validateGgufFile(await writeTinyLlama("gemma.gguf", { architecture: "gemma" }));
    // q 32 + k 16 + v 16 rows in one tensor, as llama.cpp's create_tensor_qkv accepts it.
    const fused = { omitTensors: ["blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"] };
    await validateGgufFile(await writeTinyLlama("fused.gguf", { ...fused, extraTensors: { "blk.0.attn_qkv.weight": [N_EMBD, 2 * N_EMBD] } }));
    await assertRejects(
      await writeTinyLlama("fused-bad.gguf", { ...fused, extraTensors: { "blk.0.attn_qkv.weight": [N_EMBD, N_EMBD] } }),
      /tensor blk\.0\.attn_qkv\.weight has shape \[32, 32\], expected \[32, 64\]/,
    );
  });

  it("labels the quantization by general.file_type (15 → Q4_K_M), else by the predominant tensor type", async () => {
    const label = async (fileType: number | undefined): Promise<string | undefined> => {
      const set: [string, "uint32", number][] = fileType === undefined ? [] : [["general.file_type", "uint32", fileType]];
      return (await validateGgufFile(await writeTinyLlama(`ftype-${fileType}.gguf`, { set }))).fileType;
    };
    const expected: [number | undefined, string][] = [
      [15, "Q4_K_M"], [17, "Q5_K_M"], [14, "Q4_K_S"], [16, "Q5_K_S"], [11, "Q3_K_S"], [12, "Q3_K_M"],
      [13, "Q3_K_L"], [10, "Q2_K"], [18, "Q6_K"], [7, "Q8_0"], [1, "F16"], [0, "F32"],
      // No key, or a number llama.cpp does not define: the tensors' type (all F32 here).
      [undefined, "F32"], [5, "F32"], [1024, "F32"],
    ];
    for (const [fileType, name] of expected) assert.equal(await label(fileType), name, `general.file_type ${fileType}`);
  });

  it("checks only the generic part of other architectures", async () => {
    const generic = async (name: string, omit: string[]): Promise<string> => {
      const writer = new GgufWriter().setString("general.architecture", "mystery");
      const keys: [string, number][] = [
        ["mystery.block_count", 4],
        ["mystery.embedding_length", 128],
        ["mystery.attention.head_count", 4],
      ];
      for (const [key, value] of keys) if (!omit.includes(key)) writer.setUint32(key, value);
      writer.addTensor("anything", [128], "F16", new Float32Array(128));
      const path = join(directory, name);
      await writer.write(path);
      return path;
    };
    const summary = await validateGgufFile(await generic("mystery.gguf", []));
    assert.deepEqual([summary.architecture, summary.blockCount, summary.headCount, summary.fileType, summary.vocabularySize], ["mystery", 4, 4, "F16", 0]);
    await assertRejects(await generic("mystery-heads.gguf", ["mystery.attention.head_count"]), /'mystery\.attention\.head_count' is missing/);
    await assertRejects(await generic("mystery-blocks.gguf", ["mystery.block_count"]), /'mystery\.block_count' is missing/);
  });
});
