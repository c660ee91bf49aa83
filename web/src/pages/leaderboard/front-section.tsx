import { useEffect, useState } from "preact/hooks";
import { COST_AXES, FrontChart, frontLabel } from "./front-chart.js";
import { formatWithError } from "../../format.js";
import { loadFront, type Front, type FrontCost, type FrontModel } from "./leaderboard-api.js";

export interface FrontSectionProps {
  /** Quality tasks with results, the first one chosen at first. */
  qualityTasks: string[];
  /** Told each front once it arrives (null while loading or after an error), for the table's front filter. */
  onFront: (front: Front | null) => void;
}

/**
 * Quality versus cost: a quality task and a cost to weigh it against, the chart of the front the
 * server computes (`GET /api/front`), and the same in words — who is on the front, who dominates
 * whom, and who cannot be placed and why.
 */
export function FrontSection({ qualityTasks, onFront }: FrontSectionProps) {
  const [task, setTask] = useState(qualityTasks[0] ?? "");
  const [cost, setCost] = useState<FrontCost>("size");
  const [front, setFront] = useState<Front | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    const controller = new AbortController();
    setFront(null);
    setError("");
    onFront(null);
    loadFront(task, cost, controller.signal).then(
      (answer) => { setFront(answer); onFront(answer); },
      (failure: Error) => { if (!controller.signal.aborted) setError(failure.message); },
    );
    return () => controller.abort();
  }, [task, cost]);

  return (
    <section aria-labelledby="front-heading">
      <h2 id="front-heading">Quality versus cost</h2>
      <form class="inline" aria-label="Chart axes" onSubmit={(event) => event.preventDefault()}>
        <label>Quality (y axis)
          <select value={task} onChange={(event) => setTask(event.currentTarget.value)}>
            {qualityTasks.map((name) => <option key={name} value={name}>{name}</option>)}
          </select>
        </label>
        <label>Cost (x axis)
          <select value={cost} onChange={(event) => setCost(event.currentTarget.value as FrontCost)}>
            {COST_AXES.map((axis) => <option key={axis.cost} value={axis.cost}>{axis.label}</option>)}
          </select>
        </label>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {!error && front === null && <p class="muted">Loading the front…</p>}
      {front && <FrontView front={front} />}
    </section>
  );
}

function FrontView({ front }: { front: Front }) {
  const placed = front.front.length + front.dominated.length;
  return (
    <>
      {placed > 0 ? <FrontChart front={front} /> : <p>No model has both a score on {front.task} and this cost measured.</p>}
      <div class="front-text">
        <h3 id="on-front-heading">On the Pareto front</h3>
        <p class="muted">No other fork is at least as good on both axes and better on one. Best cost first.</p>
        <ul aria-labelledby="on-front-heading">
          {front.front.map((model) => <li key={model.digest}><ModelLink model={model} /> — {describeQuality(front, model)}</li>)}
        </ul>
        {front.dominated.length > 0 && (
          <>
            <h3 id="dominated-heading">Dominated</h3>
            <ul aria-labelledby="dominated-heading">
              {front.dominated.map((model) => (
                <li key={model.digest}>
                  <ModelLink model={model} /> — dominated by {model.dominatedBy.map((other) => `${frontLabel(other)}${other.qualityWithinNoise === true ? " (quality within noise)" : ""}`).join(", ")}
                </li>
              ))}
            </ul>
          </>
        )}
        {front.unplaced.length > 0 && (
          <>
            <h3 id="unplaced-heading">Not on the chart</h3>
            <ul aria-labelledby="unplaced-heading">
              {front.unplaced.map((model) => <li key={model.digest}><ModelLink model={model} /> — {model.reason}</li>)}
            </ul>
          </>
        )}
        {front.notes.map((note) => <p key={note} class="muted">{note}</p>)}
      </div>
    </>
  );
}

function describeQuality(front: Front, model: FrontModel): string {
  const axis = COST_AXES.find((candidate) => candidate.cost === front.cost.metric);
  return `${model.quantization}, ${front.quality.metric} ${formatWithError(model.quality, model.qualityError)}, ${axis?.label.toLowerCase() ?? front.cost.metric} ${axis ? axis.format(model.cost) : model.cost}`;
}

function ModelLink({ model }: { model: { names: string[]; digest: string } }) {
  return <a href={`/models/${encodeURIComponent(model.names[0] ?? model.digest)}`}>{frontLabel(model)}</a>;
}
