import { access, copyFile, readFile, rename, rm, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import type { Digest } from "../../core/digest.js";
import { AbortedError, EngineError, InvalidRequestError } from "../../core/errors.js";
import { digestOfFile } from "../../store/file-digest.js";
import { runNativeJob } from "../../native/job-host.js";
import type { ModelStore } from "../../store/model-store.js";
import { quoteUntrusted } from "../../store/model-ref.js";
import type { Recipe } from "../../store/registry.js";
import { JobStore, ownedByAnotherLiveProcess, type EpochRecord, type JobRecord } from "../jobs/job-store.js";
import { registerRebuilder } from "../recipe/rebuild.js";
import { quantizerVersion } from "../quantize/quantize-model.js";
import { CONTEXT_GRANULARITY, windowCount, type TrainEvent } from "./libllama-train.js";
import { GGML_TRAIN_ARCHITECTURES, ggmlTrainArchitecture } from "./ggml-train-architectures.js";
import type { FinetuneWorkerArguments } from "./finetune-worker.js";
import { answerTokensPerWindow, LOSS_ON_VALUES, type LossOn } from "./loss-mask.js";
import { repackageTrainedModel } from "./repackage.js";
import { tokenizeRecords } from "./tokenize-records.js";
import { MAX_SHUFFLE_SEED, readTrainingData, shuffleRecords } from "./training-data.js";
import { checkLoraBase, resolveLoraSettings, type LoraSettings } from "./lora.js";

const JOB = new URL("./finetune-worker.js", import.meta.url);

/** The recipe tool name of a fine-tune through llama.cpp's trainer (`--trainer llama.cpp`). */
export const FINETUNE_TOOL = "llama.cpp llama_opt_epoch";
/** The recipe tool name of a fine-tune through Grove's own ggml graph (`--trainer ggml`, the default). */
export const GGML_FINETUNE_TOOL = "grove ggml-opt";

/**
 * Which trainer runs a fine-tune: `ggml`, Grove's own graph of the model (Llama, Mistral as llama,
 * Qwen2, Qwen3: GGML_TRAIN_ARCHITECTURES) on ggml's optimizer, which trains every tensor; or `llama.cpp`, `llama_opt_epoch` as llama-finetune runs
 * it, which leaves the token embeddings and the attention's keys and values as they were.
 */
export type Trainer = "ggml" | "llama.cpp";

/** Hyperparameters of a fine-tune, as the recipe records them. */
export interface FinetuneParameters {
  epochs: number;
  learningRate: number;
  /** Learning rate of the last epoch (linear decay); equal to `learningRate` for a constant rate. */
  learningRateMin: number;
  weightDecay: number;
  /** Tokens per training window; a multiple of 256 (llama.cpp pads contexts to it). */
  contextSize: number;
  /** Share of windows held out for validation loss, in [0, 0.5]. */
  validationSplit: number;
  /** Tokens between window starts: half a window (finetune.cpp's) unless set. */
  stride?: number;
  /** Per-step schedule: linear warm-up over this many steps, then cosine decay to learningRateMin. */
  warmupSteps?: number;
  /**
   * `false`: each record starts a window of its own, the rest of it padded with EOS (the stride is
   * then the window), so attention never reaches into another record. Absent: records are joined
   * into one stream cut into windows, as llama.cpp's finetune does.
   */
  packing?: false;
  /** The trainer; absent in jobs and recipes made before there was a choice: llama.cpp. */
  trainer?: Trainer;
  /** Windows whose gradients are summed into one optimizer step (ggml trainer only). @default 1 */
  accumulate?: number;
  /**
   * The tokens of a chat record the loss counts (text records count every token). Absent in jobs
   * and recipes made before there was a choice: `all`.
   */
  lossOn?: LossOn;
  /** Train a LoRA adapter on the frozen base (ggml trainer only); the result is an `adapter` fork. */
  lora?: LoraSettings;
  /**
   * Seed of the shuffle of the records before they are joined into windows (see
   * {@link shuffleRecords}). Absent: the file's order — jobs and recipes made before there was a
   * shuffle, and `--no-shuffle`.
   */
  shuffleSeed?: number;
  threads: number;
  optimizer: "adamw";
}

/** Defaults of `grove finetune`. */
export const FINETUNE_DEFAULTS = Object.freeze({ epochs: 3, learningRate: 1e-4, weightDecay: 0, contextSize: 256, validationSplit: 0.05, shuffleSeed: 0 });

/** What a user asks for; missing values take {@link FINETUNE_DEFAULTS}. */
export interface FinetuneRequest {
  /** The parent model: a name, digest or digest prefix in the store. */
  model: string;
  /** A JSONL file of `{"text"}` or `{"messages"}` records. */
  data: string;
  epochs?: number;
  learningRate?: number;
  learningRateMin?: number;
  weightDecay?: number;
  contextSize?: number;
  validationSplit?: number;
  stride?: number;
  warmupSteps?: number;
  /** `false`: one record per window, padded (see {@link FinetuneParameters.packing}). @default true */
  packing?: boolean;
  /** @default "ggml" */
  trainer?: Trainer;
  /** Gradient accumulation: windows per optimizer step (ggml trainer only). @default 1 */
  accumulate?: number;
  /**
   * `answers`: chat records train on their assistant turns only; `all`: on every token.
   * @default "answers" with the ggml trainer, "all" with llama.cpp's (which cannot mask labels)
   */
  lossOn?: LossOn;
  /**
   * Train a LoRA adapter instead of every weight (absent: a full fine-tune); missing fields take
   * `LORA_DEFAULTS` (rank 8, alpha 16, dropout 0.05, every projection). `targets` may be the
   * CLI's comma-separated list.
   */
  lora?: { rank?: number; alpha?: number; dropout?: number; targets?: readonly string[] | string };
  /**
   * The seed of the records' shuffle before packing, or `false` to keep the file's order (as
   * llama-finetune does). @default FINETUNE_DEFAULTS.shuffleSeed
   */
  shuffle?: number | false;
  threads?: number;
  /** Name to point at the fine-tuned model. */
  name?: string;
}

/**
 * Checks and completes fine-tune parameters.
 * @throws InvalidRequestError naming the parameter at fault
 */
export function resolveFinetuneParameters(request: Omit<FinetuneRequest, "model" | "data" | "name">): FinetuneParameters {
  const epochs = request.epochs ?? FINETUNE_DEFAULTS.epochs;
  const learningRate = request.learningRate ?? FINETUNE_DEFAULTS.learningRate;
  const parameters: FinetuneParameters = {
    epochs,
    learningRate,
    learningRateMin: request.learningRateMin ?? learningRate,
    weightDecay: request.weightDecay ?? FINETUNE_DEFAULTS.weightDecay,
    contextSize: request.contextSize ?? FINETUNE_DEFAULTS.contextSize,
    validationSplit: request.validationSplit ?? FINETUNE_DEFAULTS.validationSplit,
    threads: request.threads ?? availableParallelism(),
    optimizer: "adamw",
    ...(request.stride === undefined ? {} : { stride: request.stride }),
    ...(request.warmupSteps === undefined ? {} : { warmupSteps: request.warmupSteps }),
    ...(request.packing === false ? { packing: false as const } : {}),
    trainer: request.trainer ?? "ggml",
    ...(request.accumulate === undefined ? {} : { accumulate: request.accumulate }),
    lossOn: request.lossOn ?? ((request.trainer ?? "ggml") === "ggml" ? "answers" : "all"),
    ...(request.lora === undefined ? {} : { lora: resolveLoraSettings(request.lora) }),
    ...(request.shuffle === false ? {} : { shuffleSeed: request.shuffle ?? FINETUNE_DEFAULTS.shuffleSeed }),
  };
  const check = (ok: boolean, param: string, message: string): void => {
    if (!ok) throw new InvalidRequestError(message, { param });
  };
  check(Number.isInteger(epochs) && epochs >= 1 && epochs <= 10_000, "epochs", `epochs must be an integer from 1 to 10000, got ${epochs}`);
  for (const [param, value] of [["lr", parameters.learningRate], ["lr-min", parameters.learningRateMin]] as const) {
    check(Number.isFinite(value) && value > 0 && value <= 1, param, `${param} must be a number in (0, 1], got ${value}`);
  }
  check(Number.isFinite(parameters.weightDecay) && parameters.weightDecay >= 0 && parameters.weightDecay < 1, "weight-decay", `weight-decay must be in [0, 1), got ${parameters.weightDecay}`);
  check(
    Number.isInteger(parameters.contextSize) && parameters.contextSize >= CONTEXT_GRANULARITY && parameters.contextSize % CONTEXT_GRANULARITY === 0 && parameters.contextSize <= 65_536,
    "ctx",
    `ctx must be a multiple of ${CONTEXT_GRANULARITY} (llama.cpp pads contexts to it) from ${CONTEXT_GRANULARITY} to 65536, got ${parameters.contextSize}`,
  );
  check(
    Number.isFinite(parameters.validationSplit) && parameters.validationSplit >= 0 && parameters.validationSplit <= 0.5,
    "val-split",
    `val-split must be in [0, 0.5], got ${parameters.validationSplit}`,
  );
  check(parameters.trainer === "ggml" || parameters.trainer === "llama.cpp", "trainer", `trainer must be ggml or llama.cpp, got ${String(parameters.trainer)}`);
  if (parameters.accumulate !== undefined) {
    check(Number.isInteger(parameters.accumulate) && parameters.accumulate >= 1 && parameters.accumulate <= 4096, "accumulate", `accumulate must be a whole number of windows from 1 to 4096, got ${parameters.accumulate}`);
    check(parameters.trainer === "ggml", "accumulate", "accumulate needs the ggml trainer (llama.cpp's accumulates only within a window)");
  }
  check(LOSS_ON_VALUES.includes(parameters.lossOn!), "loss-on", `loss-on must be answers or all, got ${String(parameters.lossOn)}`);
  check(
    !(parameters.trainer === "llama.cpp" && parameters.lossOn === "answers"),
    "loss-on",
    "loss-on answers needs the ggml trainer: llama.cpp's llama_opt_epoch writes a one-hot label for every token of a window and has no ignore label, so it can only train on all tokens (--loss-on all)",
  );
  // llama_opt_init makes every model tensor a parameter: llama.cpp's trainer has no adapter to train.
  check(parameters.lora === undefined || parameters.trainer === "ggml", "trainer", "LoRA needs the ggml trainer: llama.cpp's (llama_opt_epoch) trains the model's own tensors only, never an adapter");
  if (parameters.packing === false) {
    check(parameters.stride === undefined || parameters.stride === parameters.contextSize, "stride", `without packing each record has a window of its own: stride must be left out (or equal ctx, ${parameters.contextSize}), got ${parameters.stride}`);
    parameters.stride = parameters.contextSize;
  }
  if (parameters.stride !== undefined) {
    check(Number.isInteger(parameters.stride) && parameters.stride >= 1 && parameters.stride <= parameters.contextSize, "stride", `stride must be an integer from 1 to ctx (${parameters.contextSize}), got ${parameters.stride}`);
  }
  if (parameters.warmupSteps !== undefined) {
    check(Number.isInteger(parameters.warmupSteps) && parameters.warmupSteps >= 0 && parameters.warmupSteps <= 10_000_000, "warmup", `warmup must be a whole number of steps from 0, got ${parameters.warmupSteps}`);
  }
  if (parameters.shuffleSeed !== undefined) {
    check(Number.isInteger(parameters.shuffleSeed) && parameters.shuffleSeed >= 0 && parameters.shuffleSeed <= MAX_SHUFFLE_SEED, "shuffle", `shuffle seed must be a whole number from 0 to ${MAX_SHUFFLE_SEED}, got ${parameters.shuffleSeed}`);
  }
  check(Number.isInteger(parameters.threads) && parameters.threads >= 1 && parameters.threads <= 1024, "threads", `threads must be a positive integer, got ${parameters.threads}`);
  return parameters;
}

/**
 * Prepares a fine-tune job: checks the parameters, reads and checks every data record, resolves
 * the parent, tokenizes the data with the parent's vocabulary and checks it fills enough
 * windows — all before anything is trained or stored. The job directory holds the tokens.
 *
 * @throws InvalidRequestError for bad parameters or data (named by line), ModelNotFoundError
 */
export async function createFinetuneJob(store: ModelStore, jobs: JobStore, request: FinetuneRequest): Promise<JobRecord> {
  const parameters = resolveFinetuneParameters(request);
  const parent = await store.show(request.model);
  if (parameters.trainer === "ggml" && ggmlTrainArchitecture(parent.model.architecture) === undefined) {
    // Refused here rather than by the worker, so no job is left to fail (ggml-train.ts checks again).
    throw new InvalidRequestError(
      `Grove's trainer (--trainer ggml) knows the ${GGML_TRAIN_ARCHITECTURES.join(", ")} architectures; ${quoteUntrusted(request.model)} is ${quoteUntrusted(parent.model.architecture)} — use --trainer llama.cpp`,
      { param: "trainer" },
    );
  }
  if (parameters.lora !== undefined) await checkLoraBase(parent.path, request.model);
  const data = await readTrainingData(request.data);
  if (parent.model.contextLength > 0 && parameters.contextSize > parent.model.contextLength) {
    throw new InvalidRequestError(`ctx ${parameters.contextSize} is longer than the model's context of ${parent.model.contextLength} tokens`, { param: "ctx" });
  }
  // Shuffled by index, so an error still names a record by its place in the file.
  const order = parameters.shuffleSeed === undefined ? undefined : shuffleRecords(data.records.map((_, index) => index), parameters.shuffleSeed);
  const records = order === undefined ? data.records : order.map((index) => data.records[index]!);
  const { tokens, lossMask, chatFormat } = await tokenizeRecords(parent.path, records, {
    ...(order === undefined ? {} : { recordNumbers: order.map((index) => index + 1) }),
    ...(parameters.packing === false ? { windowSize: parameters.contextSize } : {}),
    lossOn: parameters.lossOn ?? "all",
  });
  const stride = parameters.stride ?? Math.floor(parameters.contextSize / 2);
  const windows = windowCount(tokens.length, parameters.contextSize, stride);
  const trainWindows = Math.max(1, Math.floor(windows * (1 - parameters.validationSplit)));
  if (windows < 1 || (parameters.validationSplit > 0 && windows - trainWindows < 1)) {
    const needed = parameters.contextSize + stride * (parameters.validationSplit > 0 ? 2 : 1) + 1;
    throw new InvalidRequestError(
      `The data set is too small: ${data.records.length} records make ${tokens.length} tokens, ${windows} windows of ${parameters.contextSize}; ` +
        `at least ${needed} tokens are needed${parameters.validationSplit > 0 ? " to train and validate" : ""} — add data, lower --ctx or set --val-split 0`,
      { param: "data" },
    );
  }
  if (lossMask !== null) {
    // Windows without an answer token are skipped by the trainer: both sets must keep one.
    const answers = answerTokensPerWindow(lossMask, parameters.contextSize, stride, windows);
    const trained = answers.subarray(0, trainWindows).filter((count) => count > 0).length;
    const validated = answers.subarray(trainWindows).filter((count) => count > 0).length;
    if (trained < 1 || (parameters.validationSplit > 0 && validated < 1)) {
      throw new InvalidRequestError(
        `With the loss on answers, ${trained} training and ${validated} validation windows hold an assistant token; each set needs one — add data, set --val-split 0 or --loss-on all`,
        { param: "data" },
      );
    }
  }
  const job = await jobs.create(
    "finetune",
    { digest: parent.model.digest, ref: request.model },
    {
      ...parameters,
      data: request.data,
      dataDigest: data.digest,
      records: data.records.length,
      tokens: tokens.length,
      windows,
      chatFormat,
      ...(request.name === undefined ? {} : { name: request.name }),
    },
  );
  try {
    await writeFile(join(jobs.directoryOf(job.id), "tokens.bin"), Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength));
    if (lossMask !== null) await writeFile(join(jobs.directoryOf(job.id), LOSS_MASK_FILE), lossMask);
  } catch (error) {
    await jobs.remove(job.id);
    throw error;
  }
  return job;
}

