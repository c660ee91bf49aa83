import { z } from "zod";
import { LORA_TARGETS } from "../forge/finetune/lora.js";
import { LOSS_ON_VALUES } from "../forge/finetune/loss-mask.js";
import { LIMITS } from "./openai-schemas.js";

/**
 * Request bodies of the forge routes: `/api/forge/*` (strict: an unknown field is a 400, so a
 * misspelt parameter is not silently ignored) and OpenAI's `/v1/fine_tuning/jobs` (lenient, as
 * OpenAI clients send optional fields Grove does not use).
 */

const modelRef = z.string().min(1).max(LIMITS.modelName);
const name = z.string().min(1).max(200).optional();
const nullable = <T extends z.ZodType>(schema: T) => schema.nullish().transform((value) => value ?? undefined);

/** `POST /api/forge/quantize`. */
export const quantizeJobSchema = z.strictObject({
  model: modelRef,
  type: z.string().min(1).max(32),
  name,
});

/** `POST /api/forge/merge`. */
export const mergeJobSchema = z.strictObject({
  models: z.array(modelRef).min(1).max(16),
  method: z.enum(["linear", "slerp", "task-arithmetic"]),
  weights: z.array(z.number()).max(16).optional(),
  base: modelRef.optional(),
  name,
});

/** Records are checked one by one later, with the line (index + 1) of the first bad one. */
const records = z.array(z.record(z.string(), z.unknown())).min(1).max(1_000_000);

/** Grove's LoRA hyperparameters; a field left out takes its default (`LORA_DEFAULTS`). */
const lora = z.strictObject({
  rank: z.number().int().min(1).max(256).optional(),
  alpha: z.number().positive().max(4096).optional(),
  dropout: z.number().min(0).lt(1).optional(),
  targets: z
    .array(z.enum(LORA_TARGETS))
    .min(1)
    .max(LORA_TARGETS.length)
    .refine((targets) => new Set(targets).size === targets.length, "names a projection twice")
    .optional(),
});

/** What the loss counts in a chat record: `answers` (the assistant turns) or `all`. */
const lossOn = z.enum(LOSS_ON_VALUES as ["answers", "all"]);

/**
 * `POST /api/forge/finetune`: `data` is an upload's id (`file-…`, `POST /v1/files`) or a JSONL
 * path inside the server's `--data-dir`; `records` are inline; one of them.
 */
export const finetuneJobSchema = z
  .strictObject({
    model: modelRef,
    data: z.string().min(1).max(4096).optional(),
    records: records.optional(),
    epochs: z.number().int().min(1).max(10_000).optional(),
    learning_rate: z.number().positive().max(1).optional(),
    learning_rate_min: z.number().positive().max(1).optional(),
    weight_decay: z.number().min(0).lt(1).optional(),
    ctx: z.number().int().min(256).max(65_536).multipleOf(256).optional(),
    val_split: z.number().min(0).max(0.5).optional(),
    loss_on: lossOn.optional(),
    lora: lora.optional(),
    /** The seed of the records' shuffle before packing, or false for the file's order. */
    shuffle: z.union([z.number().int().min(0).max(2 ** 31 - 1), z.literal(false)]).optional(),
    name,
  })
  .refine((body) => (body.data === undefined) !== (body.records === undefined), {
    message: "give either data (an uploaded file's id, or a JSONL path inside the server's --data-dir) or records (an inline array), not both",
    path: ["data"],
  });

const auto = z.literal("auto");

/**
 * OpenAI's supervised hyperparameters, with Grove's own beside them: `batch_size` is training
 * windows per optimizer step (gradient accumulation), `loss_on` and `lora` as `grove finetune`.
 */
const supervisedHyperparameters = z.object({
  n_epochs: nullable(z.union([auto, z.number().int().min(1).max(10_000)])),
  learning_rate_multiplier: nullable(z.union([auto, z.number().positive().max(1000)])),
  batch_size: nullable(z.union([auto, z.number().int().min(1).max(4096)])),
  loss_on: nullable(lossOn),
  lora: nullable(lora),
});

/** The hyperparameters of a fine-tuning request, as Grove reads them. */
export type SupervisedHyperparameters = z.output<typeof supervisedHyperparameters>;

/** `POST /v1/fine_tuning/jobs` (OpenAI). */
export const openAiFineTuningJobSchema = z.object({
  model: modelRef,
  training_file: z.string().min(1).max(64),
  validation_file: nullable(z.string().max(64)),
  /** Deprecated by OpenAI in favour of `method`; still read. */
  hyperparameters: nullable(supervisedHyperparameters),
  /** OpenAI's method: `type` other than `supervised` is refused by the route, naming it. */
  method: nullable(
    z.object({
      type: z.string().min(1).max(32),
      supervised: nullable(z.object({ hyperparameters: nullable(supervisedHyperparameters) })),
    }),
  ),
  suffix: nullable(z.string().max(40).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "use letters, digits, '.', '_' and '-'")),
  seed: nullable(z.number().int().min(0).max(2 ** 31 - 1)),
});

/** `after` / `limit` of OpenAI's list endpoints. */
export const pageQuerySchema = z.object({
  after: z.string().min(1).max(128).optional(),
  limit: z.coerce.number().int().min(1).max(100).optional(),
});
