import type { TrainEvent } from "../finetune/libllama-train.js";
import type { JobEventInput } from "./job-event-log.js";
import type { JobRecord } from "./job-store.js";

/**
 * A fine-tune worker's event as a job event: training steps and epochs as `metrics` (step
 * counted over all epochs, 1-based epoch, losses), the rest as messages. Validation steps are
 * left to the epoch summary, which carries the validation loss.
 */
export function describeTrainEvent(event: TrainEvent, job: JobRecord, stepsPerEpoch: number): JobEventInput | undefined {
  const epochs = Number(job.parameters.epochs);
  const fraction = Number(job.progress.fraction.toFixed(4));
  switch (event.event) {
    case "ready":
      return {
        level: "info",
        type: "message",
        message: `Training on ${event.tokens} tokens: ${event.trainWindows} training and ${event.validationWindows} validation windows, ${event.stepsPerEpoch} steps per epoch`,
      };
    case "step":
      if (event.validation) return undefined;
      return {
        level: "info",
        type: "metrics",
        message: `Step ${event.epoch * event.steps + event.step}/${event.steps * epochs}: training loss=${event.loss.toFixed(4)}`,
        data: { step: event.epoch * event.steps + event.step, epoch: event.epoch + 1, train_loss: event.loss, fraction },
      };
    case "epoch":
      return {
        level: "info",
        type: "metrics",
        message: `Epoch ${event.epoch + 1}/${epochs}: training loss=${event.trainLoss.toFixed(4)}${event.validationLoss === null ? "" : `, validation loss=${event.validationLoss.toFixed(4)}`}`,
        data: {
          step: (event.epoch + 1) * stepsPerEpoch,
          epoch: event.epoch + 1,
          train_loss: event.trainLoss,
          valid_loss: event.validationLoss,
          learning_rate: event.learningRate,
          fraction,
        },
      };
    case "checkpoint":
      return {
        level: "info",
        type: "message",
        message: event.step === undefined ? `Checkpoint saved after epoch ${event.epoch + 1}` : `Checkpoint saved in epoch ${event.epoch + 1} after step ${event.step}`,
      };
    case "saved":
      return { level: "info", type: "message", message: "Training done; packaging the model" };
  }
}