/** The job's loss mask beside its tokens: one byte per token, 1 where the loss counts it. */
const LOSS_MASK_FILE = "loss-mask.bin";

/** Options of {@link runFinetuneJob}. */
export interface RunFinetuneOptions {
  /** Aborting kills the worker; the job becomes `cancelled`, its last checkpoint kept for resume. */
  signal?: AbortSignal;
  /** Every worker event, after the job record is updated. */
  onEvent?: (event: TrainEvent, job: JobRecord) => void;
  /** @internal The job module (tests substitute one that crashes). @default finetune-worker.js */
  jobModule?: URL;
  /**
   * Write the fine-tuned model here instead of importing it (a rebuild from a recipe imports it
   * itself); the job's result records its digest.
   */
  output?: string;
  /**
   * Checkpoint mid-epoch this often (milliseconds), so an interrupted long epoch resumes near
   * where it stopped rather than from its start; 0 checkpoints after each epoch only.
   * @default 600000 (10 minutes)
   */
  checkpointIntervalMs?: number;
}

/** How often a running fine-tune checkpoints mid-epoch unless told otherwise. */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 10 * 60_000;

/** How often a running job's record is saved while only steps happen. */
const PROGRESS_SAVE_INTERVAL_MS = 2000;

/** Steps kept in a job record and a fork's card; longer curves are thinned evenly. */
const MAX_RECORDED_STEPS = 2000;

