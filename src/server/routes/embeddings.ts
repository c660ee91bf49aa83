import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { InvalidRequestError } from "../../core/errors.js";
import { normalizeEmbedding } from "../../engine/embedding-norm.js";
import type { EmbedResult, LoadedModel } from "../../engine/engine.js";
import type { ModelCatalog } from "../../serving/model-catalog.js";
import { DEFAULT_EMBEDDING_NORM, requirePooledEmbeddings } from "../embedding-output.js";
import { clientGoneSignal } from "../generation.js";
import { meterOf } from "../gateway-hooks.js";
import { nativeEmbeddingSchema } from "../llama-schemas.js";
import { embeddingSchema, parseBody } from "../openai-schemas.js";
import { promptsOf, type PromptsInput } from "../prompt-input.js";

/** Float32 little-endian bytes in base64, as OpenAI's `encoding_format: "base64"` returns them. */
function toBase64(vector: readonly number[]): string {
  const floats = Float32Array.from(vector);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64");
}

interface Embedded {
  readonly model: LoadedModel;
  readonly result: EmbedResult;
}

/**
 * Embeds a request's input as llama-server does (`handle_embeddings_impl`): each prompt
 * tokenized with special tokens added and parsed (BOS, or BERT's [CLS] … [SEP]), token ids kept
 * as given, metered (reserved, then settled to the tokens evaluated).
 */
async function embedInput(request: FastifyRequest, reply: FastifyReply, catalog: ModelCatalog, name: string, input: PromptsInput, perToken: boolean): Promise<Embedded> {
  const meter = meterOf(request);
  meter.checkModel(name);
  const model = await catalog.get(name);
  if (!perToken) requirePooledEmbeddings(model);
  const prompts = promptsOf(model, input);
  const reserve = prompts.reduce((sum, tokens) => sum + tokens.length, 0);
  await meter.admit({ model: name, digest: model.info.digest, promptTokens: reserve, maxCompletionTokens: 0 });
  let result: EmbedResult;
  try {
    result = await model.embed(prompts, clientGoneSignal(reply));
  } catch (error) {
    await meter.fail(error);
    throw error;
  }
  await meter.finish({ promptTokens: result.promptTokens, completionTokens: 0, status: 200, cancelled: false });
  return { model, result };
}

/**
 * `POST /v1/embeddings` (OpenAI's: one normalised vector per input, `usage`), and llama-server's
 * own `POST /embeddings` (`/embedding`): a list of `{index, embedding}` where `embedding` holds
 * the pooled vector, or under `--pooling none` every token's vector, not normalised.
 */
export function registerEmbeddingsRoute(app: FastifyInstance, catalog: ModelCatalog): void {
  app.post("/v1/embeddings", async (request, reply) => {
    const body = parseBody(embeddingSchema, request.body);
    const { result } = await embedInput(request, reply, catalog, body.model, body.input, false);
    const base64 = body.encoding_format === "base64";
    const norm = body.embd_normalize ?? DEFAULT_EMBEDDING_NORM;
    return {
      object: "list",
      data: result.vectors.map((vector, index) => {
        const embedding = normalizeEmbedding(vector, norm);
        return { object: "embedding", index, embedding: base64 ? toBase64(embedding) : embedding };
      }),
      model: body.model,
      usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
    };
  });

  const native = async (request: FastifyRequest, reply: FastifyReply) => {
    const body = parseBody(nativeEmbeddingSchema, request.body);
    if (body.model === undefined) throw new InvalidRequestError("Name a model: this server has no default model", { param: "model" });
    const { model, result } = await embedInput(request, reply, catalog, body.model, (body.input ?? body.content)!, true);
    const norm = body.embd_normalize ?? DEFAULT_EMBEDDING_NORM;
    // Per-token vectors are returned as computed: llama-server normalises pooled ones only.
    if (model.info.pooling === "none") return result.tokenVectors!.map((embedding, index) => ({ index, embedding }));
    return result.vectors.map((vector, index) => ({ index, embedding: [normalizeEmbedding(vector, norm)] }));
  };
  app.post("/embeddings", native);
  app.post("/embedding", native);
}
