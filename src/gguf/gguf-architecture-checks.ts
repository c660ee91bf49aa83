import type { GgufMetadataReader } from "./gguf-metadata-reader.js";
import type { ValidatedTensor } from "./gguf-tensor-layout.js";

/** Hyperparameters read while checking an architecture. */
export interface ArchitectureShape {
  /** `general.architecture`, e.g. `llama`. */
  architecture: string;
  /** `<arch>.context_length`: the training context. */
  contextLength: number;
  /** `<arch>.embedding_length` (n_embd). */
  embeddingLength: number;
  /** `<arch>.block_count` (layers). */
  blockCount: number;
  /** `<arch>.attention.head_count` (the largest, for per-layer arrays). */
  headCount: number;
  /** `<arch>.attention.head_count_kv`, defaulting to the head count. */
  headCountKv: number;
  /** `<arch>.feed_forward_length` (the largest for per-layer arrays; 0 when absent). */
  feedForwardLength: number;
  /** Number of tokens in `tokenizer.ggml.tokens` (0 without a vocabulary). */
  vocabularySize: number;
  /** `tokenizer.ggml.model`, e.g. `gpt2` or `llama`; empty without a vocabulary. */
  tokenizerModel: string;
}

const MAX_LAYERS = 512; // LLAMA_MAX_LAYERS: more is a GGML_ASSERT
const MAX_EXPERTS = 1024; // LLAMA_MAX_EXPERTS
const INT32 = 5;
const FLOAT32 = 6;
const ROPE_SCALING_TYPES = new Set(["none", "linear", "yarn", "longrope"]);
// Architectures without attention, where `attention.head_count` is legitimately absent.
const ATTENTION_FREE = new Set(["mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"]);
const SPECIAL_TOKEN_KEYS = ["bos", "eos", "eot", "eom", "unknown", "seperator", "padding", "mask", "cls"];
/** What an architecture's loader in llama.cpp changes from the dense Llama layout. */
interface ArchitectureTensors {
  /** The query and output projections are sized by n_embd, not by heads × head size (qwen2). */
  queryByEmbedding: boolean;
  /** Per-layer `attn_q_norm` and `attn_k_norm` of [head size] are required (qwen3, gemma3). */
  headNorms: boolean;
  /** Per-layer `attn_post_norm` and `ffn_post_norm` of [n_embd] are required (gemma2, gemma3). */
  postNorms: boolean;
  /** `output.weight` may be present; false where llama.cpp always ties it to `token_embd` (gemma, gemma2). */
  outputTensor: boolean;
}

/**
 * Architectures whose tensors are checked, read from llama.cpp's `load_tensors`
 * (src/models/<arch>.cpp): every tensor each one creates without `TENSOR_NOT_REQUIRED`, with its
 * shape from the hyperparameters. A missing one makes llama.cpp throw at load, and with no
 * check here a file that cannot serve would pass `grove inspect` and `grove import` and fail
 * only on its first request.
 */
const CHECKED_ARCHITECTURES: Readonly<Record<string, ArchitectureTensors>> = {
  llama: { queryByEmbedding: false, headNorms: false, postNorms: false, outputTensor: true },
  qwen2: { queryByEmbedding: true, headNorms: false, postNorms: false, outputTensor: true },
  qwen3: { queryByEmbedding: false, headNorms: true, postNorms: false, outputTensor: true },
  gemma: { queryByEmbedding: false, headNorms: false, postNorms: false, outputTensor: false },
  gemma2: { queryByEmbedding: false, headNorms: false, postNorms: true, outputTensor: false },
  gemma3: { queryByEmbedding: false, headNorms: true, postNorms: true, outputTensor: true },
};

/**
 * Checks hyperparameters, vocabulary and (for the architectures of {@link CHECKED_ARCHITECTURES}) tensor shapes — the
 * parts whose absence or inconsistency makes llama.cpp throw or abort while loading.
 */
