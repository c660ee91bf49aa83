import type { Command } from "commander";
import { AbortedError, InvalidRequestError } from "../../core/errors.js";
import { createFinetuneJob, FINETUNE_DEFAULTS, runFinetuneJob, type FinetuneRequest, type Trainer } from "../../forge/finetune/finetune-job.js";
import { LORA_DEFAULTS } from "../../forge/finetune/lora.js";
import type { TrainEvent } from "../../forge/finetune/libllama-train.js";
import type { LossOn } from "../../forge/finetune/loss-mask.js";
import { summarizeTensorNames } from "../../forge/finetune/repackage.js";
import { JobStore, type JobRecord } from "../../forge/jobs/job-store.js";
import { progressBar } from "../progress.js";
import { formatBytes, renderTable, describeModel } from "../format.js";
import { HOME_FLAG, HOME_FLAG_HELP, withStore } from "../store-access.js";

interface FinetuneFlags {
  data?: string;
  epochs?: string;
  lr?: string;
  lrMin?: string;
  weightDecay?: string;
  ctx?: string;
  valSplit?: string;
  stride?: string;
  warmup?: string;
  packing?: boolean;
  trainer?: string;
  accumulate?: string;
  lossOn?: string;
  lora?: boolean;
  loraRank?: string;
  loraAlpha?: string;
  loraDropout?: string;
  loraTargets?: string;
  shuffle?: string | false;
  threads?: string;
  name?: string;
  resume?: string;
  home?: string;
  json?: boolean;
}

/** A number flag: undefined when absent. @throws InvalidRequestError naming the flag */
function numberFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (value.trim() === "" || !Number.isFinite(number)) throw new InvalidRequestError(`--${flag} must be a number, got '${value}'`, { param: flag });
  return number;
}

/**
 * Registers `grove finetune REF --data FILE.jsonl` (full fine-tuning with llama.cpp's optimizer
 * in a worker process, stored as a `finetune` fork with its recipe and training curve),
 * `grove finetune --resume JOB` and `grove jobs`.
 *
 * @example
 * grove finetune small --data notes.jsonl --epochs 4 --lr 5e-4 --name small:notes
 * grove finetune --resume job-3f2a9c01d4e5
 */
