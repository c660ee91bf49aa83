import { EngineError, InvalidRequestError } from "../../core/errors.js";
import { argmax, type EvalContext, logSumExp, tokenBytes, tokenize, type EvalModel } from "./libllama-eval.js";

/** Perplexity of a text as llama-perplexity computes it, with bits per byte. */
export interface PerplexityResult {
  perplexity: number;
  /** Mean negative log-likelihood per scored token, nats. */
  meanNll: number;
  /** Standard error of the perplexity (llama-perplexity's ±). */
  perplexityError: number;
  /** Bits per byte of the scored tokens' text: Σ nll / ln 2 / bytes. */
  bitsPerByte: number;
  tokens: number;
  scoredTokens: number;
  chunks: number;
  /** Tokens evaluated per second (every token of every chunk, as llama-perplexity counts passes). */
  tokensPerSecond: number;
  /** Mean negative log-likelihood of each chunk's scored tokens, nats: the per-chunk values of standard errors and paired comparisons. */
  chunkNll: number[];
}

/** A fork against a reference over the same text: what llama-perplexity --kl-divergence reports. */
export interface KlDivergenceResult {
  /** Mean KL(reference ‖ model) per scored token, nats. */
  klDivergence: number;
  /** Share of scored positions where both models' most likely token is the same. */
  top1Agreement: number;
  perplexity: number;
  referencePerplexity: number;
  scoredTokens: number;
  chunks: number;
  /** Per chunk: mean KL divergence, top-1 agreement and the model's mean negative log-likelihood. */
  chunkKl: number[];
  chunkTop1: number[];
  chunkNll: number[];
}

/** Progress of a chunked measurement. */
export type ChunkProgress = (done: number, total: number, runningPerplexity: number) => void;

interface ChunkPlan {
  contextSize: number;
  first: number;
  chunks: number;
}

function planChunks(tokens: Int32Array, contextSize: number): ChunkPlan {
  if (tokens.length < 2 * contextSize) {
    throw new InvalidRequestError(
      `The text has ${tokens.length} tokens; perplexity at a context of ${contextSize} needs at least ${2 * contextSize} (two chunks, as llama-perplexity) — give more text or a smaller --ctx`,
      { param: "text" },
    );
  }
  return { contextSize, first: Math.floor(contextSize / 2), chunks: Math.floor(tokens.length / contextSize) };
}

/**
 * Decodes chunks `chunk … chunk + count - 1` (one sequence each) and calls `score` with each
 * sequence's rows of logits for positions `first … contextSize - 2` (which predict tokens
 * `first + 1 … contextSize - 1`). The first token of each chunk is replaced by BOS when the
 * vocabulary adds one — exactly llama-perplexity's `perplexity()`.
 */
function decodeChunks(model: EvalModel, context: EvalContext, tokens: Int32Array, plan: ChunkPlan, chunk: number, count: number, score: (sequence: number, rows: Float32Array) => void): void {
  const { contextSize, first } = plan;
  const n = count * contextSize;
  const batchTokens = new Int32Array(n);
  const positions = new Int32Array(n);
  const sequences = new Int32Array(n);
  const outputs = new Array<boolean>(n);
  for (let sequence = 0; sequence < count; sequence++) {
    const start = (chunk + sequence) * contextSize;
    for (let k = 0; k < contextSize; k++) {
      const index = sequence * contextSize + k;
      batchTokens[index] = k === 0 && model.addBos ? model.bos : tokens[start + k]!;
      positions[index] = k;
      sequences[index] = sequence;
      outputs[index] = k >= first;
    }
  }
  context.clear();
  context.decode(batchTokens, positions, sequences, outputs);
  for (let sequence = 0; sequence < count; sequence++) {
    score(sequence, context.logitRows(sequence * contextSize + first, contextSize - 1 - first));
  }
}