/**
 * Runs (or resumes) a prepared fine-tune job: a worker process trains from the parent — or from
 * the job's checkpoint of its last finished epoch — writing a checkpoint after each epoch; the
 * result is repackaged under the parent's metadata and imported as a `finetune` fork with its
 * recipe (parent and data digests, hyperparameters) and training curve. Resuming restarts the
 * optimizer's moment estimates (llama.cpp does not save them), so a resumed run is not
 * bit-identical to an uninterrupted one.
 *
 * A failure or cancel leaves no model in the store and no partial file; the job records why.
 */
export async function runFinetuneJob(store: ModelStore, jobs: JobStore, id: string, options: RunFinetuneOptions = {}): Promise<JobRecord> {
  const job = await jobs.get(id);
  if (job.kind !== "finetune") throw new InvalidRequestError(`${id} is a ${job.kind} job, not a fine-tune`, { param: "job" });
  if (job.status === "succeeded") throw new InvalidRequestError(`${id} has already finished: it made ${job.result?.digest}`, { param: "job" });
  // A job left "running" by a process that has died (a killed CLI, a session that ended) is
  // resumed like an interrupted one; one whose owner is alive, or is this process, is refused.
  const stale = job.pid !== undefined && job.pid !== process.pid && !ownedByAnotherLiveProcess(job);
  if (job.status === "running" && !stale) throw new InvalidRequestError(`${id} is already running (process ${job.pid ?? "unknown"})`, { param: "job" });
  const parameters = job.parameters as unknown as FinetuneParameters & { dataDigest: string; name?: string };
  const directory = jobs.directoryOf(id);
  const parent = await store.show(job.source.digest);
  const checkpoint = join(directory, "checkpoint.gguf");
  const resumeFrom = job.checkpointEpoch !== undefined && (await exists(checkpoint)) ? job.checkpointEpoch : undefined;
  const converted = join(directory, "parent-f32.gguf");
  const trained = join(directory, "trained.gguf");
  // A mid-epoch checkpoint resumes inside its epoch; an epoch's own checkpoint at the next one.
  const midEpoch = resumeFrom !== undefined && job.checkpointStep !== undefined;
  const startEpoch = resumeFrom === undefined ? 0 : midEpoch ? resumeFrom : resumeFrom + 1;
  const startStep = midEpoch ? job.checkpointStep! : 0;
  // A LoRA run trains on the parent as it is (in its own type) and checkpoints the adapter only.
  const lora = parameters.lora;
  const workerArguments: FinetuneWorkerArguments = {
    model: lora !== undefined ? parent.path : resumeFrom !== undefined ? checkpoint : parent.model.quantization === "F32" ? parent.path : converted,
    ...(lora === undefined && resumeFrom === undefined && parent.model.quantization !== "F32" ? { convertFrom: parent.path } : {}),
    ...(lora === undefined ? {} : { lora, baseDigest: parent.model.digest, ...(resumeFrom === undefined ? {} : { adapterCheckpoint: checkpoint }) }),
    output: trained,
    tokensFile: join(directory, "tokens.bin"),
    contextSize: parameters.contextSize,
    epochs: parameters.epochs,
    startEpoch,
    ...(startStep > 0 ? { startStep } : {}),
    learningRate: parameters.learningRate,
    learningRateMin: parameters.learningRateMin,
    weightDecay: parameters.weightDecay,
    validationSplit: parameters.validationSplit,
    threads: parameters.threads,
    trainer: parameters.trainer ?? "llama.cpp",
    ...(parameters.accumulate === undefined ? {} : { accumulate: parameters.accumulate }),
    ...(parameters.lossOn === undefined ? {} : { lossOn: parameters.lossOn }),
    ...(await exists(join(directory, LOSS_MASK_FILE)) ? { lossMaskFile: join(directory, LOSS_MASK_FILE) } : {}),
    ...(parameters.stride === undefined ? {} : { stride: parameters.stride }),
    ...(parameters.warmupSteps === undefined ? {} : { warmupSteps: parameters.warmupSteps }),
    checkpoint,
    checkpointIntervalMs: options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
  };
  const argumentsFile = join(directory, "worker.json");
  await writeFile(argumentsFile, JSON.stringify(workerArguments));

  job.status = "running";
  delete job.error;
  job.epochs = (job.epochs ?? []).filter((record) => record.epoch < startEpoch);
  job.steps = (job.steps ?? []).filter((record) => record.epoch < startEpoch || (record.epoch === startEpoch && !record.validation && record.step <= startStep));
  job.progress = {
    fraction: startEpoch / parameters.epochs,
    message: resumeFrom === undefined ? "starting" : midEpoch ? `resuming epoch ${startEpoch + 1} at step ${startStep + 1}` : `resuming after epoch ${resumeFrom + 1}`,
  };
  await jobs.save(job);

  let stepsPerEpoch = 1;
  let saving = Promise.resolve();
  let lastSaved = Date.now();
  const onEvent = (event: TrainEvent): void => {
    switch (event.event) {
      case "ready":
        stepsPerEpoch = event.stepsPerEpoch + event.validationWindows;
        job.progress = { fraction: startEpoch / parameters.epochs, message: `${event.tokens} tokens, ${event.trainWindows} training and ${event.validationWindows} validation windows` };
        break;
      case "step": {
        job.steps!.push({ epoch: event.epoch, step: event.step, loss: event.loss, validation: event.validation });
        const done = event.epoch + (event.validation ? event.step + (stepsPerEpoch - event.steps) : event.step) / stepsPerEpoch;
        job.progress = { fraction: Math.min(1, done / parameters.epochs), message: `epoch ${event.epoch + 1}/${parameters.epochs}, ${event.validation ? "validation" : "step"} ${event.step}/${event.steps}, loss ${event.meanLoss.toFixed(4)}` };
        break;
      }
      case "epoch": {
        const record: EpochRecord = {
          epoch: event.epoch,
          trainLoss: event.trainLoss,
          validationLoss: event.validationLoss,
          learningRate: event.learningRate,
          tokensPerSecond: event.tokensPerSecond,
          durationMs: event.durationMs,
        };
        job.epochs!.push(record);
        break;
      }
      case "checkpoint":
        job.checkpointEpoch = event.epoch;
        if (event.step === undefined) delete job.checkpointStep;
        else job.checkpointStep = event.step;
        break;
      case "saved":
        job.progress = { fraction: 1, message: "packaging the model" };
        break;
    }
    // Steps are frequent: the record is saved on every other event and at most every
    // PROGRESS_SAVE_INTERVAL_MS on steps, so `grove jobs` (another process) sees a long epoch move.
    const now = Date.now();
    if (event.event !== "step" || now - lastSaved >= PROGRESS_SAVE_INTERVAL_MS) {
      lastSaved = now;
      saving = saving.then(() => jobs.save(job));
    }
    options.onEvent?.(event, job);
  };

  try {
    await runWorker(options.jobModule ?? JOB, argumentsFile, onEvent, options.signal);
    await saving;
    if (options.output !== undefined) {
      let digest: Digest;
      if (lora === undefined) {
        const written = await repackageTrainedModel(parent.path, trained, options.output);
        job.untrainedTensors = written.untrainedTensors;
        digest = written.digest;
      } else {
        await copyFile(trained, options.output);
        digest = await digestOfFile(options.output);
      }
      job.status = "succeeded";
      job.result = { digest };
      job.progress = { fraction: 1, message: "done" };
      await cleanWorkingFiles(directory, true);
      job.steps = thin(job.steps!);
      await jobs.save(job);
      return job;
    }
    const output = await store.blobs.createTempPath();
    try {
      // A LoRA run's output is already the adapter file: it is imported as it is.
      if (lora === undefined) job.untrainedTensors = (await repackageTrainedModel(parent.path, trained, output)).untrainedTensors;
      else await rename(trained, output);
      const recipe: Recipe = {
        tool: (parameters.trainer ?? "llama.cpp") === "ggml" ? GGML_FINETUNE_TOOL : FINETUNE_TOOL,
        toolVersion: quantizerVersion(),
        parameters: recipeParameters(parameters),
        inputs: [parent.model.digest, parameters.dataDigest as Recipe["inputs"][number]],
      };
      const result = await store.importFile(output, {
        ...(parameters.name === undefined ? {} : { name: parameters.name }),
        base: parent.model.digest,
        relation: lora === undefined ? "finetune" : "adapter",
        recipe,
        mode: "move",
        card: { training: trainingCard(job) },
      });
      job.status = "succeeded";
      job.result = { digest: result.model.digest, ...(result.name === undefined ? {} : { name: result.name }) };
      job.progress = { fraction: 1, message: "done" };
    } finally {
      await rm(output, { force: true });
    }
    await cleanWorkingFiles(directory, true);
  } catch (error) {
    await saving.catch(() => undefined);
    job.status = error instanceof AbortedError ? "cancelled" : "failed";
    job.error = (error as Error).message;
    job.progress = { ...job.progress, message: job.status === "cancelled" ? "cancelled" : `failed: ${job.error}` };
    await cleanWorkingFiles(directory, false);
    await jobs.save(job);
    throw error;
  }
  job.steps = thin(job.steps!);
  await jobs.save(job);
  return job;
}

