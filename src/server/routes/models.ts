import type { FastifyInstance } from "fastify";
import type { Engine, LoadedModel } from "../../engine/engine.js";

function describe(model: LoadedModel) {
  const { info } = model;
  return {
    id: info.id,
    object: "model",
    created: info.loadedAt,
    owned_by: "grove",
    digest: info.digest,
    context_length: info.contextSize,
    train_context_length: info.trainContextSize,
    slots: info.slots,
    threads: info.threads,
    vocabulary_size: info.vocabularySize,
    embedding_size: info.embeddingSize,
  };
}

/** `GET /health`, `GET /v1/models`, `GET /v1/models/:id`. */
export function registerModelRoutes(app: FastifyInstance, engine: Engine): void {
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
  app.get("/v1/models", async () => ({ object: "list", data: engine.models.map(describe) }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request) => describe(engine.getModel(request.params.id)));
}