/**
 * Perplexity over `text` by llama-perplexity's method: the text tokenized with BOS, cut into
 * chunks of `contextSize` tokens, each chunk evaluated alone (first token replaced by BOS) and
 * only its second half scored, `batch / contextSize` chunks per decode. Also bits per byte.
 *
 * @throws InvalidRequestError when the text has fewer than two chunks of tokens
 */
export async function measurePerplexity(model: EvalModel, context: EvalContext, text: string, onChunk?: ChunkProgress): Promise<PerplexityResult> {
  const tokens = await tokenize(model, text, true);
  const plan = planChunks(tokens, context.contextSize);
  const vocabulary = model.vocabularySize;
  const byteCache = new Map<number, number>();
  let nll = 0;
  let nll2 = 0;
  let count = 0;
  let bytes = 0;
  const rowsPerChunk = plan.contextSize - 1 - plan.first;
  const chunkNll: number[] = [];
  const started = performance.now();
  for (let chunk = 0; chunk < plan.chunks; chunk += context.sequences) {
    const batch = Math.min(context.sequences, plan.chunks - chunk);
    const pending: number[] = [];
    decodeChunks(model, context, tokens, plan, chunk, batch, (sequence, rows) => {
      const base = (chunk + sequence) * plan.contextSize + plan.first;
      let chunkTotal = 0;
      for (let row = 0; row < rowsPerChunk; row++) {
        const target = tokens[base + row + 1]!;
        const offset = row * vocabulary;
        const logProbability = rows[offset + target]! - logSumExp(rows, offset, vocabulary);
        nll -= logProbability;
        chunkTotal -= logProbability;
        nll2 += logProbability * logProbability;
        count++;
        if (!byteCache.has(target)) pending.push(target);
        byteCache.set(target, byteCache.get(target) ?? -1);
      }
      chunkNll.push(chunkTotal / rowsPerChunk);
    });
    for (const token of pending) byteCache.set(token, await tokenBytes(model, token));
    onChunk?.(Math.min(plan.chunks, chunk + batch), plan.chunks, Math.exp(nll / count));
  }
  // Bytes of the scored tokens (second pass over the same targets: the cache is filled now).
  for (let chunk = 0; chunk < plan.chunks; chunk++) {
    const base = chunk * plan.contextSize + plan.first;
    for (let row = 0; row < plan.contextSize - 1 - plan.first; row++) bytes += byteCache.get(tokens[base + row + 1]!) ?? 0;
  }
  const seconds = (performance.now() - started) / 1000;
  const mean = nll / count;
  const variance = nll2 / count - mean * mean;
  const perplexity = Math.exp(mean);
  return {
    perplexity,
    meanNll: mean,
    perplexityError: variance > 0 ? Math.sqrt(variance / (count - 1)) * perplexity : 0,
    bitsPerByte: bytes > 0 ? nll / Math.LN2 / bytes : Number.NaN,
    tokens: tokens.length,
    scoredTokens: count,
    chunks: plan.chunks,
    tokensPerSecond: (plan.chunks * plan.contextSize) / seconds,
    chunkNll,
  };
}

/**
 * KL divergence of `model` from `reference` over the scored positions of the same chunks
 * (llama-perplexity's `--kl-divergence`): mean KL(P_reference ‖ P_model) in nats, and how often
 * both rank the same token first. Both models must share a vocabulary.
 *
 * @throws InvalidRequestError when the vocabularies differ or the text is too short
 */
