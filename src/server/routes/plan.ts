import type { FastifyInstance } from "fastify";
import { ConflictError, InvalidRequestError } from "../../core/errors.js";
import { currentMachine } from "../../results/machine.js";
import type { ResultKind, ResultStore } from "../../results/result-store.js";
import { planDeployment, planOptionsFromText } from "../../plan/plan.js";
import type { ModelStore } from "../../store/model-store.js";

type Query = Record<string, string | string[] | undefined>;

/** One query parameter as a string; a repeated one is a 400. */
function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw new InvalidRequestError(`Give ${name} once`, { param: name });
  return value;
}


/**
 * `GET /api/plan?memory=8GiB&ctx=&slots=&task=&tree=&p50_token_ms=&min_tps=` — the plan `grove plan`
 * prints, as JSON — and `GET /api/results?model=&task=&kind=` — stored measurements, newest first.
 * Both read the store's results: a server of one `--model FILE` answers them with 409.
 */
export function registerPlanRoutes(app: FastifyInstance, measured: { store: ModelStore; results: ResultStore } | undefined): void {
  void app.register(async (scope) => {
    if (measured === undefined) {
      scope.addHook("onRequest", async () => {
        throw new ConflictError("Plans and results need a store: this server serves a single --model FILE; serve the store (grove serve without a file) to use them");
      });
    }
    scope.get<{ Querystring: Query }>("/api/plan", async (request) => {
      const query = request.query;
      const options = planOptionsFromText(
        {
          memory: single(query, "memory"),
          ctx: single(query, "ctx"),
          slots: single(query, "slots"),
          p50TokenMs: single(query, "p50_token_ms"),
          minTps: single(query, "min_tps"),
          task: single(query, "task"),
          tree: single(query, "tree"),
        },
        { p50TokenMs: "p50_token_ms", minTps: "min_tps" },
      );
      return planDeployment(measured!.store, measured!.results, { ...options, machine: currentMachine() });
    });
    scope.get<{ Querystring: Query }>("/api/results", async (request) => {
      const query = request.query;
      const model = single(query, "model");
      const task = single(query, "task");
      const kind = single(query, "kind");
      if (kind !== undefined && kind !== "quality" && kind !== "cost") throw new InvalidRequestError(`kind must be quality or cost, got '${kind}'`, { param: "kind" });
      const { store, results } = measured!;
      const digest = model === undefined || model === "" ? undefined : (await store.resolve(model)).digest;
      return {
        results: await results.list({
          ...(digest === undefined ? {} : { modelDigests: [digest] }),
          ...(task === undefined || task === "" ? {} : { task }),
          ...(kind === undefined ? {} : { kind: kind as ResultKind }),
        }),
      };
    });
  });
}
