import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { migrateAlias } from "../../results/migration/migrate-alias.js";
import { BUILT_IN_TASKS, taskEvaluator } from "../../bench/quality/evaluate.js";
import { ConflictError } from "../../core/errors.js";
import type { ResultStore } from "../../results/result-store.js";
import { AliasBook } from "../../store/alias-book.js";
import type { ModelStore } from "../../store/model-store.js";
import { parseBody } from "../openai-schemas.js";
import { resolveRequestFile, type RequestFileSources } from "../server-paths.js";

const setAliasSchema = z.strictObject({
  targets: z
    .array(z.strictObject({ model: z.string().min(1).max(200), weight: z.number().optional() }))
    .min(1, "an alias needs at least one model")
    .max(64),
});

const migrateSchema = z.strictObject({
  to: z.string().min(1).max(200),
  tasks: z.array(z.string().min(1).max(4096)).min(1, "name at least one task (perplexity or a task file)").max(32),
  max_regression: z.number().min(0).max(1).optional(),
  ctx: z.number().int().min(8).max(131_072).optional(),
  threads: z.number().int().min(1).max(512).optional(),
});

type NameParams = { Params: { name: string } };

/**
 * The alias admin API, over the store's registry (admin key needed when keys exist):
 * - `GET /api/aliases`, `GET /api/aliases/:name` — aliases with targets, weights and shares;
 * - `PUT /api/aliases/:name` `{"targets":[{"model":"small:f16","weight":90},…]}` — create or replace;
 * - `DELETE /api/aliases/:name`; `GET /api/aliases/:name/history`;
 * - `POST /api/aliases/:name/migrate` `{"to","tasks":[…],"max_regression"?,"ctx"?,"threads"?}` —
 *   evaluation-gated migration, run synchronously (stored results are reused, so evaluate large
 *   models beforehand with `grove eval`): 200 with the scores and `switched` true or false;
 *   `tasks` are `perplexity`, `kl-divergence`, task files uploaded with `purpose=evals`
 *   (`file-…`), or task files inside `--data-dir` (no other server path);
 * - `POST /api/aliases/:name/rollback` — restore the targets before the last change.
 */
export function registerAliasRoutes(app: FastifyInstance, store: ModelStore, results: ResultStore | undefined, threads?: number, sources: RequestFileSources = {}): void {
  const book = new AliasBook(store);
  app.get("/api/aliases", async () => ({ aliases: await book.list() }));
  app.get<NameParams>("/api/aliases/:name", async (request) => book.get(request.params.name));
  app.put<NameParams>("/api/aliases/:name", async (request) => {
    const body = parseBody(setAliasSchema, request.body);
    return book.set(
      request.params.name,
      body.targets.map((target) => (target.weight === undefined ? { ref: target.model } : { ref: target.model, weight: target.weight })),
    );
  });
  app.delete<NameParams>("/api/aliases/:name", async (request) => ({ event: await book.remove(request.params.name) }));
  app.get<NameParams>("/api/aliases/:name/history", async (request) => ({ history: await book.history(request.params.name) }));
  app.post<NameParams>("/api/aliases/:name/rollback", async (request) => ({ event: await book.rollback(request.params.name) }));
  app.post<NameParams>("/api/aliases/:name/migrate", async (request) => {
    const body = parseBody(migrateSchema, request.body);
    const tasks = await Promise.all(
      body.tasks.map(async (task) => ((BUILT_IN_TASKS as readonly string[]).includes(task) ? task : (await resolveRequestFile(sources, task, "tasks", "evals")).path)),
    );
    if (results === undefined) throw new ConflictError("Migrations measure models and keep the results: this server keeps none");
    return await migrateAlias(store, {
      alias: request.params.name,
      to: body.to,
      tasks,
      ...(body.max_regression === undefined ? {} : { maxRegression: body.max_regression }),
      evaluate: taskEvaluator(store, results, {
        // A YAML config inside --data-dir reads its includes and data from there only.
        ...(sources.dataDirectory === undefined ? {} : { taskRoot: sources.dataDirectory }),
        ...(body.ctx === undefined ? {} : { contextSize: body.ctx }),
        ...((body.threads ?? threads) === undefined ? {} : { threads: body.threads ?? threads! }),
      }),
    });
  });
}