export function registerFinetuneCommand(program: Command): void {
  program
    .command("finetune")
    .description("fine-tune a model of the store on a JSONL data set (text or chat records) and store the result as a finetune fork (with --lora: an adapter fork)")
    .argument("[ref]", "name, digest or unique digest prefix of the model to fine-tune")
    .option("--data <file.jsonl>", 'training records: {"text": …} or {"messages": [{"role", "content"}, …]} per line')
    .option("--epochs <n>", `passes over the data (default ${FINETUNE_DEFAULTS.epochs})`)
    .option("--lr <rate>", `AdamW learning rate (default ${FINETUNE_DEFAULTS.learningRate})`)
    .option("--lr-min <rate>", "learning rate of the last epoch, linear decay (default: --lr, constant)")
    .option("--weight-decay <wd>", `AdamW weight decay (default ${FINETUNE_DEFAULTS.weightDecay})`)
    .option("--ctx <tokens>", `tokens per training window, a multiple of 256 (default ${FINETUNE_DEFAULTS.contextSize})`)
    .option("--val-split <share>", `share of windows held out for validation loss (default ${FINETUNE_DEFAULTS.validationSplit})`)
    .option("--stride <tokens>", "tokens between window starts (default: half of --ctx, as llama-finetune; --ctx for pretraining)")
    .option("--warmup <steps>", "schedule the rate per step: linear warm-up over this many steps, then cosine decay to --lr-min (default: linear per epoch)")
    .option("--no-packing", "give each record a window of its own, padded with EOS, so attention never reaches into the record before (default: records joined, as llama-finetune; costs a window per record)")
    .option("--trainer <ggml|llama.cpp>", "ggml: Grove's own graph (llama, qwen2, qwen3), which trains every tensor; llama.cpp: llama_opt_epoch as llama-finetune, which leaves token_embd, attn_k and attn_v as they were (default ggml)")
    .option("--accumulate <windows>", "windows whose gradients make one optimizer step: a larger batch (ggml trainer; default 1)")
    .option("--loss-on <answers|all>", "chat records: answers trains on the assistant turns only (the prompt and the template's framing are not labels); all trains on every token, as before. Text records train on every token (default answers; llama.cpp's trainer can only do all)")
    .option("--lora", "train a LoRA adapter on the frozen base, left in its own type (F32, F16 or quantized), and store it as an adapter fork (ggml trainer)")
    .option("--lora-rank <r>", `LoRA rank (default ${LORA_DEFAULTS.rank})`)
    .option("--lora-alpha <alpha>", `LoRA alpha: the adapter is scaled by alpha / rank (default ${LORA_DEFAULTS.alpha})`)
    .option("--lora-dropout <p>", `dropout on the adapter's input while training (default ${LORA_DEFAULTS.dropout})`)
    .option("--lora-targets <list>", `projections to adapt, comma-separated (default ${LORA_DEFAULTS.targets.join(",")})`)
    .option("--shuffle <seed>", `seed of the shuffle of the records before they are joined into windows: data in an order (sorted by label, cycling through classes) would teach the order (default ${FINETUNE_DEFAULTS.shuffleSeed})`)
    .option("--no-shuffle", "keep the data file's order, as llama-finetune does")
    .option("--threads <n>", "training threads (default: the number of CPU cores)")
    .option("--name <family:tag>", "name to point at the fine-tuned model")
    .option("--resume <job>", "resume a cancelled or failed fine-tune job from its last finished epoch")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option("--json", "print the finished job as JSON")
    .action(async (ref: string | undefined, flags: FinetuneFlags) => {
      const job = await withStore(flags.home, async (store) => {
        const jobs = new JobStore(store.home);
        let id: string;
        if (flags.resume !== undefined) {
          if (ref !== undefined || flags.data !== undefined) throw new InvalidRequestError("--resume takes no model or --data: the job has them", { param: "resume" });
          id = (await jobs.get(flags.resume)).id;
        } else {
          if (ref === undefined) throw new InvalidRequestError("Name the model to fine-tune, or --resume a job", { param: "ref" });
          if (flags.data === undefined) throw new InvalidRequestError("--data FILE.jsonl is required", { param: "data" });
          const created = await createFinetuneJob(store, jobs, {
            model: ref,
            data: flags.data,
            ...defined({
              epochs: numberFlag(flags.epochs, "epochs"),
              learningRate: numberFlag(flags.lr, "lr"),
              learningRateMin: numberFlag(flags.lrMin, "lr-min"),
              weightDecay: numberFlag(flags.weightDecay, "weight-decay"),
              contextSize: numberFlag(flags.ctx, "ctx"),
              validationSplit: numberFlag(flags.valSplit, "val-split"),
              stride: numberFlag(flags.stride, "stride"),
              warmupSteps: numberFlag(flags.warmup, "warmup"),
              packing: flags.packing === false ? false : undefined,
              trainer: flags.trainer as Trainer | undefined,
              accumulate: numberFlag(flags.accumulate, "accumulate"),
              lossOn: flags.lossOn as LossOn | undefined,
              lora: loraFlags(flags),
              shuffle: flags.shuffle === false ? (false as const) : numberFlag(flags.shuffle, "shuffle"),
              threads: numberFlag(flags.threads, "threads"),
              name: flags.name,
            }),
          });
          id = created.id;
        }
        process.stderr.write(`job ${id}\n`);
        const controller = new AbortController();
        const onSignal = (): void => controller.abort();
        process.once("SIGINT", onSignal);
        const view = trainingView();
        try {
          return await runFinetuneJob(store, jobs, id, { signal: controller.signal, onEvent: view.onEvent });
        } catch (error) {
          view.stop();
          if (error instanceof AbortedError) throw new AbortedError(`Fine-tuning cancelled; resume it with: grove finetune --resume ${id}`);
          process.stderr.write(`job ${id} failed; after fixing the cause: grove finetune --resume ${id}\n`);
          throw error;
        } finally {
          view.stop();
          process.off("SIGINT", onSignal);
        }
      });
      if (flags.json) return void process.stdout.write(`${JSON.stringify(job)}\n`);
      const fork = await withStore(flags.home, (store) => store.show(job.result!.digest));
      process.stdout.write(formatFinetuneResult(job, fork.names, fork.model.size));
    });

  const jobsCommand = program.command("jobs").description("list forge jobs (fine-tunes): status, progress, result");
  jobsCommand
    .command("ls", { isDefault: true })
    .description("list jobs, newest first")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option("--json", "print the jobs as JSON")
    .action(async (flags: { home?: string; json?: boolean }) => {
      const list = await withStore(flags.home, async (store) => new JobStore(store.home).list());
      if (flags.json) return void process.stdout.write(`${JSON.stringify(list)}\n`);
      const rows = list.map((job) => [job.id, job.kind, job.status, `${Math.round(job.progress.fraction * 100)}%`, job.result?.name ?? job.result?.digest.slice(0, 19) ?? job.error ?? job.progress.message, job.createdAt]);
      process.stdout.write(`${renderTable(["JOB", "KIND", "STATUS", "DONE", "RESULT", "CREATED"], rows)}\n`);
    });
  jobsCommand
    .command("show")
    .description("one job as JSON: parameters, progress, loss per epoch and step, result")
    .argument("<job>", "job id")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .action(async (id: string, flags: { home?: string }) => {
      const job = await withStore(flags.home, async (store) => new JobStore(store.home).get(id));
      process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
    });
  jobsCommand
    .command("rm")
    .description("remove a job that is not running, with its working files (checkpoint, tokens)")
    .argument("<job>", "job id")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .action(async (id: string, flags: { home?: string }) => {
      await withStore(flags.home, async (store) => {
        const jobs = new JobStore(store.home);
        const job = await jobs.get(id);
        if (job.status === "running") throw new InvalidRequestError(`${id} is running; stop it first`, { param: "job" });
        await jobs.remove(id);
      });
      process.stdout.write(`removed ${id}\n`);
    });
}

