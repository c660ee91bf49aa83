import type { FastifyInstance } from "fastify";
import { ConflictError, InvalidRequestError } from "../../core/errors.js";
import { ResultStore } from "../../results/result-store.js";
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

/** Opens the results database of the store for one request. */
async function withResults<T>(store: ModelStore, fn: (results: ResultStore) => Promise<T>): Promise<T> {
  const results = ResultStore.open(store.home);
  try {
    return await fn(results);
  } finally {
    results.close();
  }
}

function frontOptions(query: Query): FrontOptions {
  const options: FrontOptions = {};
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
export function registerResultRoutes(app: FastifyInstance, store: ModelStore | undefined): void {
  void app.register(async (scope) => {
    if (store === undefined) {
      scope.addHook("onRequest", async () => {
        throw new ConflictError("Leaderboards and fronts need a store: this server serves a single --model FILE; serve the store (grove serve without a file) to use them");
      });
    }
    scope.get<{ Querystring: Query }>("/api/leaderboard", async (request) => {
      const task = single(request.query, "task");
      const tree = single(request.query, "tree");
      const metric = single(request.query, "metric");
      if (metric !== undefined && task === undefined) throw new InvalidRequestError("metric needs task", { param: "metric" });
      return withResults(store!, async (results) =>
        task === undefined
          ? { tasks: await listTasks(store!, results, tree) }
          : buildLeaderboard(store!, results, { task, ...(tree === undefined ? {} : { tree }), ...(metric === undefined ? {} : { metric }) }),
      );
    });
    scope.get<{ Querystring: Query }>("/api/front", async (request) => {
      const options = frontOptions(request.query);
      return withResults(store!, (results) => buildFront(store!, results, options));
    });
    scope.get<{ Querystring: Query }>("/api/front.svg", async (request, reply) => {
      const options = frontOptions(request.query);
      const front = await withResults(store!, (results) => buildFront(store!, results, options));
      return reply.type("image/svg+xml; charset=utf-8").send(renderFrontSvg(front));
    });
  });
}
