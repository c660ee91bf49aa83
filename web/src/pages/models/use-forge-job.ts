import { useEffect, useRef, useState } from "preact/hooks";
import { followJob, isFinished, type JobRecord } from "./models-api.js";

/** What {@link useForgeJob} answers. */
export interface ForgeJobState {
  /** The job being followed (or the last one), as its latest event left it. */
  job: JobRecord | undefined;
  /** The latest event's message, e.g. `Created tiny:q4 (8.50 bits/weight)`. */
  lastEvent: string | undefined;
  /** Why following the job failed (not why the job failed: that is `job.error`). */
  error: string | undefined;
  /** Starts following a job a POST just created. */
  follow(job: JobRecord): void;
}

/**
 * Follows one forge job's events live, replacing the previous one; calls `onFinished` once
 * the job stops (so the page can reload the tree) and stops listening when the page goes.
 */
export function useForgeJob(onFinished: (job: JobRecord) => void): ForgeJobState {
  const [job, setJob] = useState<JobRecord>();
  const [lastEvent, setLastEvent] = useState<string>();
  const [error, setError] = useState<string>();
  const controller = useRef<AbortController | undefined>(undefined);
  const finished = useRef(onFinished);
  finished.current = onFinished;
  useEffect(() => () => controller.current?.abort(), []);

  const follow = (started: JobRecord) => {
    controller.current?.abort();
    const current = (controller.current = new AbortController());
    setJob(started);
    setLastEvent(undefined);
    setError(undefined);
    let latest = started;
    followJob(started.id, (update) => {
      latest = update.job;
      setJob(update.job);
      if (update.event) setLastEvent(update.event.message);
    }, current.signal)
      .then(() => { if (isFinished(latest)) finished.current(latest); })
      .catch((caught: unknown) => { if (!current.signal.aborted) setError((caught as Error).message); });
  };
  return { job, lastEvent, error, follow };
}
