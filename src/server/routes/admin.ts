import type { FastifyInstance } from "fastify";
import type { ModelStore } from "../../store/model-store.js";

/** `/api/...`: the store's models, one model's details, and its fork tree, as JSON. */
export function registerAdminRoutes(app: FastifyInstance, store: ModelStore): void {
  app.get("/api/models", async () => ({ models: await store.list() }));
  app.get<{ Params: { ref: string } }>("/api/models/:ref", async (request) => {
    const details = await store.show(request.params.ref);
    // The blob path is a server-side detail.
    const { path: _path, ...rest } = details;
    return rest;
  });
  app.get<{ Params: { ref: string } }>("/api/models/:ref/tree", async (request) => ({
    tree: await store.tree(request.params.ref),
  }));
}
