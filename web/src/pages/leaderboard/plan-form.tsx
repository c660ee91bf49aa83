import { useState } from "preact/hooks";
import { formatBytes, formatRate, formatWithError } from "../../format.js";
import { requestPlan, type PlanCandidate, type PlanLimits, type PlanResult } from "./leaderboard-api.js";

const NO_LIMITS: PlanLimits = { memory: "", ctx: "", slots: "", p50TokenMs: "", minTps: "", task: "" };

/**
 * The plan form: a deployment's limits (memory, context, slots, latency, throughput, the task to
 * rank by) sent to `GET /api/plan`; shows the pick, the others that fit, and for every fork left
 * out the server's one-line reason. The server checks the limits: its 400 message is shown as is.
 */
export function PlanForm({ qualityTasks }: { qualityTasks: string[] }) {
  const [limits, setLimits] = useState(NO_LIMITS);
  const [plan, setPlan] = useState<PlanResult | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const field = (name: keyof PlanLimits) => ({
    value: limits[name],
    onInput: (event: { currentTarget: HTMLInputElement | HTMLSelectElement }) => setLimits({ ...limits, [name]: event.currentTarget.value }),
  });
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      setPlan(await requestPlan(limits));
    } catch (failure) {
      setPlan(null);
      setError((failure as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="plan-heading">
      <h2 id="plan-heading">Plan a deployment</h2>
      <p class="muted">Which fork to serve within a memory budget, as <code>grove plan</code> answers it.</p>
      <form class="inline plan-form" onSubmit={submit}>
        <label>Memory budget
          <input name="memory" required placeholder="2GiB" {...field("memory")} />
        </label>
        <label>Context tokens
          <input name="ctx" inputMode="numeric" placeholder="4096" {...field("ctx")} />
        </label>
        <label>Slots
          <input name="slots" inputMode="numeric" placeholder="4" {...field("slots")} />
        </label>
        <label>Max p50 token ms
          <input name="p50_token_ms" inputMode="decimal" placeholder="optional" {...field("p50TokenMs")} />
        </label>
        <label>Min tokens/s
          <input name="min_tps" inputMode="decimal" placeholder="optional" {...field("minTps")} />
        </label>
        <label>Rank by task
          <select name="task" {...field("task")}>
            <option value="">decode speed</option>
            {qualityTasks.map((task) => <option key={task} value={task}>{task}</option>)}
          </select>
        </label>
        <button type="submit" disabled={busy}>{busy ? "Planning…" : "Plan"}</button>
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      {plan && <PlanAnswer plan={plan} />}
    </section>
  );
}

function PlanAnswer({ plan }: { plan: PlanResult }) {
  const { limits } = plan;
  const others = plan.ranked.slice(1);
  return (
    <div class="plan-answer panel" aria-live="polite">
      <p class="muted">
        Limits: {formatBytes(limits.memoryBytes)}, ctx {limits.contextSize} × {limits.slots} slot{limits.slots === 1 ? "" : "s"}
        {limits.p50TokenMs !== null && `, p50 token ≤ ${limits.p50TokenMs} ms`}
        {limits.minTokensPerSecond !== null && `, ≥ ${limits.minTokensPerSecond} tokens/s`}
      </p>
      <h3 id="pick-heading">Pick</h3>
      {plan.choice ? <Candidate candidate={plan.choice} labelledBy="pick-heading" /> : <p>No fork meets these limits.</p>}
      {others.length > 0 && (
        <>
          <h3 id="also-heading">Also fits</h3>
          <ol aria-labelledby="also-heading">{others.map((candidate) => <li key={candidate.digest}>{summary(candidate)}</li>)}</ol>
        </>
      )}
      {plan.excluded.length > 0 && (
        <>
          <h3 id="excluded-heading">Left out</h3>
          <ul aria-labelledby="excluded-heading">
            {plan.excluded.map((model) => <li key={model.digest}><strong>{model.names[0] ?? model.digest}</strong>: {model.reason}</li>)}
          </ul>
        </>
      )}
      {plan.notes.map((note) => <p key={note} class="muted">{note}</p>)}
    </div>
  );
}

function Candidate({ candidate, labelledBy }: { candidate: PlanCandidate; labelledBy: string }) {
  return (
    <div aria-labelledby={labelledBy} role="group">
      <p class="pick">{summary(candidate)}</p>
      <ul class="muted">{candidate.notes.map((note) => <li key={note}>{note}</li>)}</ul>
    </div>
  );
}

/** `tiny:q8 (Q8_0): 150.2 MiB, 1,556.4 tokens/s, perplexity 517.35`. */
function summary(candidate: PlanCandidate): string {
  const parts = [formatBytes(candidate.memoryBytes)];
  if (candidate.decodeTokensPerSecond !== null) parts.push(`${formatRate(candidate.decodeTokensPerSecond)} tokens/s`);
  if (candidate.quality !== null) parts.push(`${candidate.quality.metric} ${formatWithError(candidate.quality.value, candidate.quality.standardError)}`);
  return `${candidate.names[0] ?? candidate.digest} (${candidate.quantization}): ${parts.join(", ")}`;
}