export async function measureKlDivergence(
  model: EvalModel,
  context: EvalContext,
  reference: EvalModel,
  referenceContext: EvalContext,
  text: string,
  onChunk?: ChunkProgress,
): Promise<KlDivergenceResult> {
  if (model.vocabularySize !== reference.vocabularySize) {
    throw new InvalidRequestError(`The models have different vocabularies (${model.vocabularySize} and ${reference.vocabularySize} tokens): KL divergence compares the same tokens`, { param: "reference" });
  }
  const tokens = await tokenize(reference, text, true);
  const plan = planChunks(tokens, context.contextSize);
  const vocabulary = model.vocabularySize;
  const rowsPerSequence = plan.contextSize - 1 - plan.first;
  let kl = 0;
  let agree = 0;
  let nll = 0;
  let referenceNll = 0;
  let count = 0;
  const chunkKl: number[] = [];
  const chunkTop1: number[] = [];
  const chunkNll: number[] = [];
  const sequences = Math.min(context.sequences, referenceContext.sequences);
  for (let chunk = 0; chunk < plan.chunks; chunk += sequences) {
    const batch = Math.min(sequences, plan.chunks - chunk);
    const referenceRows: Float32Array[] = [];
    decodeChunks(reference, referenceContext, tokens, plan, chunk, batch, (_sequence, rows) => referenceRows.push(rows.slice()));
    decodeChunks(model, context, tokens, plan, chunk, batch, (sequence, rows) => {
      const expected = referenceRows[sequence]!;
      const base = (chunk + sequence) * plan.contextSize + plan.first;
      const [klBefore, agreeBefore, nllBefore] = [kl, agree, nll];
      for (let row = 0; row < rowsPerSequence; row++) {
        const offset = row * vocabulary;
        const zReference = logSumExp(expected, offset, vocabulary);
        const zModel = logSumExp(rows, offset, vocabulary);
        let divergence = 0;
        for (let token = 0; token < vocabulary; token++) {
          const logP = expected[offset + token]! - zReference;
          divergence += Math.exp(logP) * (logP - (rows[offset + token]! - zModel));
        }
        kl += Math.max(0, divergence);
        if (argmax(expected, offset, vocabulary) === argmax(rows, offset, vocabulary)) agree++;
        const target = tokens[base + row + 1]!;
        nll -= rows[offset + target]! - zModel;
        referenceNll -= expected[offset + target]! - zReference;
        count++;
      }
      chunkKl.push((kl - klBefore) / rowsPerSequence);
      chunkTop1.push((agree - agreeBefore) / rowsPerSequence);
      chunkNll.push((nll - nllBefore) / rowsPerSequence);
    });
    onChunk?.(Math.min(plan.chunks, chunk + batch), plan.chunks, Math.exp(nll / count));
  }
  return {
    klDivergence: kl / count,
    top1Agreement: agree / count,
    perplexity: Math.exp(nll / count),
    referencePerplexity: Math.exp(referenceNll / count),
    scoredTokens: count,
    chunks: plan.chunks,
    chunkKl,
    chunkTop1,
    chunkNll,
  };
}

/** One loglikelihood request in lm-evaluation-harness's terms. */
export interface LoglikelihoodRequest {
  context: string;
  continuation: string;
}

/** Its answer: Σ log P(continuation tokens | context) and whether greedy decoding would produce them. */
export interface LoglikelihoodAnswer {
  logLikelihood: number;
  isGreedy: boolean;
  tokens: number;
}

/**
 * lm-evaluation-harness's `loglikelihood`: tokenize context + continuation together (BOS
 * first), take the continuation's tokens as those past the context's own tokenization (trailing
 * spaces of the context move to the continuation, as lm-eval's `_encode_pair`), evaluate the
 * whole (left-truncated to the context size) and sum the continuation tokens' log-probabilities.
 */
