import type { FastifyInstance } from "fastify";
import { clientGoneSignal } from "../generation.js";
import { meterOf } from "../gateway-hooks.js";
import type { ModelCatalog } from "../../serving/model-catalog.js";
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
    const meter = meterOf(request);
    meter.checkModel(body.model);
    const model = await catalog.get(body.model);
    const input = body.input;
    const inputs: (string | number[])[] =
      typeof input === "string" ? [input] : typeof input[0] === "number" ? [input as number[]] : (input as (string | number[])[]);
    // Reserved: each text's tokens plus 2 for the special tokens an embedding may add; settled to the real count.
    const reserve = inputs.reduce((sum, item) => sum + (typeof item === "string" ? model.tokenize(item).length + 2 : item.length), 0);
    await meter.admit({ model: body.model, digest: model.info.digest, promptTokens: reserve, maxCompletionTokens: 0 });
    let embedded: Awaited<ReturnType<typeof model.embed>>;
    try {
      embedded = await model.embed(inputs, clientGoneSignal(reply));
    } catch (error) {
      await meter.fail(error);
      throw error;
    }
    const { vectors, promptTokens } = embedded;
    await meter.finish({ promptTokens, completionTokens: 0, status: 200, cancelled: false });
    const base64 = body.encoding_format === "base64";
    return {
      object: "list",
      data: vectors.map((vector, index) => ({ object: "embedding", index, embedding: base64 ? toBase64(vector) : vector })),
      model: body.model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    };
  });
}