/** The recipe parameters of a fine-tune, for the rebuilder's check. */
export const FINETUNE_RECIPE_PARAMETERS = ["epochs", "learningRate", "learningRateMin", "weightDecay", "contextSize", "validationSplit", "stride", "warmupSteps", "packing", "accumulate", "lossOn", "lora", "shuffleSeed", "threads", "optimizer"] as const;

/** The recipe's parameters: what changes the result (not the data path or the name). */
function recipeParameters(parameters: FinetuneParameters): Record<string, unknown> {
  const { epochs, learningRate, learningRateMin, weightDecay, contextSize, validationSplit, stride, warmupSteps, packing, accumulate, lossOn, lora, shuffleSeed, threads, optimizer } = parameters;
  return {
    epochs,
    learningRate,
    learningRateMin,
    weightDecay,
    contextSize,
    validationSplit,
    ...(stride === undefined ? {} : { stride }),
    ...(warmupSteps === undefined ? {} : { warmupSteps }),
    ...(packing === false ? { packing } : {}),
    ...(accumulate === undefined ? {} : { accumulate }),
    // Only `answers` is written: a recipe without it trained on every token, as before there was a choice.
    ...(lossOn === "answers" ? { lossOn } : {}),
    ...(lora === undefined ? {} : { lora: { ...lora, targets: [...lora.targets] } }),
    // Absent: the records trained in the file's order (recipes made before there was a shuffle).
    ...(shuffleSeed === undefined ? {} : { shuffleSeed }),
    threads,
    optimizer,
  };
}

