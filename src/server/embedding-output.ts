import { InvalidRequestError } from "../core/errors.js";
import type { LoadedModel } from "../engine/engine.js";

/**
 * What the embedding routes (OpenAI's, Ollama's, llama-server's) share about their output: the
 * default normalisation, and the refusal of routes that return one vector per input when the
 * server pools none.
 */

/** `embd_normalize` 2, Euclidean: unit vectors, as OpenAI's and Ollama's embeddings are and llama-server's default. */
export const DEFAULT_EMBEDDING_NORM = 2;

/**
 * @throws InvalidRequestError under `--pooling none`: the model computes one vector per token,
 * which only llama-server's `/embeddings` returns (llama-server's `/v1/embeddings` refuses too)
 */
export function requirePooledEmbeddings(model: LoadedModel): void {
  if (model.info.pooling !== "none") return;
  throw new InvalidRequestError(
    "This server pools no embeddings (--pooling none): it computes one vector per token, which only llama-server's /embeddings returns; start it with --pooling mean, cls or last for one vector per input",
  );
}
