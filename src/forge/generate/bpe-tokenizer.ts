import { createHash } from "node:crypto";
import { CORPUS } from "./corpus.js";

/** A byte-level BPE vocabulary in the form llama.cpp's `gpt2` tokenizer reads. */
export interface BpeVocabulary {
  /** Token texts, in GPT-2's bytes_to_unicode form for byte-level tokens. */
  tokens: string[];
  /** `tokenizer.ggml.token_type` per token: 1 normal, 3 control, 5 unused. */
  tokenTypes: number[];
  /** Merge rules `"left right"`, highest priority first. */
  merges: string[];
  /** `<|endoftext|>`: bos and padding. */
  endOfTextTokenId: number;
  /** `<|im_start|>`: opens a chat turn. */
  imStartTokenId: number;
  /** `<|im_end|>`: closes a chat turn; the eos token. */
  imEndTokenId: number;
}

/** `tokenizer.ggml.token_type` values (`llama_token_type`). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** The control tokens every generated vocabulary ends its learned part with. */
export const CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] as const;

const BYTE_TOKENS = 256;
const MIN_PAIR_FREQUENCY = 1;
const PAIR_KEY_BASE = 1 << 20; // token ids stay far below this

/**
 * llama.cpp's pre-tokenizer for `tokenizer.ggml.pre = "default"` (llama-vocab.cpp): four
 * regular expressions applied one after another, each splitting the pieces of the previous
 * one into matches and the text between them.
 */
const DEFAULT_PRE_TOKENIZER: readonly RegExp[] = [
  /[\p{P}$+<=>^~|]+/gu,
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu,
  /\p{N}+/gu,
  /[0-9][0-9][0-9]/gu,
];

/** GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the rest to U+0100 on. */
function buildByteToUnicode(): string[] {
  const table = new Array<string>(BYTE_TOKENS);
  let next = 0;
  for (let byte = 0; byte < BYTE_TOKENS; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    table[byte] = String.fromCodePoint(printable ? byte : BYTE_TOKENS + next++);
  }
  return table;
}

/** The 256 byte tokens, indexed by byte value. */
export const BYTE_TO_UNICODE: readonly string[] = buildByteToUnicode();

/** Splits text into words the way llama.cpp's `default` BPE pre-tokenizer does. */
export function preTokenize(text: string): string[] {
  let pieces = [text];
  for (const pattern of DEFAULT_PRE_TOKENIZER) {
    const next: string[] = [];
    for (const piece of pieces) {
      let end = 0;
      for (const match of piece.matchAll(pattern)) {
        const start = match.index ?? 0;
        if (start > end) next.push(piece.slice(end, start));
        next.push(match[0]);
        end = start + match[0].length;
      }
      if (end < piece.length) next.push(piece.slice(end));
    }
    pieces = next;
  }
  return pieces;
}

/** A max-heap of [count, pairKey]: higher count first, then the lower key (the tie rule). */
class PairHeap {
  readonly #counts: number[] = [];
  readonly #keys: number[] = [];

  get size(): number {
    return this.#keys.length;
  }

  #before(a: number, b: number): boolean {
    const counts = this.#counts;
    return counts[a] > counts[b] || (counts[a] === counts[b] && this.#keys[a] < this.#keys[b]);
  }