/** The training curve stored in the fork's card. */
function trainingCard(job: JobRecord): Record<string, unknown> {
  const parameters = job.parameters;
  return {
    job: job.id,
    dataDigest: parameters.dataDigest,
    records: parameters.records,
    tokens: parameters.tokens,
    epochs: job.epochs,
    ...(job.untrainedTensors === undefined || job.untrainedTensors.length === 0 ? {} : { untrainedTensors: job.untrainedTensors }),
    steps: thin(job.steps ?? []).map((step) => ({ epoch: step.epoch, step: step.step, loss: Number(step.loss.toFixed(5)), ...(step.validation ? { validation: true } : {}) })),
  };
}

function thin<T>(items: readonly T[]): T[] {
  if (items.length <= MAX_RECORDED_STEPS) return [...items];
  const every = items.length / MAX_RECORDED_STEPS;
  return Array.from({ length: MAX_RECORDED_STEPS }, (_, index) => items[Math.floor(index * every)]!);
}

/** Removes what a finished job no longer needs; a failed one keeps its tokens and checkpoint for resume. */
async function cleanWorkingFiles(directory: string, finished: boolean): Promise<void> {
  const names = ["trained.gguf", "trained.gguf.partial", "checkpoint.gguf.partial", "parent-f32.gguf", "worker.json"];
  if (finished) names.push("tokens.bin", LOSS_MASK_FILE, "checkpoint.gguf");
  await Promise.all(names.map((name) => rm(join(directory, name), { force: true })));
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function runWorker(module: URL, argumentsFile: string, onEvent: (event: TrainEvent) => void, signal: AbortSignal | undefined): Promise<void> {
  const args = JSON.parse(await readFile(argumentsFile, "utf8")) as unknown;
  const outcome = await runNativeJob({
    module,
    args,
    what: "Fine-tuning",
    ...(signal === undefined ? {} : { signal }),
    onEvent: (event) => {
      if (event.event !== "converted") onEvent(event as unknown as TrainEvent);
    },
  });
  if (!outcome.ok) throw new EngineError(`Fine-tuning failed: ${outcome.failure.reason}`);
}

// `grove build` of a fine-tune recipe: the same parent, data and parameters through a new job,
// on the trainer the recipe's tool names.
for (const [tool, trainer] of [[FINETUNE_TOOL, "llama.cpp"], [GGML_FINETUNE_TOOL, "ggml"]] as const) registerRebuilder(tool, {
  version: quantizerVersion,
  async rebuild(store, recipe, context) {
    const parameters = recipe.parameters;
    const unknown = Object.keys(parameters).filter((key) => !(FINETUNE_RECIPE_PARAMETERS as readonly string[]).includes(key));
    if (unknown.length > 0) {
      throw new InvalidRequestError(`The fine-tune rebuilder does not know the parameter '${unknown[0]}' (it knows: ${FINETUNE_RECIPE_PARAMETERS.join(", ")})`, { param: `parameters.${unknown[0]}` });
    }
    if (parameters["optimizer"] !== undefined && parameters["optimizer"] !== "adamw") throw new InvalidRequestError(`Unknown optimizer '${String(parameters["optimizer"])}'`, { param: "parameters.optimizer" });
    const [parent] = [...context.models.keys()];
    const [data] = [...context.data.values()];
    if (context.models.size !== 1 || context.data.size !== 1 || parent === undefined || data === undefined) {
      throw new InvalidRequestError("A fine-tune recipe has one model input and one data input", { param: "inputs" });
    }
    const number = (key: string): number | undefined => {
      const value = parameters[key];
      if (value === undefined) return undefined;
      if (typeof value !== "number") throw new InvalidRequestError(`Invalid recipe: field 'parameters.${key}': expected a number`, { param: `parameters.${key}` });
      return value;
    };
    const jobs = new JobStore(store.home);
    const request: FinetuneRequest = { model: parent, data, trainer };
    for (const [key, field] of [["epochs", "epochs"], ["learningRate", "learningRate"], ["learningRateMin", "learningRateMin"], ["weightDecay", "weightDecay"], ["contextSize", "contextSize"], ["validationSplit", "validationSplit"], ["stride", "stride"], ["warmupSteps", "warmupSteps"], ["accumulate", "accumulate"], ["threads", "threads"]] as const) {
      const value = number(key);
      if (value !== undefined) request[field] = value;
    }
    const lossOn = parameters["lossOn"];
    if (lossOn !== undefined && lossOn !== "answers") throw new InvalidRequestError("Invalid recipe: field 'parameters.lossOn': expected \"answers\" or absent", { param: "parameters.lossOn" });
    request.lossOn = lossOn ?? "all";
    if (parameters["packing"] !== undefined) {
      if (parameters["packing"] !== false) throw new InvalidRequestError("Invalid recipe: field 'parameters.packing': expected false or absent", { param: "parameters.packing" });
      request.packing = false;
    }
    if (parameters["lora"] !== undefined) request.lora = recipeLora(parameters["lora"]);
    request.shuffle = number("shuffleSeed") ?? false;
    if (context.threads !== undefined) request.threads = context.threads;
    const job = await createFinetuneJob(store, jobs, request);
    await runFinetuneJob(store, jobs, job.id, { output: context.output, ...(context.signal === undefined ? {} : { signal: context.signal }) });
  },
});

/** A recipe's `lora` parameters, checked field by field (their values are checked again by resolveLoraSettings). */
function recipeLora(value: unknown): NonNullable<FinetuneRequest["lora"]> {
  const fail = (field: string, expected: string): never => {
    throw new InvalidRequestError(`Invalid recipe: field 'parameters.lora${field}': expected ${expected}`, { param: `parameters.lora${field}` });
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) return fail("", "an object");
  const record = value as Record<string, unknown>;
  for (const key of ["rank", "alpha", "dropout"]) if (typeof record[key] !== "number") fail(`.${key}`, "a number");
  if (!Array.isArray(record["targets"]) || !record["targets"].every((target) => typeof target === "string")) fail(".targets", "a list of target names");
  return { rank: record["rank"] as number, alpha: record["alpha"] as number, dropout: record["dropout"] as number, targets: record["targets"] as string[] };
}
