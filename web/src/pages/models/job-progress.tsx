import { useState } from "preact/hooks";
import { modelLabel, modelRef } from "../../format.js";
import { cancelJob, cardHref, isFinished, type JobRecord } from "./models-api.js";

/**
 * A forge job as it runs: a progress bar, its status and message, a Cancel button while it
 * runs, and a link to the model it made once it succeeded. Announced politely as it changes.
 */
export function JobProgress({ job, lastEvent, error }: { job: JobRecord; lastEvent: string | undefined; error: string | undefined }) {
  const [cancelError, setCancelError] = useState<string>();
  const [cancelling, setCancelling] = useState(false);
  const finished = isFinished(job);
  const cancel = async () => {
    setCancelling(true);
    try {
      await cancelJob(job.id);
    } catch (caught) {
      setCancelError((caught as Error).message);
    } finally {
      setCancelling(false);
    }
  };
  const percent = Math.round(job.progress.fraction * 100);
  return (
    <section class="panel job-progress" aria-label={`Job ${job.id}`}>
      <p class="job-title"><strong>{job.kind}</strong> of {job.source.ref} · <span class="muted">{job.id}</span></p>
      <progress max={1} value={job.progress.fraction} aria-label={`Progress of ${job.id}`}>{percent}%</progress>
      <p aria-live="polite">
        Status: <strong class={`status ${job.status}`}>{job.status}</strong> · {percent}% · {job.progress.message}
        {lastEvent && <span class="muted"> — {lastEvent}</span>}
      </p>
      {job.status === "failed" && job.error && <p role="alert" class="error">{job.error}</p>}
      {job.status === "succeeded" && job.result && (
        <p>New model: <a href={cardHref(modelRef(job.result.name ? [job.result.name] : [], job.result.digest))}>{modelLabel(job.result.name ? [job.result.name] : [], job.result.digest)}</a></p>
      )}
      {!finished && <button type="button" class="danger" onClick={cancel} disabled={cancelling}>Cancel</button>}
      {(error ?? cancelError) && <p role="alert" class="error">{error ?? cancelError}</p>}
    </section>
  );
}
