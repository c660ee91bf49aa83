import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import { fixMmapThreshold, NativeContext, NativeModel } from "../native/native-model.js";
import { AdapterSets } from "./adapter-sets.js";
import { DecodeLoop } from "./decode-loop.js";
import type { DecodeWorkerData, FromWorker, ToWorker } from "./decode-protocol.js";

// One loaded model's decode thread: it owns the llama.cpp model and contexts and runs the loop
// without ever yielding to its event loop, so nothing but llama.cpp runs between steps. Messages
// are polled between steps; when idle it sleeps on a shared counter the main thread bumps.

const data = workerData as DecodeWorkerData;
const port = parentPort as MessagePort;
// Messages of one step go out together: one postMessage (and one task on the main thread) per
// step instead of one per token of every slot.
// Text is held up to FLUSH_MS, so a fast model does not wake the main thread (and preempt the
// compute threads) for every token; a first token, an ending or a failure goes out at once.
let outbox: FromWorker[] = [];
let urgent = false;
let lastFlush = 0;
const FLUSH_MS = data.flushMs;
const emit = (message: FromWorker): void => {
  outbox.push(message);
  if (message.type !== "text") urgent = true;
};
const flush = (force = false): void => {
  if (outbox.length === 0) return;
  const now = performance.now();
  if (!force && !urgent && now - lastFlush < FLUSH_MS) return;
  port.postMessage(outbox.length === 1 ? outbox[0] : outbox);
  outbox = [];
  urgent = false;
  lastFlush = now;
};

async function main(): Promise<void> {
  const model = await NativeModel.load(data.path, { gpuLayers: data.gpuLayers, mmap: data.mmap, ...(data.libraryDirectory === undefined ? {} : { libraryDirectory: data.libraryDirectory }) });
  let context: NativeContext;
  let embeddings: NativeContext | undefined;
  try {
    context = NativeContext.create(model, {
      sequences: data.slots,
      contextSize: data.contextSize,
      unified: data.unifiedKv,
      batchSize: data.batchSize,
      ubatchSize: data.ubatchSize,
      threads: data.threads,
      cacheTypeK: data.cacheTypeK,
      cacheTypeV: data.cacheTypeV,
      flashAttention: data.flashAttention,
      ...(data.threadpoolPoll === undefined ? {} : { threadpoolPoll: data.threadpoolPoll }),
    });
  } catch (error) {
    model.free();
    throw error;
  }
  // LoRA adapters of the model's forks, loaded when a fork is first served and shared by its requests.
  const adapters = new AdapterSets(model);
  // Adapter sets taking turns reallocate llama.cpp's compute buffers: keep them off the heap.
  fixMmapThreshold(model.lib);
  const loop = new DecodeLoop(model, context, { batchSize: context.batchSize, prefillChunk: data.prefillChunk, unifiedKv: data.unifiedKv }, emit, adapters);
  const inUse = (key: string): boolean => loop.usesAdapter(key);
  emit({ type: "ready", contextSize: context.contextSize, trainContextSize: model.trainContextSize, embeddingSize: model.embeddingSize });
  flush();

  const signal = new Int32Array(data.signal);
  for (;;) {
    const seen = Atomics.load(signal, 0);
    let closing = false;
    for (let message = receiveMessageOnPort(port); message !== undefined; message = receiveMessageOnPort(port)) {
      const request = message.message as ToWorker;
      switch (request.type) {
        case "generate":
          loop.submit(request);
          break;
        case "cancel":
          loop.cancel(request.id);
          break;
        case "adapter-load":
          try {
            adapters.load(request.key, request.path);
            emit({ type: "adapter-loaded", id: request.id });
          } catch (error) {
            emit({ type: "failed", id: request.id, message: (error as Error).message });
          }
          break;
        case "adapter-free":
          adapters.drop(request.key, inUse);
          break;
        case "embed":
          try {
            embeddings ??= NativeContext.create(model, {
              sequences: 1,
              contextSize: Math.min(data.contextSize, model.trainContextSize || data.contextSize),
              batchSize: Math.min(data.contextSize, model.trainContextSize || data.contextSize),
              ubatchSize: Math.min(data.contextSize, model.trainContextSize || data.contextSize),
              threads: data.threads,
              embeddings: true,
              poolingType: data.poolingType,
            });
            const context = embeddings;
            // Told `--pooling none`: every token's vector too (llama-server's /embeddings).
            const perToken = data.poolingType === 0;
            const results = request.inputs.map((tokens) => embed(context, tokens, perToken));
            emit({
              type: "embedded",
              id: request.id,
              vectors: results.map((result) => result.vector),
              ...(perToken ? { tokenVectors: results.map((result) => result.tokens ?? []) } : {}),
            });
          } catch (error) {
            emit({ type: "failed", id: request.id, message: (error as Error).message });
          }
          break;
        case "close":
          closing = true;
          break;
      }
    }
    if (closing) break;
    const worked = loop.step();
    adapters.collect(inUse);
    flush(!worked);
    if (!worked) Atomics.wait(signal, 0, seen, 1000);
  }
  embeddings?.free();
  context.free();
  model.free();
}

/** One input's embedding: pooled as the context says, or its last token's when it has no pooling; with `perToken`, every token's as well. */
function embed(context: NativeContext, tokens: Int32Array, perToken: boolean): { vector: Float32Array; tokens?: Float32Array[] } {
  context.clear();
  context.clearBatch();
  for (let index = 0; index < tokens.length; index++) context.add(tokens[index]!, index, 0, true);
  const status = context.decode();
  if (status !== 0) throw new Error(`llama_decode failed with status ${status} while embedding`);
  const vector = context.embedding(0, tokens.length - 1);
  if (!perToken || context.poolingType !== 0) return { vector };
  return { vector, tokens: Array.from(tokens, (_, index) => context.embedding(0, index)) };
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    emit({ type: "failed", id: null, message: error instanceof Error ? error.message : String(error) });
    flush();
  },
);