export function checkArchitecture(metadata: GgufMetadataReader, tensors: Map<string, ValidatedTensor>): ArchitectureShape {
  const architecture = metadata.string("general.architecture", true);
  if (architecture.length === 0) metadata.fail("general.architecture is empty");
  const isChecked = Object.hasOwn(CHECKED_ARCHITECTURES, architecture);
  const key = (suffix: string): string => `${architecture}.${suffix}`;

  const blockCount = metadata.uint32(key("block_count"), true);
  if (blockCount < 1 || blockCount > MAX_LAYERS) metadata.fail(`${key("block_count")} is ${blockCount}; llama.cpp needs 1 to ${MAX_LAYERS}`);
  const embeddingLength = metadata.uint32(key("embedding_length"), true);
  if (embeddingLength === 0) metadata.fail(`${key("embedding_length")} is 0`);
  const contextLength = (isChecked ? metadata.uint32(key("context_length"), true) : metadata.uint32(key("context_length"))) ?? 0;
  if (isChecked && contextLength === 0) metadata.fail(`${key("context_length")} is 0`);

  const headRequired = !ATTENTION_FREE.has(architecture);
  const heads = metadata.uint32PerLayer(key("attention.head_count"), blockCount, headRequired) ?? [0];
  const headCount = Math.max(...heads);
  if (headRequired && headCount === 0) metadata.fail(`${key("attention.head_count")} is 0`);
  const headsKv = metadata.uint32PerLayer(key("attention.head_count_kv"), blockCount, false) ?? heads;
  const feedForward = metadata.uint32PerLayer(key("feed_forward_length"), blockCount, isChecked) ?? [0];
  checkExperts(metadata, key);
  const ropeScaling = metadata.string(key("rope.scaling.type"));
  if (ropeScaling !== undefined && !ROPE_SCALING_TYPES.has(ropeScaling)) metadata.fail(`${key("rope.scaling.type")} '${ropeScaling}' is unknown`);
  const nextn = metadata.uint32(key("nextn_predict_layers"));
  if (nextn !== undefined && nextn > blockCount) metadata.fail(`${key("nextn_predict_layers")} ${nextn} exceeds the block count ${blockCount}`);

  const vocabulary = checkVocabulary(metadata, isChecked);
  const shape: ArchitectureShape = {
    architecture,
    contextLength,
    embeddingLength,
    blockCount,
    headCount,
    headCountKv: Math.max(...headsKv),
    feedForwardLength: Math.max(...feedForward),
    vocabularySize: vocabulary.size,
    tokenizerModel: vocabulary.model,
  };
  if (isChecked) checkDenseTensors(metadata, tensors, shape, heads, headsKv, feedForward);
  return shape;
}

function checkExperts(metadata: GgufMetadataReader, key: (suffix: string) => string): void {
  const experts = metadata.uint32(key("expert_count")) ?? 0;
  const used = metadata.uint32(key("expert_used_count")) ?? 0;
  if (experts > MAX_EXPERTS) metadata.fail(`${key("expert_count")} ${experts} exceeds ${MAX_EXPERTS}`);
  if (used > experts) metadata.fail(`${key("expert_used_count")} ${used} exceeds ${key("expert_count")} ${experts}`);
  if (experts > 0 && used === 0) metadata.fail(`${key("expert_used_count")} is 0 with ${experts} experts`);
}

function checkVocabulary(metadata: GgufMetadataReader, required: boolean): { size: number; model: string } {
  const model = required ? metadata.string("tokenizer.ggml.model", true) : metadata.string("tokenizer.ggml.model");
  if (model === undefined) return { size: 0, model: "" };
  const tokens = metadata.stringArray("tokenizer.ggml.tokens", model !== "none" && model !== "no_vocab") ?? [];
  const size = tokens.length;
  if (model !== "none" && model !== "no_vocab" && size === 0) metadata.fail("tokenizer.ggml.tokens is empty");
  // Duplicate token texts trip a GGML_ASSERT (id_to_token.size() == token_to_id.size()).
  // Texts with U+FFFD are skipped: different invalid UTF-8 bytes decode to the same string.
  const seen = new Set<string>();
  for (let id = 0; id < size; id++) {
    const token = tokens[id];
    if (seen.has(token)) metadata.fail(`tokenizer.ggml.tokens has the token ${JSON.stringify(token)} twice (id ${id})`);
    if (!token.includes("\uFFFD")) seen.add(token);
  }
  const types = metadata.int32Array("tokenizer.ggml.token_type");
  if (types !== undefined && types.length !== size) {
    metadata.fail(`tokenizer.ggml.token_type has ${types.length} entries for ${size} tokens`);
  }
  const scores = metadata.entry("tokenizer.ggml.scores");
  if (scores !== undefined) {
    if (scores.type !== 9 || (scores.subType !== FLOAT32 && scores.subType !== INT32)) {
      metadata.fail("tokenizer.ggml.scores must be an array of f32 or i32");
    }
    const count = (scores.value as unknown[]).length;
    if (count < size) metadata.fail(`tokenizer.ggml.scores has ${count} entries for ${size} tokens`);
  }
  if (model === "gpt2") {
    const merges = metadata.stringArray("tokenizer.ggml.merges", metadata.string("tokenizer.ggml.pre") !== "kimi-k2") ?? [];
    merges.forEach((merge, index) => {
      if (merge.indexOf(" ", 1) < 0) metadata.fail(`tokenizer.ggml.merges entry ${index} ${JSON.stringify(merge)} has no space`);
    });
  }
  for (const name of SPECIAL_TOKEN_KEYS) {
    const id = metadata.uint32(`tokenizer.ggml.${name}_token_id`);
    if (id !== undefined && id >= size) metadata.fail(`tokenizer.ggml.${name}_token_id ${id} is outside the vocabulary of ${size} tokens`);
  }
  return { size, model };
}

