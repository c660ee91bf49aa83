import { formatDateTime, modelLabel, modelRef } from "../../format.js";
import { cardHref, type JobRecord } from "./models-api.js";

/** How many jobs the list shows, newest first. */
const SHOWN = 8;

/** Recent forge jobs as a table: kind, source, status, progress and what each made. */
export function RecentJobs({ jobs, caption }: { jobs: readonly JobRecord[]; caption: string }) {
  if (jobs.length === 0) return <p class="muted">No forge jobs yet.</p>;
  return (
    <div class="table-wrap">
      <table class="data">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr><th>Job</th><th>Kind</th><th>From</th><th>Status</th><th class="num">Progress</th><th>Started</th><th>Made</th></tr>
        </thead>
        <tbody>
          {jobs.slice(0, SHOWN).map((job) => (
            <tr key={job.id}>
              <td>{job.id}</td>
              <td>{job.kind}</td>
              <td><a href={cardHref(job.source.digest)}>{job.source.ref}</a></td>
              <td title={job.error}>{job.status}</td>
              <td class="num">{Math.round(job.progress.fraction * 100)}%</td>
              <td>{formatDateTime(job.createdAt)}</td>
              <td>{job.result ? <a href={cardHref(modelRef(job.result.name ? [job.result.name] : [], job.result.digest))}>{modelLabel(job.result.name ? [job.result.name] : [], job.result.digest)}</a> : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
