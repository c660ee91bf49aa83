import type { FastifyInstance } from "fastify";
import { ConflictError, InvalidRequestError } from "../../core/errors.js";
import { currentMachine } from "../../results/machine.js";
import type { ResultStore } from "../../results/result-store.js";
import { buildFront, renderFrontSvg, type FrontOptions } from "../../results/views/front.js";
import { buildLeaderboard, listTasks } from "../../results/views/leaderboard.js";
import type { ModelStore } from "../../store/model-store.js";

type Query = Record<string, string | string[] | undefined>;

/** One query parameter as a string; a repeated one is a 400, an empty one is absent. */
function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw new InvalidRequestError(`Give ${name} once`, { param: name });
  return value === "" ? undefined : value;
}


function frontOptions(query: Query): FrontOptions {
  // This machine's speeds are the ones a front compares where it has any.
  const options: FrontOptions = { machine: currentMachine() };
  for (const name of ["task", "cost", "tree"] as const) {
    const value = single(query, name);
    if (value !== undefined) options[name] = value;
  }
  return options;
}

/**
 * `GET /api/leaderboard?task=&tree=&metric=` — the ranking `grove leaderboard` prints (without
 * `task`: the tasks with results) — and `GET /api/front?task=&cost=&tree=` — the Pareto front of
 * `grove front` as JSON, or as an SVG chart from `GET /api/front.svg`. They read the store's
 * results: a server of one `--model FILE` answers them with 409.
 */
export function registerResultRoutes(app: FastifyInstance, measured: { store: ModelStore; results: ResultStore } | undefined): void {
  void app.register(async (scope) => {
    if (measured === undefined) {
      scope.addHook("onRequest", async () => {
        throw new ConflictError("Leaderboards and fronts need a store: this server serves a single --model FILE; serve the store (grove serve without a file) to use them");
      });
    }
    scope.get<{ Querystring: Query }>("/api/leaderboard", async (request) => {
      const task = single(request.query, "task");
      const tree = single(request.query, "tree");
      const metric = single(request.query, "metric");
      if (metric !== undefined && task === undefined) throw new InvalidRequestError("metric needs task", { param: "metric" });
      const { store, results } = measured!;
      return task === undefined
        ? { tasks: await listTasks(store, results, tree) }
        : buildLeaderboard(store, results, { task, machine: currentMachine(), ...(tree === undefined ? {} : { tree }), ...(metric === undefined ? {} : { metric }) });
    });
    scope.get<{ Querystring: Query }>("/api/front", async (request) => {
      const options = frontOptions(request.query);
      return buildFront(measured!.store, measured!.results, options);
    });
    scope.get<{ Querystring: Query }>("/api/front.svg", async (request, reply) => {
      const options = frontOptions(request.query);
      const front = await buildFront(measured!.store, measured!.results, options);
      return reply.type("image/svg+xml; charset=utf-8").send(renderFrontSvg(front));
    });
  });
}
