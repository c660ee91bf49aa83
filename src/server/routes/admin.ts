import type { FastifyInstance } from "fastify";
import { ConflictError } from "../../core/errors.js";
import type { ResultStore } from "../../results/result-store.js";
import type { ModelStore } from "../../store/model-store.js";

/**
 * `/api/...`: the store's models, one model's details, its fork tree and its evaluation results,
 * and every fork tree of the store, as JSON.
 */
export function registerAdminRoutes(app: FastifyInstance, store: ModelStore, results: ResultStore | undefined): void {
  app.get("/api/models", async () => ({ models: await store.list() }));
  // The whole store's trees at once, so a client draws the forest without a call per root.
  app.get("/api/tree", async () => ({ tree: await store.tree() }));
  app.get<{ Params: { ref: string } }>("/api/models/:ref", async (request) => {
    const details = await store.show(request.params.ref);
    // The blob path is a server-side detail.
    const { path: _path, ...rest } = details;
    return rest;
  });
  app.get<{ Params: { ref: string } }>("/api/models/:ref/tree", async (request) => ({
    tree: await store.tree(request.params.ref),
  }));
  app.get<{ Params: { ref: string } }>("/api/models/:ref/results", async (request) => {
    const { digest } = await store.resolve(request.params.ref);
    if (results === undefined) throw new ConflictError("This server keeps no results");
    return { results: await results.list({ modelDigests: [digest] }) };
  });
}
