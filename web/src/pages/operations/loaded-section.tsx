import { formatBytes, formatCount, formatSeconds, shortDigest } from "../../format.js";
import type { LoadedAnswer } from "./operations-api.js";
import { useJson } from "./use-json.js";

/** How often the loaded models are fetched again while the page is visible. */
const REFRESH_MS = 3000;

export interface LoadedSectionProps {
  readonly modelLabel: (digest: string) => string;
}

/** The models in memory now, their slots and memory estimates, refreshed every few seconds. */
export function LoadedSection({ modelLabel }: LoadedSectionProps) {
  const loaded = useJson<LoadedAnswer>("/api/loaded", REFRESH_MS);
  const report = loaded.data;
  return (
    <section aria-labelledby="loaded-heading">
      <h2 id="loaded-heading">Loaded models</h2>
      {loaded.error && <p class="error" role="alert">{loaded.error}</p>}
      {report && report.budgetBytes > 0 && (
        <p class="muted">Memory: {formatBytes(report.usedBytes ?? 0)} of a {formatBytes(report.budgetBytes)} budget (estimates).</p>
      )}
      {report?.models.length === 0 && <p class="muted">No model is loaded; the first request for one loads it.</p>}
      {report && report.models.length > 0 && (
        <div class="table-wrap">
          <table class="data loaded">
            <caption class="visually-hidden">Loaded models, refreshed every {REFRESH_MS / 1000} seconds</caption>
            <thead>
              <tr>
                <th scope="col">Model</th><th scope="col">Digest</th><th scope="col">State</th><th scope="col" class="num">Context</th>
                <th scope="col" class="num">Slots busy</th><th scope="col" class="num">Queued</th><th scope="col" class="num">Memory</th>
                <th scope="col" class="num">Idle</th>
              </tr>
            </thead>
            <tbody>
              {report.models.map((model) => (
                <tr key={model.digest}>
                  <th scope="row">{modelLabel(model.digest)}</th>
                  <td><code>{shortDigest(model.digest)}</code></td>
                  <td>{model.state}</td>
                  <td class="num">{model.contextSize === null ? "—" : formatCount(model.contextSize)}</td>
                  <td class="num">{model.slotsBusy}/{model.slotsTotal}</td>
                  <td class="num">{model.queued}</td>
                  <td class="num">{model.estimateBytes === null ? "—" : formatBytes(model.estimateBytes)}</td>
                  <td class="num">{model.idleSeconds === undefined ? "—" : formatSeconds(model.idleSeconds)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
