import { gguf } from "@huggingface/gguf";
import { BYTE_TO_UNICODE } from "../forge/generate/bpe-tokenizer.js";

/** GPT-2's `bytes_to_unicode`, inverted: the character of a byte-level BPE token → its byte. */
function unicodeToByte(): Map<string, number> {
  return new Map(BYTE_TO_UNICODE.map((character, byte) => [character, byte]));
}

const CONTROL = 3;
const UNUSED = 5;
const BYTE = 6;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function isWholeUtf8(bytes: Uint8Array): boolean {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    // A lone or cut multi-byte sequence.
    return false;
  }
}

/** The tokens whose text is not whole UTF-8 characters on its own, and the bias that bans them. */
export interface Utf8SafeTokenBias {
  /** `logit_bias` for the request body: token id → -100. Empty when the vocabulary needs none. */
  readonly logitBias: Readonly<Record<string, number>>;
  /** Token ids banned. */
  readonly bannedTokens: number;
  /** `tokenizer.ggml.model` of the file, e.g. `gpt2`. */
  readonly tokenizerModel: string;
}

/**
 * A `logit_bias` that keeps generation to tokens that are whole UTF-8 characters: byte
 * tokens 0x80–0xFF (`<0xE4>` in SentencePiece vocabularies, GPT-2 byte characters in
 * byte-level BPE ones) and merges that cut a multi-byte character. Generated models have
 * random weights and emit such bytes at will; llama-server (since its chat-output parser
 * runs on every completion) answers such output with HTTP 500 "does not match the expected
 * Content-only format". Sending the same bias to both servers keeps the comparison fair;
 * concatenated whole characters are always valid UTF-8, so no stream can fail that way.
 *
 * Reads only the GGUF header (`tokenizer.ggml.*`), not the weights.
 */
export async function utf8SafeTokenBias(modelPath: string): Promise<Utf8SafeTokenBias> {
  const { metadata } = await gguf(modelPath, { allowLocalFile: true });
  const entries = metadata as unknown as Record<string, unknown>;
  const tokens = entries["tokenizer.ggml.tokens"];
  const types = entries["tokenizer.ggml.token_type"];
  const tokenizerModel = typeof entries["tokenizer.ggml.model"] === "string" ? (entries["tokenizer.ggml.model"] as string) : "";
  const logitBias: Record<string, number> = {};
  if (!Array.isArray(tokens)) return { logitBias, bannedTokens: 0, tokenizerModel };
  const typeOf = (id: number) => (Array.isArray(types) && typeof types[id] === "number" ? (types[id] as number) : 1);
  const bytesOf = tokenizerModel === "gpt2" ? byteLevelBytes(unicodeToByte()) : undefined;
  tokens.forEach((token: unknown, id) => {
    if (typeof token !== "string") return;
    const type = typeOf(id);
    // Control and unused tokens are rendered as their names (plain text) or not at all.
    if (type === CONTROL || type === UNUSED) return;
    const byteToken = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
    let whole: boolean;
    if (type === BYTE && byteToken) whole = Number.parseInt(byteToken[1]!, 16) < 0x80;
    else if (bytesOf) whole = isWholeUtf8(bytesOf(token));
    else whole = true;
    if (!whole) logitBias[String(id)] = -100;
  });
  return { logitBias, bannedTokens: Object.keys(logitBias).length, tokenizerModel };
}

/** Decodes a byte-level BPE token (GPT-2 byte characters) to its bytes. */
function byteLevelBytes(table: Map<string, number>): (token: string) => Uint8Array {
  return (token) => {
    const bytes: number[] = [];
    for (const character of token) {
      const byte = table.get(character);
      // Not a byte character (a user-defined token written as text): take it as UTF-8.
      if (byte === undefined) bytes.push(...new TextEncoder().encode(character));
      else bytes.push(byte);
    }
    return Uint8Array.from(bytes);
  };
}