function checkDenseTensors(
  metadata: GgufMetadataReader,
  tensors: Map<string, ValidatedTensor>,
  shape: ArchitectureShape,
  heads: number[],
  headsKv: number[],
  feedForward: number[],
): void {
  const nEmbd = shape.embeddingLength;
  const architecture = shape.architecture;
  const { queryByEmbedding, headNorms, postNorms, outputTensor } = CHECKED_ARCHITECTURES[architecture]!;
  const epsilon = metadata.float32(`${architecture}.attention.layer_norm_rms_epsilon`, true);
  if (!(epsilon > 0)) metadata.fail(`${architecture}.attention.layer_norm_rms_epsilon ${epsilon} is not positive`);
  const keyLength = metadata.uint32(`${architecture}.attention.key_length`);
  const valueLength = metadata.uint32(`${architecture}.attention.value_length`);
  const experts = metadata.uint32(`${architecture}.expert_count`) ?? 0;
  const nVocab = shape.vocabularySize;
  const expect = (name: string, dims: number[], required = true): void => {
    const tensor = tensors.get(name);
    if (!tensor) {
      if (required) metadata.fail(`tensor ${name} is missing`);
      return;
    }
    if (tensor.shape.length !== dims.length || tensor.shape.some((dim, index) => dim !== dims[index])) {
      metadata.fail(`tensor ${name} has shape [${tensor.shape.join(", ")}], expected [${dims.join(", ")}]`);
    }
  };
  expect("token_embd.weight", [nEmbd, nVocab]);
  expect("output_norm.weight", [nEmbd]);
  if (outputTensor) expect("output.weight", [nEmbd, nVocab], false);
  for (let layer = 0; layer < shape.blockCount; layer++) {
    const nHead = heads[layer];
    const nHeadKv = headsKv[layer];
    const nFf = feedForward[layer];
    if (nHead === 0) metadata.fail(`${architecture}.attention.head_count is 0 for layer ${layer}`);
    if (keyLength === undefined && nEmbd % nHead !== 0) {
      metadata.fail(`${architecture}.embedding_length ${nEmbd} is not divisible by ${architecture}.attention.head_count ${nHead}`);
    }
    if (nHeadKv === 0 || nHead % nHeadKv !== 0) {
      metadata.fail(`${architecture}.attention.head_count ${nHead} is not divisible by ${architecture}.attention.head_count_kv ${nHeadKv}`);
    }
    if (nFf === 0 && experts === 0) metadata.fail(`${architecture}.feed_forward_length is 0 for layer ${layer}`);
    const headK = keyLength ?? nEmbd / nHead;
    const headV = valueLength ?? nEmbd / nHead;
    const nEmbdQ = queryByEmbedding ? nEmbd : nHead * headK;
    const block = `blk.${layer}.`;
    expect(`${block}attn_norm.weight`, [nEmbd]);
    // create_tensor_qkv: one fused attn_qkv, or separate q, k and v; biases are optional
    // (Qwen2 files carry them).
    const nEmbdQkv = nEmbdQ + nHeadKv * (headK + headV);
    if (tensors.has(`${block}attn_qkv.weight`)) {
      expect(`${block}attn_qkv.weight`, [nEmbd, nEmbdQkv]);
      expect(`${block}attn_qkv.bias`, [nEmbdQkv], false);
    } else {
      expect(`${block}attn_q.weight`, [nEmbd, nEmbdQ]);
      expect(`${block}attn_k.weight`, [nEmbd, nHeadKv * headK]);
      expect(`${block}attn_v.weight`, [nEmbd, nHeadKv * headV]);
      expect(`${block}attn_q.bias`, [nEmbdQ], false);
      expect(`${block}attn_k.bias`, [nHeadKv * headK], false);
      expect(`${block}attn_v.bias`, [nHeadKv * headV], false);
    }
    if (headNorms) {
      expect(`${block}attn_q_norm.weight`, [headK]);
      expect(`${block}attn_k_norm.weight`, [headK]);
    }
    if (postNorms) {
      expect(`${block}attn_post_norm.weight`, [nEmbd]);
      expect(`${block}ffn_post_norm.weight`, [nEmbd]);
    }
    expect(`${block}attn_output.weight`, [queryByEmbedding ? nEmbd : nHead * headV, nEmbd]);
    expect(`${block}ffn_norm.weight`, [nEmbd]);
    if (experts === 0) {
      expect(`${block}ffn_gate.weight`, [nEmbd, nFf]);
      expect(`${block}ffn_up.weight`, [nEmbd, nFf]);
      expect(`${block}ffn_down.weight`, [nFf, nEmbd]);
    }
  }
}
