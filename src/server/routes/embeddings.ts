import type { FastifyInstance } from "fastify";
import { clientGoneSignal } from "../generation.js";
import type { ModelCatalog } from "../model-catalog.js";
import { embeddingSchema, parseBody } from "../openai-schemas.js";

/** Float32 little-endian bytes in base64, as OpenAI's `encoding_format: "base64"` returns them. */
function toBase64(vector: readonly number[]): string {
  const floats = Float32Array.from(vector);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString("base64");
}

/** `POST /v1/embeddings`. */
export function registerEmbeddingsRoute(app: FastifyInstance, catalog: ModelCatalog): void {
  app.post("/v1/embeddings", async (request, reply) => {
    const body = parseBody(embeddingSchema, request.body);
    const model = await catalog.get(body.model);
    const input = body.input;
    const inputs: (string | number[])[] =
      typeof input === "string" ? [input] : typeof input[0] === "number" ? [input as number[]] : (input as (string | number[])[]);
    const { vectors, promptTokens } = await model.embed(inputs, clientGoneSignal(reply));
    const base64 = body.encoding_format === "base64";
    return {
      object: "list",
      data: vectors.map((vector, index) => ({ object: "embedding", index, embedding: base64 ? toBase64(vector) : vector })),
      model: body.model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    };
  });
}
