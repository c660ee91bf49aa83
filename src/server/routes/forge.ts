import type { FastifyInstance, FastifyReply } from "fastify";
import { ConflictError } from "../../core/errors.js";
import { isFinished, withoutSteps, type JobRunner, type JobUpdate } from "../../forge/jobs/job-runner.js";
import type { TrainingFiles } from "../../forge/jobs/training-files.js";
import { finetuneJobSchema, mergeJobSchema, quantizeJobSchema } from "../forge-schemas.js";
import { parseBody } from "../openai-schemas.js";
import { onResponseClosed } from "../response-closed.js";
import { resolveRequestFile } from "../server-paths.js";
import { SseStream } from "../sse.js";

/** What the forge routes need; absent when Grove serves a single file. */
export interface ForgeServices {
  readonly runner: JobRunner;
  readonly files: TrainingFiles;
  /** `--data-dir`: the one directory whose files requests may name by path; undefined when none. */
  readonly dataDirectory?: string;
}

/**
 * Registers `routes` in their own scope, which answers 409 when there is no store to run forge
 * jobs against (`forge` undefined): route handlers may then take `forge!` as given.
 */
export function forgeScope(app: FastifyInstance, forge: ForgeServices | undefined, routes: (scope: FastifyInstance) => void | Promise<void>): void {
  void app.register(async (scope) => {
    if (forge === undefined) {
      scope.addHook("onRequest", async () => {
        throw new ConflictError("Forge jobs need a store: this server serves a single --model FILE; serve a model of the store (grove serve --model NAME) to use them");
      });
    }
    await routes(scope);
  });
}

/**
 * `/api/forge/*`: start quantize, merge and fine-tune jobs (202 with the job), list and show
 * jobs, cancel and resume them, and follow one as server-sent events.
 */
export function registerForgeRoutes(app: FastifyInstance, forge: ForgeServices | undefined, bodyLimit: number): void {
  forgeScope(app, forge, (scope) => {
    scope.post("/api/forge/quantize", async (request, reply) => {
      const body = parseBody(quantizeJobSchema, request.body);
      return reply.code(202).send(await forge!.runner.startQuantize(body));
    });
    scope.post("/api/forge/merge", async (request, reply) => {
      const body = parseBody(mergeJobSchema, request.body);
      return reply.code(202).send(await forge!.runner.startMerge(body));
    });
    scope.post("/api/forge/finetune", { bodyLimit }, async (request, reply) => {
      const body = parseBody(finetuneJobSchema, request.body);
      // `data` names an upload or a file in the data directory, never any other server path.
      const data = body.data === undefined ? undefined : (await resolveRequestFile(forge!, body.data, "data", "fine-tune")).path;
      const job = await forge!.runner.startFinetune({
        model: body.model,
        ...defined({
          data,
          records: body.records,
          epochs: body.epochs,
          learningRate: body.learning_rate,
          learningRateMin: body.learning_rate_min,
          weightDecay: body.weight_decay,
          contextSize: body.ctx,
          validationSplit: body.val_split,
          lossOn: body.loss_on,
          lora: body.lora,
          shuffle: body.shuffle,
          name: body.name,
        }),
      });
      return reply.code(202).send(job);
    });
    scope.get("/api/forge/jobs", async () => ({ jobs: (await forge!.runner.list()).map(withoutSteps) }));
    scope.get<{ Params: { id: string } }>("/api/forge/jobs/:id", async (request) => forge!.runner.get(request.params.id));
    scope.post<{ Params: { id: string } }>("/api/forge/jobs/:id/cancel", async (request) => withoutSteps(await forge!.runner.cancel(request.params.id)));
    scope.post<{ Params: { id: string } }>("/api/forge/jobs/:id/resume", async (request, reply) => reply.code(202).send(await forge!.runner.resume(request.params.id)));
    scope.get<{ Params: { id: string } }>("/api/forge/jobs/:id/events", async (request, reply) => followJob(forge!.runner, request.params.id, reply));
  });
}

/**
 * Streams `{"job", "event"}` updates until the job finishes, then `[DONE]`. The first message is
 * the job as it stands (`event: null`); for a finished job it is the only one.
 */
async function followJob(runner: JobRunner, id: string, reply: FastifyReply): Promise<FastifyReply> {
  const pending: JobUpdate[] = [];
  let stream: SseStream | undefined;
  const send = (update: JobUpdate): void => {
    stream!.send(update);
    if (isFinished(update.job)) finish();
  };
  // Subscribed before reading the record, so no update falls between the two.
  const unsubscribe = runner.subscribe(id, (update) => (stream === undefined ? pending.push(update) : send(update)));
  const finish = (): void => {
    unsubscribe();
    stream?.end();
  };
  let job;
  try {
    job = await runner.get(id);
  } catch (error) {
    unsubscribe();
    throw error;
  }
  stream = new SseStream(reply);
  onResponseClosed(reply.raw, unsubscribe);
  stream.send({ job: withoutSteps(job), event: null });
  if (isFinished(job) || !runner.isActive(id)) {
    finish();
    return reply;
  }
  for (const update of pending.splice(0)) send(update);
  return reply;
}

function defined<T extends Record<string, unknown>>(values: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