export async function loglikelihood(model: EvalModel, context: EvalContext, request: LoglikelihoodRequest): Promise<LoglikelihoodAnswer> {
  let prefix = request.context;
  let continuation = request.continuation;
  const trailing = /\s+$/.exec(prefix)?.[0] ?? "";
  if (trailing.length > 0) {
    prefix = prefix.slice(0, -trailing.length);
    continuation = trailing + continuation;
  }
  let whole = await tokenize(model, prefix + continuation, true);
  let contextTokens = await tokenize(model, prefix, true);
  if (contextTokens.length === 0) {
    // No context and no BOS added: lm-eval conditions on its prefix token (the BOS id), as in
    // loglikelihood_rolling's first window, so the first token is scored too.
    if (model.bos < 0) throw new InvalidRequestError("A continuation without context needs a BOS token to condition on; this vocabulary has none", { param: "continuation" });
    whole = Int32Array.of(model.bos, ...whole);
    contextTokens = Int32Array.of(model.bos);
  }
  const continuationCount = whole.length - contextTokens.length;
  if (continuationCount <= 0) throw new InvalidRequestError(`The continuation ${JSON.stringify(request.continuation)} adds no tokens to its context`, { param: "continuation" });
  const size = context.contextSize;
  const kept = whole.length > size ? whole.slice(whole.length - size) : whole;
  if (continuationCount >= kept.length) throw new InvalidRequestError(`A continuation of ${continuationCount} tokens does not fit a context of ${size}`, { param: "continuation" });
  const firstOutput = kept.length - continuationCount - 1;
  const positions = Int32Array.from({ length: kept.length }, (_, index) => index);
  const outputs = Array.from({ length: kept.length }, (_, index) => index >= firstOutput && index < kept.length - 1);
  context.clear();
  context.decode(kept, positions, new Int32Array(kept.length), outputs);
  const rows = context.logitRows(firstOutput, continuationCount);
  const vocabulary = model.vocabularySize;
  let total = 0;
  let greedy = true;
  for (let row = 0; row < continuationCount; row++) {
    const target = kept[firstOutput + row + 1]!;
    const offset = row * vocabulary;
    total += rows[offset + target]! - logSumExp(rows, offset, vocabulary);
    if (argmax(rows, offset, vocabulary) !== target) greedy = false;
  }
  return { logLikelihood: total, isGreedy: greedy, tokens: continuationCount };
}

/** One generate_until request. */
export interface GenerateRequest {
  context: string;
  /** Stop strings: generation ends before the first of them. */
  until: readonly string[];
  maxTokens: number;
}

/**
 * Greedy generation (argmax at every step, as lm-eval's `generate_until` with temperature 0)
 * until a stop string, an end-of-generation token or `maxTokens`.
 */
export async function generateGreedy(model: EvalModel, context: EvalContext, request: GenerateRequest, isEndOfGeneration: (token: number) => boolean, pieceOf: (token: number) => Promise<Uint8Array>): Promise<string> {
  const prompt = await tokenize(model, request.context, true);
  const size = context.contextSize;
  if (prompt.length + request.maxTokens > size) throw new InvalidRequestError(`A prompt of ${prompt.length} tokens and ${request.maxTokens} to generate do not fit a context of ${size}`, { param: "context" });
  context.clear();
  const outputs = Array.from({ length: prompt.length }, (_, index) => index === prompt.length - 1);
  context.decode(prompt, Int32Array.from({ length: prompt.length }, (_, index) => index), new Int32Array(prompt.length), outputs);
  const bytes: number[] = [];
  let position = prompt.length;
  const decoder = new TextDecoder();
  for (let step = 0; step < request.maxTokens; step++) {
    const token = argmax(context.logitRows(-1, 1), 0, model.vocabularySize);
    if (isEndOfGeneration(token)) break;
    bytes.push(...(await pieceOf(token)));
    const text = decoder.decode(Uint8Array.from(bytes));
    const stop = request.until.map((until) => text.indexOf(until)).filter((index) => index >= 0);
    if (stop.length > 0) return text.slice(0, Math.min(...stop));
    context.decode([token], [position++], [0], [true]);
  }
  return decoder.decode(Uint8Array.from(bytes));
}

/** @internal for the worker: an EngineError for unknown operations. */
export function unknownOperation(op: string): never {
  throw new EngineError(`Unknown evaluation operation '${op}'`);
}
