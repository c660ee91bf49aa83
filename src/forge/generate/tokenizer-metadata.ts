import { GgufMetadataReader } from "../../gguf/gguf-metadata-reader.js";
import { GGUF_VALUE_TYPE_NAMES, type GgufScalar, type GgufScalarType, type GgufWriter } from "../../gguf/gguf-writer.js";
import { buildBpeVocabulary } from "./bpe-tokenizer.js";
import { CHATML_TEMPLATE } from "./chat-template.js";

/** One `tokenizer.*` key with its GGUF type, ready for a {@link GgufWriter}. */
export interface TokenizerEntry {
  key: string;
  type: GgufScalarType | "array";
  /** Item type, for arrays. */
  itemType?: GgufScalarType;
  value: GgufScalar | readonly GgufScalar[];
}

/** The tokenizer part of a model's metadata. */
export interface TokenizerMetadata {
  /** Number of tokens: the rows of `token_embd.weight` and `output.weight`. */
  vocabularySize: number;
  /** `tokenizer.*` keys, in the order they are written. */
  entries: TokenizerEntry[];
}

const TYPE_NAMES = GGUF_VALUE_TYPE_NAMES;

/**
 * Grove's own byte-level BPE tokenizer (`gpt2` model, `default` pre-tokenizer) with
 * exactly `vocabularySize` tokens and the ChatML template. `<|im_end|>` is eos (and eot) so
 * that a chat turn ends generation; `<|endoftext|>` is bos and padding, and no bos is added.
 * llama.cpp marks both as end-of-generation tokens by their text. Merges from `corpus` when given.
 */
export function groveTokenizerMetadata(vocabularySize: number, corpus?: string): TokenizerMetadata {
  const vocabulary = buildBpeVocabulary(vocabularySize, corpus);
  const entries: TokenizerEntry[] = [
    { key: "tokenizer.ggml.model", type: "string", value: "gpt2" },
    { key: "tokenizer.ggml.pre", type: "string", value: "default" },
    { key: "tokenizer.ggml.tokens", type: "array", itemType: "string", value: vocabulary.tokens },
    { key: "tokenizer.ggml.token_type", type: "array", itemType: "int32", value: vocabulary.tokenTypes },
    { key: "tokenizer.ggml.merges", type: "array", itemType: "string", value: vocabulary.merges },
    { key: "tokenizer.ggml.bos_token_id", type: "uint32", value: vocabulary.endOfTextTokenId },
    { key: "tokenizer.ggml.eos_token_id", type: "uint32", value: vocabulary.imEndTokenId },
    { key: "tokenizer.ggml.eot_token_id", type: "uint32", value: vocabulary.imEndTokenId },
    { key: "tokenizer.ggml.padding_token_id", type: "uint32", value: vocabulary.endOfTextTokenId },
    { key: "tokenizer.ggml.add_bos_token", type: "bool", value: false },
    { key: "tokenizer.ggml.add_eos_token", type: "bool", value: false },
    { key: "tokenizer.chat_template", type: "string", value: CHATML_TEMPLATE },
  ];
  return { vocabularySize, entries };
}

/**
 * Every `tokenizer.*` key of another GGUF file (tokens, scores, token types, merges, model,
 * pre-tokenizer, special token ids, chat template), with their exact types.
 *
 * @throws InvalidModelFileError when the file cannot be parsed or has no vocabulary
 */
export async function readTokenizerMetadata(path: string): Promise<TokenizerMetadata> {
  const metadata = await GgufMetadataReader.open(path);
  const entries: TokenizerEntry[] = [];
  for (const [key, entry] of metadata.entries()) {
    if (!key.startsWith("tokenizer.")) continue;
    const type = TYPE_NAMES[entry.type];
    const itemType = entry.subType === undefined ? undefined : TYPE_NAMES[entry.subType];
    if (type === undefined || (type === "array" && (itemType === undefined || itemType === "array"))) {
      metadata.fail(`metadata key '${key}' has a type Grove cannot copy`);
    }
    entries.push(
      type === "array"
        ? { key, type, itemType: itemType as GgufScalarType, value: entry.value as GgufScalar[] }
        : { key, type, value: entry.value as GgufScalar },
    );
  }
  metadata.string("tokenizer.ggml.model", true);
  const tokens = metadata.stringArray("tokenizer.ggml.tokens", true) ?? [];
  if (tokens.length === 0) metadata.fail("tokenizer.ggml.tokens is empty");
  return { vocabularySize: tokens.length, entries };
}

/** Writes the entries into `writer`. */
export function writeTokenizerMetadata(writer: GgufWriter, metadata: TokenizerMetadata): void {
  for (const entry of metadata.entries) {
    if (entry.type === "array") writer.setArray(entry.key, entry.itemType as GgufScalarType, entry.value as readonly GgufScalar[]);
    else writer.setValue(entry.key, entry.type, entry.value as GgufScalar);
  }
}
