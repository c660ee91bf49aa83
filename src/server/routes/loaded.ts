import type { FastifyInstance } from "fastify";
import type { Engine } from "../../engine/engine.js";
import type { ModelPool, PoolReport } from "../../serving/model-pool.js";

/**
 * `GET /api/loaded`: the models in memory now, each with its memory estimate (weights, KV cache,
 * compute buffers), last use and slots, and the budget they share (`budgetBytes` 0: none). A
 * server of one `--model FILE` has no pool: it lists the engine's models without estimates.
 * (Ollama's `/api/ps` is a different route, in Ollama's format.)
 */
export function registerLoadedRoute(app: FastifyInstance, engine: Engine, pool: ModelPool | undefined): void {
  app.get("/api/loaded", async (): Promise<PoolReport | { budgetBytes: 0; models: unknown[] }> => {
    if (pool !== undefined) return pool.report();
    return {
      budgetBytes: 0,
      models: engine.models.map((model) => {
        const stats = model.stats();
        return { id: model.info.id, digest: model.info.digest, state: "loaded", estimateBytes: null, contextSize: model.info.contextSize, slots: model.info.slots, slotsBusy: stats.slotsBusy, slotsTotal: stats.slotsTotal, queued: stats.queued };
      }),
    };
  });
}
