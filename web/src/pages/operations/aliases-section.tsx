import { formatDateTime } from "../../format.js";
import type { AliasesAnswer, AliasEvent, AliasView, HistoryAnswer } from "./operations-api.js";
import { useJson } from "./use-json.js";

export interface AliasesSectionProps {
  readonly modelLabel: (digest: string) => string;
}

/** The aliases with their targets and canary weights, and each one's history of changes. */
export function AliasesSection({ modelLabel }: AliasesSectionProps) {
  const aliases = useJson<AliasesAnswer>("/api/aliases");
  return (
    <section aria-labelledby="aliases-heading">
      <h2 id="aliases-heading">Aliases</h2>
      {aliases.error && <p class="error" role="alert">{aliases.error}</p>}
      {aliases.data?.aliases.length === 0 && <p class="muted">No aliases. Make one with <code>grove alias set NAME MODEL[=WEIGHT]…</code>.</p>}
      {aliases.data?.aliases.map((alias) => <AliasCard key={alias.name} alias={alias} modelLabel={modelLabel} />)}
    </section>
  );
}

interface AliasCardProps {
  readonly alias: AliasView;
  readonly modelLabel: (digest: string) => string;
}

function AliasCard({ alias, modelLabel }: AliasCardProps) {
  const history = useJson<HistoryAnswer>(`/api/aliases/${encodeURIComponent(alias.name)}/history`);
  const headingId = `alias-${alias.name.replace(/[^A-Za-z0-9_-]/g, "-")}`;
  return (
    <article class="panel alias" aria-labelledby={headingId}>
      <h3 id={headingId}>{alias.name}</h3>
      <div class="table-wrap">
        <table class="data">
          <caption class="visually-hidden">Targets of {alias.name}</caption>
          <thead><tr><th scope="col">Model</th><th scope="col" class="num">Weight</th><th scope="col" class="num">Share</th></tr></thead>
          <tbody>
            {alias.targets.map((target) => (
              <tr key={target.digest}>
                <th scope="row">{target.names[0] ?? modelLabel(target.digest)}</th>
                <td class="num">{target.weight}</td>
                <td class="num">{(target.share * 100).toFixed(1)}%</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h4>History</h4>
      {history.error && <p class="error" role="alert">{history.error}</p>}
      <ol class="history" reversed>
        {[...(history.data?.history ?? [])].reverse().map((event) => <HistoryEntry key={event.id} event={event} modelLabel={modelLabel} />)}
      </ol>
    </article>
  );
}

function targetsText(targets: AliasEvent["to"], modelLabel: (digest: string) => string): string {
  if (targets.length === 0) return "nothing";
  return targets.map((target) => (targets.length > 1 ? `${modelLabel(target.digest)} (${target.weight})` : modelLabel(target.digest))).join(", ");
}

interface HistoryEntryProps {
  readonly event: AliasEvent;
  readonly modelLabel: (digest: string) => string;
}

/** One change: when, what (from → to), the migration's verdict and scores, and why. */
function HistoryEntry({ event, modelLabel }: HistoryEntryProps) {
  return (
    <li class={`history-entry ${event.decision}`}>
      <p>
        <time dateTime={event.at}>{formatDateTime(event.at)}</time> · <strong>{event.action}</strong>{" "}
        {targetsText(event.from, modelLabel)} → {targetsText(event.to, modelLabel)} ·{" "}
        <span class="verdict">{event.decision}</span>
      </p>
      {event.reason && <p class="muted">{event.reason}</p>}
      {event.scores.length > 0 && (
        <ul class="scores">
          {event.scores.map((score) => (
            <li key={score.task}>
              {score.task} ({score.metric}): {formatScore(score.current)} → {formatScore(score.candidate)}
              {score.regression !== null &&
                (score.verdict === "within noise"
                  ? `, ${(Math.abs(score.regression) * 100).toFixed(1)}% ${score.regression > 0 ? "worse" : "better"} but within noise${typeof score.standardError === "number" ? ` (±${formatScore(score.standardError)})` : ""}: not a difference`
                  : `, ${(score.regression * 100).toFixed(1)}% ${score.regression > 0 ? "worse" : "better or equal"}${score.verdict === "improved" ? ", beyond noise" : score.verdict === "regressed" ? ", regressed" : ""}`)}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}

/** A score rounded as `grove alias history` prints it (`1313.97`, `0.4219`), never the raw float. */
export function formatScore(value: number | null): string {
  return value === null ? "no score" : Math.abs(value) >= 100 ? value.toFixed(2) : value.toPrecision(4);
}
