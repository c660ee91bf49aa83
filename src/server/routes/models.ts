import type { FastifyInstance } from "fastify";
import type { Engine } from "../../engine/engine.js";
import type { CatalogEntry, ModelCatalog } from "../../serving/model-catalog.js";

function describe(entry: CatalogEntry, defaultModel: string | undefined) {
  const info = entry.loaded?.info;
  return {
    id: entry.id,
    object: "model",
    created: entry.created,
    owned_by: "grove",
    digest: entry.digest,
    loaded: entry.loaded !== undefined,
    // Grove's extension, as `digest` and `loaded`: the model the server was started to serve.
    ...(entry.id === defaultModel ? { default: true } : {}),
    ...(entry.details ?? {}),
    ...(info
      ? {
          context_length: info.contextSize,
          train_context_length: info.trainContextSize,
          slots: info.slots,
          threads: info.threads,
          vocabulary_size: info.vocabularySize,
          embedding_size: info.embeddingSize,
        }
      : {}),
  };
}

/** `GET /health`, `GET /v1/models`, `GET /v1/models/:id`. */
export function registerModelRoutes(app: FastifyInstance, engine: Engine, catalog: ModelCatalog, defaultModel?: string): void {
  app.get("/health", async () => ({
    status: "ok",
    models: engine.models.map((model) => {
      const stats = model.stats();
      return {
        id: model.info.id,
        slots_busy: stats.slotsBusy,
        slots_total: stats.slotsTotal,
        queued: stats.queued,
        finished: stats.finished,
      };
    }),
  }));
  app.get("/v1/models", async () => ({ object: "list", data: (await catalog.list()).map((entry) => describe(entry, defaultModel)) }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request) => {
    // Resolving loads the model, so the answer carries its context and sizes.
    const model = await catalog.get(request.params.id);
    const entry = (await catalog.list()).find((candidate) => candidate.digest === model.info.digest);
    return describe({
      id: request.params.id,
      digest: model.info.digest,
      created: entry?.created ?? model.info.loadedAt,
      loaded: model,
      details: entry?.details,
    }, defaultModel);
  });
}
