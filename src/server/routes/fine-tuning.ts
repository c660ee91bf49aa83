import { basename } from "node:path";
import type { FastifyInstance } from "fastify";
import { InvalidRequestError, NotFoundError } from "../../core/errors.js";
import { FINETUNE_DEFAULTS, type FinetuneRequest } from "../../forge/finetune/finetune-job.js";
import type { JobEvent } from "../../forge/jobs/job-event-log.js";
import { isFinished, type JobRunner } from "../../forge/jobs/job-runner.js";
import type { JobRecord } from "../../forge/jobs/job-store.js";
import { parseModelName, parseModelRef, quoteUntrusted } from "../../store/model-ref.js";
import { openAiFineTuningJobSchema, pageQuerySchema, type SupervisedHyperparameters } from "../forge-schemas.js";
import { parseBody } from "../openai-schemas.js";
import { forgeScope, type ForgeServices } from "./forge.js";

/** What OpenAI's job object keeps that Grove's record does not: stored under `parameters.openai`. */
interface OpenAiJobFields {
  training_file: string;
  suffix?: string;
  seed?: number;
}

const seconds = (iso: string): number => Math.floor(Date.parse(iso) / 1000);

/** A fine-tune job record as OpenAI's `fine_tuning.job` object. */
export function toOpenAiJob(job: JobRecord): Record<string, unknown> {
  const parameters = job.parameters;
  const openai = (parameters.openai ?? {}) as Partial<OpenAiJobFields>;
  const hyperparameters = {
    n_epochs: parameters.epochs,
    batch_size: parameters.accumulate ?? 1,
    learning_rate_multiplier: Number(parameters.learningRate) / FINETUNE_DEFAULTS.learningRate,
  };
  const supervised = { ...hyperparameters, loss_on: parameters.lossOn ?? "all", ...(parameters.lora === undefined ? {} : { lora: parameters.lora }) };
  return {
    id: job.id,
    object: "fine_tuning.job",
    created_at: seconds(job.createdAt),
    finished_at: isFinished(job) ? seconds(job.updatedAt) : null,
    model: job.source.ref,
    fine_tuned_model: job.status === "succeeded" ? (job.result?.name ?? job.result?.digest ?? null) : null,
    organization_id: "grove",
    result_files: [],
    status: job.status,
    validation_file: null,
    training_file: openai.training_file ?? basename(String(parameters.data)),
    hyperparameters,
    method: { type: "supervised", supervised: { hyperparameters: supervised } },
    // Tokens in the data times epochs: what the optimizer saw, counting each token once per epoch.
    trained_tokens: job.status === "succeeded" ? Number(parameters.tokens) * Number(parameters.epochs) : null,
    error: job.status === "failed" ? { code: "job_failed", message: job.error ?? "failed", param: null } : null,
    seed: openai.seed ?? (typeof parameters.shuffleSeed === "number" ? parameters.shuffleSeed : 0),
    estimated_finish: null,
    integrations: [],
    user_provided_suffix: openai.suffix ?? null,
    metadata: null,
  };
}

/** A job event as OpenAI's `fine_tuning.job.event`. */
function toOpenAiEvent(event: JobEvent): Record<string, unknown> {
  return {
    object: "fine_tuning.job.event",
    id: event.id,
    created_at: seconds(event.createdAt),
    level: event.level,
    message: event.message,
    data: event.data ?? {},
    type: event.type,
  };
}

/** One page of a newest-first list, OpenAI style: items after the one with id `after`. */
function page<T extends { id: string }>(items: readonly T[], query: unknown): { object: "list"; data: T[]; has_more: boolean } {
  const { after, limit = 20 } = parseBody(pageQuerySchema, query ?? {});
  let start = 0;
  if (after !== undefined) {
    const index = items.findIndex((item) => item.id === after);
    if (index < 0) throw new NotFoundError(`No item '${after}' to list after`, { param: "after" });
    start = index + 1;
  }
  return { object: "list", data: items.slice(start, start + limit), has_more: start + limit < items.length };
}

/** The fork's name: `<family of the parent>:ft-[<suffix>-]<job id hex>`, unique per job. */
async function forkName(runner: JobRunner, job: JobRecord, suffix: string | undefined): Promise<string> {
  let family: string | undefined;
  try {
    const ref = parseModelRef(job.source.ref);
    if (ref.kind === "name") family = ref.family;
  } catch {
    // a digest or prefix: take the parent's first name below
  }
  if (family === undefined) {
    const names = (await runner.store.show(job.source.digest)).names;
    family = names.length > 0 ? parseModelName(names[0]!).family : "ft";
  }
  const tag = `ft-${suffix === undefined ? "" : `${suffix.toLowerCase()}-`}${job.id.slice(4)}`;
  return `${family}:${tag}`;
}

/** The Grove fields of a fine-tune that OpenAI's hyperparameters set. */
type SupervisedFields = Pick<FinetuneRequest, "epochs" | "learningRate" | "accumulate" | "lossOn" | "lora">;

/**
 * Reads a request's hyperparameters — from `method.supervised.hyperparameters`, or the
 * deprecated top-level `hyperparameters` — as Grove's fields; a LoRA object's missing fields take
 * their defaults (`LORA_DEFAULTS`).
 * @throws InvalidRequestError for a method other than supervised, both places at once, or a
 *   learning rate over 1
 */
