import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { GgufWriter } from "../gguf/gguf-writer.js";
import { utf8SafeTokenBias } from "./utf8-safe-token-bias.js";

// Vocabulary-only GGUF files (no tensors): the bias reads nothing else.
let directory: string;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-bias-test-"));
});

after(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function vocabularyFile(name: string, model: string, tokens: string[], types: number[]): Promise<string> {
  const writer = new GgufWriter()
    .setString("general.architecture", "llama")
    .setString("tokenizer.ggml.model", model)
    .setArray("tokenizer.ggml.tokens", "string", tokens)
    .setArray("tokenizer.ggml.token_type", "int32", types);
  return (await writer.write(join(directory, name))).path;
}

describe("utf8SafeTokenBias", () => {
  test("byte-level BPE: bans lone high bytes and merges that cut a character, keeps the rest", async () => {
    // GPT-2 byte characters: "Ġ" is byte 0x20, "ä" is 0xE4, "â" 0xE2, "Ģ" 0x80, "Ķ" 0x94.
    const tokens = ["a", "Ġthe", "ä", "âĢ", "âĢĶ", "<|im_end|>", "é"];
    const types = [1, 1, 1, 1, 1, 3, 1];
    const result = await utf8SafeTokenBias(await vocabularyFile("bpe.gguf", "gpt2", tokens, types));
    assert.equal(result.tokenizerModel, "gpt2");
    // "ä" (lone 0xE4), "âĢ" (E2 80: a cut em dash) and "é" (lone 0xE9) are partial; "âĢĶ" is a whole em dash.
    assert.deepEqual(result.logitBias, { 2: -100, 3: -100, 6: -100 });
    assert.equal(result.bannedTokens, 3);
  });

  test("SentencePiece: bans byte tokens from 0x80 up only", async () => {
    const tokens = ["<unk>", "<0x41>", "<0x7F>", "<0x80>", "<0xE4>", "▁the"];
    const types = [2, 6, 6, 6, 6, 1];
    const result = await utf8SafeTokenBias(await vocabularyFile("spm.gguf", "llama", tokens, types));
    assert.deepEqual(result.logitBias, { 3: -100, 4: -100 });
  });
});
