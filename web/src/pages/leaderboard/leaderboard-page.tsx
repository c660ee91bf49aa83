import { useEffect, useMemo, useState } from "preact/hooks";
import { FrontSection } from "./front-section.js";
import { loadLeaderboards, type Front, type Leaderboard, type TaskSummary } from "./leaderboard-api.js";
import "./leaderboard.css";
import { PlanForm } from "./plan-form.js";
import { bestFirst, mergeResults, resultColumns, SIZE_COLUMN } from "./results-model.js";
import { ResultsTable } from "./results-table.js";

type Loaded = { tasks: TaskSummary[]; boards: Leaderboard[] };

/**
 * The Leaderboard page: every fork's stored results in one sortable, filterable table, the
 * quality-versus-cost chart with its Pareto front, and the plan form. With no results yet it
 * says so and shows the commands that make them.
 */
export function LeaderboardPage() {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    const controller = new AbortController();
    loadLeaderboards(controller.signal).then(setLoaded, (failure: Error) => { if (!controller.signal.aborted) setError(failure.message); });
    return () => controller.abort();
  }, []);
  const qualityTasks = useMemo(() => (loaded === null ? [] : byModelsMeasured(loaded.tasks.filter((task) => task.kind === "quality"))), [loaded]);

  return (
    <main class="page leaderboard">
      <h1>Leaderboard</h1>
      {error && <p class="error" role="alert">{error}</p>}
      {!error && loaded === null && <p class="muted">Loading results…</p>}
      {loaded && loaded.tasks.length === 0 && <EmptyState />}
      {loaded && loaded.tasks.length > 0 && <Results loaded={loaded} qualityTasks={qualityTasks} />}
      {loaded && <PlanForm qualityTasks={qualityTasks} />}
    </main>
  );
}

/** The table and the chart, sharing the chart's front for the table's "only on the front" filter. */
function Results({ loaded, qualityTasks }: { loaded: Loaded; qualityTasks: string[] }) {
  const [front, setFront] = useState<Front | null>(null);
  const columns = useMemo(() => resultColumns(loaded.boards), [loaded]);
  const rows = useMemo(() => mergeResults(loaded.boards, columns), [loaded, columns]);
  const frontDigests = useMemo(() => (front === null ? null : new Set(front.front.map((model) => model.digest))), [front]);
  // First order: best first on the quality task most forks were measured on (else by size).
  const firstColumn = columns.find((column) => column.key.startsWith(`${qualityTasks[0]}/`)) ?? SIZE_COLUMN;
  return (
    <>
      <section aria-labelledby="results-heading">
        <h2 id="results-heading">Results</h2>
        <ResultsTable rows={rows} columns={columns} initialOrder={bestFirst(firstColumn)} tasks={loaded.tasks.map((task) => task.task)} frontDigests={frontDigests} />
        <p class="muted">± is one standard error; ≈ marks a score within noise of another model's ({loaded.boards[0]?.significance ?? "95 %"}). Results measured on another text or machine are not compared.</p>
      </section>
      {qualityTasks.length > 0
        ? <FrontSection qualityTasks={qualityTasks} onFront={setFront} />
        : <p class="muted">Measure quality with <code>grove eval MODEL --task perplexity</code> to see the quality-versus-cost chart.</p>}
    </>
  );
}

/** Quality tasks, the one measured on the most models first (the default of `grove front`). */
function byModelsMeasured(tasks: TaskSummary[]): string[] {
  return [...tasks].sort((a, b) => b.models - a.models || a.task.localeCompare(b.task)).map((task) => task.task);
}

function EmptyState() {
  return (
    <section class="panel empty" aria-labelledby="empty-heading">
      <h2 id="empty-heading">No results yet</h2>
      <p>Nothing has been measured in this store. Measure quality and serving cost from the command line; the results appear here.</p>
      <pre><code>{[
        "grove eval MODEL --task perplexity --task kl-divergence",
        "grove eval MODEL --task tasks/arith.jsonl",
        "grove bench MODEL --ctx 2048 --slots 4",
      ].join("\n")}</code></pre>
    </section>
  );
}
