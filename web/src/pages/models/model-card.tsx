import { useEffect } from "preact/hooks";
import { FinetuneForm, QuantizeForm } from "./forge-actions.js";
import { ForkGraph } from "./fork-graph.js";
import { modelLabel, modelRef } from "../../format.js";
import { JobProgress } from "./job-progress.js";
import { Lineage, ModelFacts, RecipeView, ResultsTable } from "./model-facts.js";
import { isFinished, listJobs, listModels, modelResults, modelTree, showModel, type JobRecord } from "./models-api.js";
import { RecentJobs } from "./recent-jobs.js";
import { useForgeJob } from "./use-forge-job.js";
import { useLoad } from "./use-load.js";

/** Everything the card shows about one model, loaded together. */
async function loadCard(ref: string) {
  const [details, roots, results, models] = await Promise.all([showModel(ref), modelTree(ref), modelResults(ref), listModels()]);
  return { details, roots, results, models: new Map(models.map((model) => [model.digest, model])) };
}

/**
 * `/models/:ref`: a model's card — metadata, recipe, lineage, results and its own tree — with
 * forms that start quantize and fine-tune jobs from it, followed live; when one finishes, the
 * card (tree, forks) and the job list reload.
 */
export function ModelCard({ reference }: { reference: string }) {
  const card = useLoad(() => loadCard(reference), reference);
  const jobs = useLoad(listJobs, reference);
  const forge = useForgeJob(() => {
    card.reload();
    jobs.reload();
  });
  const onStarted = (job: JobRecord) => {
    forge.follow(job);
    jobs.reload();
  };
  // A job from this model still running when the card opens (started here before, or from the
  // CLI) is followed too, so its progress shows wherever it was started.
  const running = jobs.data?.find((job) => job.source.digest === card.data?.details.model.digest && !isFinished(job));
  useEffect(() => {
    if (running && forge.job === undefined) forge.follow(running);
  }, [running?.id]);
  if (card.error && !card.data) {
    return <main class="page models-page"><h1>{reference}</h1><p role="alert" class="error">{card.error}</p><p><a href="/models">All models</a></p></main>;
  }
  if (!card.data) return <main class="page models-page"><h1>{reference}</h1><p class="muted" aria-live="polite">Loading…</p></main>;
  const { details, roots, results, models } = card.data;
  const digest = details.model.digest;
  return (
    <main class="page models-page">
      <p class="breadcrumb"><a href="/models">Models</a> /</p>
      <h1>{modelLabel(details.names, digest)}</h1>
      {card.error && <p role="alert" class="error">{card.error}</p>}
      <div class="card-grid">
        <section aria-labelledby="facts-heading" class="panel">
          <h2 id="facts-heading">Metadata</h2>
          <ModelFacts details={details} />
        </section>
        <section aria-labelledby="recipe-heading" class="panel">
          <h2 id="recipe-heading">Recipe</h2>
          <RecipeView parents={details.parents} models={models} />
          <h2>Lineage</h2>
          <Lineage details={details} models={models} />
        </section>
      </div>
      <section aria-labelledby="card-tree-heading">
        <h2 id="card-tree-heading">Its tree</h2>
        <ForkGraph roots={roots} models={models} current={digest} caption={`The tree ${modelLabel(details.names, digest)} belongs to; its box is outlined.`} />
      </section>
      <section aria-labelledby="results-heading">
        <h2 id="results-heading">Results</h2>
        <ResultsTable results={results} />
      </section>
      <section aria-labelledby="forge-heading">
        <h2 id="forge-heading">Make a fork</h2>
        <div class="forge-actions panel">
          <QuantizeForm model={modelRef(details.names, digest)} onStarted={onStarted} />
          <FinetuneForm model={modelRef(details.names, digest)} onStarted={onStarted} />
        </div>
        {forge.job && <JobProgress job={forge.job} lastEvent={forge.lastEvent} error={forge.error} />}
      </section>
      <section aria-labelledby="card-jobs-heading">
        <h2 id="card-jobs-heading">Jobs from this model</h2>
        {jobs.error && <p role="alert" class="error">{jobs.error}</p>}
        {jobs.data && <RecentJobs jobs={jobs.data.filter((job) => job.source.digest === digest)} caption="Forge jobs started from this model" />}
      </section>
    </main>
  );
}