  #swap(a: number, b: number): void {
    [this.#counts[a], this.#counts[b]] = [this.#counts[b], this.#counts[a]];
    [this.#keys[a], this.#keys[b]] = [this.#keys[b], this.#keys[a]];
  }

  push(count: number, key: number): void {
    this.#counts.push(count);
    this.#keys.push(key);
    for (let at = this.#keys.length - 1; at > 0; ) {
      const parent = (at - 1) >> 1;
      if (!this.#before(at, parent)) break;
      this.#swap(at, parent);
      at = parent;
    }
  }

  pop(): [count: number, key: number] {
    const top: [number, number] = [this.#counts[0], this.#keys[0]];
    const last = this.#keys.length - 1;
    this.#swap(0, last);
    this.#counts.pop();
    this.#keys.pop();
    for (let at = 0; ; ) {
      const left = 2 * at + 1;
      const right = left + 1;
      let best = at;
      if (left < last && this.#before(left, best)) best = left;
      if (right < last && this.#before(right, best)) best = right;
      if (best === at) break;
      this.#swap(at, best);
      at = best;
    }
    return top;
  }
}

interface TrainedMerges {
  /** Merge rules as [left id, right id, result id]. */
  rules: [number, number, number][];
  /** Token texts: 256 byte tokens, then one per distinct merge result. */
  texts: string[];
}

/**
 * Learns byte-level BPE merges from `text` until no pair occurs twice. Each step merges the
 * most frequent adjacent pair over the word counts; ties go to the pair with the lower left
 * token id, then the lower right id (ids are given in creation order), so the result is the
 * same on every run. A merge whose text already exists as a token reuses that token. Stops
 * once `maxTokens` tokens beyond the 256 bytes exist (a large corpus needs only a few thousand).
 */
export function learnMerges(text: string, maxTokens = Number.POSITIVE_INFINITY): TrainedMerges {
  const wordCounts = new Map<string, number>();
  for (const word of preTokenize(text)) wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
  const words: number[][] = [];
  const frequencies: number[] = [];
  for (const [word, count] of wordCounts) {
    words.push([...Buffer.from(word, "utf8")]);
    frequencies.push(count);
  }
  const texts = [...BYTE_TO_UNICODE];
  const idsByText = new Map(texts.map((token, id) => [token, id]));
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const adjust = (key: number, delta: number, word: number, changed: Set<number>): void => {
    pairCounts.set(key, (pairCounts.get(key) ?? 0) + delta);
    if (delta > 0) {
      let set = pairWords.get(key);
      if (!set) pairWords.set(key, (set = new Set()));
      set.add(word);
    }
    changed.add(key);
  };
  const initial = new Set<number>();
  words.forEach((symbols, word) => {
    for (let at = 0; at + 1 < symbols.length; at++) adjust(symbols[at] * PAIR_KEY_BASE + symbols[at + 1], frequencies[word], word, initial);
  });
  const heap = new PairHeap();
  for (const key of initial) heap.push(pairCounts.get(key) ?? 0, key);

  const rules: [number, number, number][] = [];
  while (heap.size > 0) {
    const [count, key] = heap.pop();
    if (count !== pairCounts.get(key)) continue; // stale entry
    if (count < MIN_PAIR_FREQUENCY) break;
    if (texts.length - BYTE_TOKENS >= maxTokens) break;
    const left = Math.floor(key / PAIR_KEY_BASE);
    const right = key % PAIR_KEY_BASE;
    const merged = texts[left] + texts[right];
    let result = idsByText.get(merged);
    if (result === undefined) {
      result = texts.length;
      texts.push(merged);
      idsByText.set(merged, result);
    }
    rules.push([left, right, result]);
    const changed = new Set<number>();
    for (const word of pairWords.get(key) ?? []) {
      const symbols = words[word];
      const frequency = frequencies[word];
      for (let at = 0; at + 1 < symbols.length; at++) adjust(symbols[at] * PAIR_KEY_BASE + symbols[at + 1], -frequency, word, changed);
      const rebuilt: number[] = [];
      for (let at = 0; at < symbols.length; at++) {
        if (at + 1 < symbols.length && symbols[at] === left && symbols[at + 1] === right) {
          rebuilt.push(result);
          at++;
        } else {
          rebuilt.push(symbols[at]);
        }
      }
      words[word] = rebuilt;
      for (let at = 0; at + 1 < rebuilt.length; at++) adjust(rebuilt[at] * PAIR_KEY_BASE + rebuilt[at + 1], frequency, word, changed);
    }
    pairWords.delete(key);
    for (const changedKey of changed) {
      const current = pairCounts.get(changedKey) ?? 0;
      if (current >= MIN_PAIR_FREQUENCY) heap.push(current, changedKey);
    }
  }
  return { rules, texts };
}

let trainedCorpus: TrainedMerges | undefined;
const trainedOther = new Map<string, TrainedMerges>();

/** The merges of Grove's embedded corpus (learned once per process), or of another text, up to `maxTokens`. */
function corpusMerges(corpus: string | undefined, maxTokens: number): TrainedMerges {
  if (corpus === undefined) {
    trainedCorpus ??= learnMerges(CORPUS);
    return trainedCorpus;
  }
  const key = `${maxTokens}:${createHash("sha256").update(corpus).digest("hex")}`;
  let merges = trainedOther.get(key);
  if (merges === undefined) trainedOther.set(key, (merges = learnMerges(corpus, maxTokens)));
  return merges;
}

/**
 * Builds a vocabulary of exactly `vocabularySize` tokens: 256 byte tokens, as many learned
 * tokens as fit, the control tokens `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, and
 * `<|reserved_N|>` filler tokens (type unused) when the corpus yields fewer merges. The merges
 * are learned from `corpus` when given, else from Grove's embedded corpus.
 */
export function buildBpeVocabulary(vocabularySize: number, corpus?: string): BpeVocabulary {
  const minimum = BYTE_TOKENS + CONTROL_TOKENS.length;
  if (!Number.isInteger(vocabularySize) || vocabularySize < minimum) {
    throw new RangeError(`A BPE vocabulary needs at least ${minimum} tokens, got ${vocabularySize}`);
  }
  const { rules, texts } = corpusMerges(corpus, vocabularySize - minimum);
  const learnedBudget = vocabularySize - minimum;
  const merges: string[] = [];
  let learnedTokens = 0;
  for (const [left, right, result] of rules) {
    const isNewToken = result >= BYTE_TOKENS + learnedTokens;
    if (isNewToken && learnedTokens === learnedBudget) break;
    if (isNewToken) learnedTokens++;
    merges.push(`${texts[left]} ${texts[right]}`);
  }
  const tokens = texts.slice(0, BYTE_TOKENS + learnedTokens);
  const tokenTypes = new Array<number>(tokens.length).fill(TOKEN_TYPE.normal);
  const endOfTextTokenId = tokens.length;
  for (const control of CONTROL_TOKENS) {
    tokens.push(control);
    tokenTypes.push(TOKEN_TYPE.control);
  }
  for (let index = 0; tokens.length < vocabularySize; index++) {
    tokens.push(`<|reserved_${index}|>`);
    tokenTypes.push(TOKEN_TYPE.unused);
  }
  return { tokens, tokenTypes, merges, endOfTextTokenId, imStartTokenId: endOfTextTokenId + 1, imEndTokenId: endOfTextTokenId + 2 };
}