/** The LoRA settings `--lora` asks for; undefined without it. @throws InvalidRequestError for a --lora-* flag without --lora */
function loraFlags(flags: FinetuneFlags): FinetuneRequest["lora"] {
  if (flags.lora !== true) {
    const stray = (["loraRank", "loraAlpha", "loraDropout", "loraTargets"] as const).find((key) => flags[key] !== undefined);
    if (stray !== undefined) {
      const flag = `lora-${stray.slice(4).toLowerCase()}`;
      throw new InvalidRequestError(`--${flag} needs --lora`, { param: flag });
    }
    return undefined;
  }
  return defined({
    rank: numberFlag(flags.loraRank, "lora-rank"),
    alpha: numberFlag(flags.loraAlpha, "lora-alpha"),
    dropout: numberFlag(flags.loraDropout, "lora-dropout"),
    targets: flags.loraTargets,
  });
}

function defined<T extends Record<string, unknown>>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** Step progress on a terminal, one line per epoch otherwise. */
function trainingView(): { onEvent: (event: TrainEvent, job: JobRecord) => void; stop: () => void } {
  const bar = progressBar("training", { unit: "percent" });
  let epochLine = "";
  return {
    onEvent(event, job) {
      if (event.event === "epoch") {
        epochLine = `epoch ${event.epoch + 1}: train loss ${event.trainLoss.toFixed(4)}${event.validationLoss === null ? "" : `, validation loss ${event.validationLoss.toFixed(4)}`}, ${Math.round(event.tokensPerSecond)} tokens/s`;
        if (!bar.drawn) process.stderr.write(`${epochLine}\n`);
      }
      bar.update(job.progress.fraction, 1, epochLine === "" ? job.progress.message : `${job.progress.message} | ${epochLine}`);
    },
    stop: () => bar.stop(),
  };
}

/** `fine-tuned  sha256:…  small:notes  5.1 MB` with the epoch table. */
export function formatFinetuneResult(job: JobRecord, names: string[], size: number): string {
  const lines = [`fine-tuned  ${job.result!.digest}${names.length > 0 ? `  ${names.join(", ")}` : ""}  ${formatBytes(size)}`];
  const lora = (job.parameters as { lora?: { rank: number; alpha: number; targets: string[] } }).lora;
  if (lora === undefined) lines.push(`lineage     finetune from ${describeModel(job.source.digest as never, [job.source.ref])}`);
  else lines.push(`lineage     adapter of ${describeModel(job.source.digest as never, [job.source.ref])} (LoRA rank ${lora.rank}, alpha ${lora.alpha}, ${lora.targets.join(",")})`);
  if (job.untrainedTensors !== undefined && job.untrainedTensors.length > 0) {
    // llama.cpp's trainer cannot update some tensors (token_embd; attn_k/attn_v through the KV cache).
    lines.push(`untrained   ${job.untrainedTensors.length} tensors kept the parent's values: ${summarizeTensorNames(job.untrainedTensors)}`);
  }
  const rows = (job.epochs ?? []).map((epoch) => [
    String(epoch.epoch + 1),
    epoch.trainLoss.toFixed(4),
    epoch.validationLoss === null ? "-" : epoch.validationLoss.toFixed(4),
    epoch.learningRate.toExponential(2),
    String(Math.round(epoch.tokensPerSecond)),
  ]);
  return `${lines.join("\n")}\n${renderTable(["EPOCH", "TRAIN LOSS", "VAL LOSS", "LR", "TOKENS/S"], rows, [true, true, true, true, true])}\n`;
}