export function supervisedFields(body: { hyperparameters?: SupervisedHyperparameters | undefined; method?: { type: string; supervised?: { hyperparameters?: SupervisedHyperparameters | undefined } | undefined } | undefined }): SupervisedFields {
  const method = body.method;
  if (method !== undefined && method.type !== "supervised") {
    throw new InvalidRequestError(
      `Grove fine-tunes with method type 'supervised' only, not ${quoteUntrusted(method.type)}: preference (dpo) and reinforcement fine-tuning are not implemented`,
      { param: "method.type" },
    );
  }
  const inMethod = method?.supervised?.hyperparameters;
  if (inMethod !== undefined && body.hyperparameters !== undefined) {
    throw new InvalidRequestError("Give the hyperparameters in method.supervised.hyperparameters or in the deprecated top-level hyperparameters, not both", { param: "hyperparameters" });
  }
  const hyper = inMethod ?? body.hyperparameters;
  const param = inMethod === undefined ? "hyperparameters" : "method.supervised.hyperparameters";
  const multiplier = hyper?.learning_rate_multiplier === "auto" ? undefined : hyper?.learning_rate_multiplier;
  const learningRate = multiplier === undefined ? undefined : multiplier * FINETUNE_DEFAULTS.learningRate;
  if (learningRate !== undefined && learningRate > 1) {
    throw new InvalidRequestError(`learning_rate_multiplier ${multiplier} makes a learning rate over 1`, { param: `${param}.learning_rate_multiplier` });
  }
  const epochs = hyper?.n_epochs === "auto" ? undefined : hyper?.n_epochs;
  const batch = hyper?.batch_size === "auto" ? undefined : hyper?.batch_size;
  const lora = hyper?.lora;
  return {
    ...(epochs === undefined ? {} : { epochs }),
    ...(learningRate === undefined ? {} : { learningRate }),
    ...(batch === undefined || batch === 1 ? {} : { accumulate: batch }),
    ...(hyper?.loss_on === undefined ? {} : { lossOn: hyper.loss_on }),
    ...(lora === undefined ? {} : { lora }),
  };
}

async function getFinetuneJob(runner: JobRunner, id: string): Promise<JobRecord> {
  const job = await runner.get(id);
  if (job.kind !== "finetune") throw new NotFoundError(`No fine-tuning job '${id}' (it is a ${job.kind} job)`, { param: "fine_tuning_job_id" });
  return job;
}

/**
 * OpenAI's fine-tuning API over Grove's fine-tune jobs: `/v1/fine_tuning/jobs` (create, list,
 * retrieve, cancel, events). `learning_rate_multiplier` scales Grove's default learning rate;
 * the fork is named `<family>:ft-[<suffix>-]<job id hex>`.
 */
export function registerFineTuningRoutes(app: FastifyInstance, forge: ForgeServices | undefined): void {
  forgeScope(app, forge, (scope) => {
    scope.post("/v1/fine_tuning/jobs", async (request) => {
      const body = parseBody(openAiFineTuningJobSchema, request.body);
      const fields = supervisedFields(body);
      const { runner, files } = forge!;
      if (body.validation_file !== undefined) {
        throw new InvalidRequestError("validation_file is not supported: Grove holds out a share of the training windows for validation loss", { param: "validation_file" });
      }
      const file = await files.get(body.training_file).catch((error: unknown) => {
        throw error instanceof NotFoundError ? new NotFoundError(`No file '${body.training_file}'`, { param: "training_file", cause: error }) : error;
      });
      if (file.purpose !== "fine-tune") throw new InvalidRequestError(`${file.id} was uploaded with purpose '${file.purpose}', not 'fine-tune'`, { param: "training_file" });
      // OpenAI's seed makes a job reproducible: here it seeds the shuffle of the records.
      const seed = body.seed ?? undefined;
      const job = await runner.startFinetune(
        { model: body.model, data: files.pathOf(file.id), ...fields, ...(seed === undefined ? {} : { shuffle: seed }) },
        async (created) => {
          const fields: OpenAiJobFields = { training_file: file.id, ...(body.suffix === undefined ? {} : { suffix: body.suffix }), ...(seed === undefined ? {} : { seed }) };
          created.parameters.openai = fields;
          created.parameters.name = await forkName(runner, created, body.suffix);
        },
      );
      return toOpenAiJob(job);
    });
    scope.get("/v1/fine_tuning/jobs", async (request) => {
      const jobs = (await forge!.runner.list()).filter((job) => job.kind === "finetune");
      const result = page(jobs, request.query);
      return { ...result, data: result.data.map(toOpenAiJob) };
    });
    scope.get<{ Params: { id: string } }>("/v1/fine_tuning/jobs/:id", async (request) => toOpenAiJob(await getFinetuneJob(forge!.runner, request.params.id)));
    scope.post<{ Params: { id: string } }>("/v1/fine_tuning/jobs/:id/cancel", async (request) => {
      await getFinetuneJob(forge!.runner, request.params.id);
      return toOpenAiJob(await forge!.runner.cancel(request.params.id));
    });
    scope.get<{ Params: { id: string } }>("/v1/fine_tuning/jobs/:id/events", async (request) => {
      await getFinetuneJob(forge!.runner, request.params.id);
      const events = (await forge!.runner.events.read(request.params.id)).reverse();
      const result = page(events, request.query);
      return { ...result, data: result.data.map(toOpenAiEvent) };
    });
  });
}
