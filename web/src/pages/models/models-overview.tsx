import { ForkGraph } from "./fork-graph.js";
import { formatBytes, formatParameterCount, modelLabel, modelRef } from "../../format.js";
import { cardHref, listJobs, listModels, storeTree, type ModelListing, type TreeNode } from "./models-api.js";
import { RecentJobs } from "./recent-jobs.js";
import { useLoad } from "./use-load.js";

/** Each model's parents with the relation, read off the trees (a merge has several). */
function parentsByDigest(roots: readonly TreeNode[]): Map<string, { node: TreeNode; relation: string }[]> {
  const parents = new Map<string, { node: TreeNode; relation: string }[]>();
  const visit = (node: TreeNode) => {
    for (const child of node.children) {
      const known = parents.get(child.digest) ?? [];
      if (!known.some((entry) => entry.node.digest === node.digest)) parents.set(child.digest, [...known, { node, relation: child.relation ?? "" }]);
      visit(child);
    }
  };
  roots.forEach(visit);
  return parents;
}

/** Every model of the store as a table: the fork tree's text alternative, with the details. */
function ModelTable({ models, roots }: { models: readonly ModelListing[]; roots: readonly TreeNode[] }) {
  const parents = parentsByDigest(roots);
  return (
    <div class="table-wrap">
      <table class="data">
        <caption class="visually-hidden">Models in the store</caption>
        <thead>
          <tr><th>Name</th><th>Derived from</th><th>Architecture</th><th class="num">Parameters</th><th>Quantization</th><th class="num">Size</th><th class="num">Context</th></tr>
        </thead>
        <tbody>
          {models.map((model) => (
            <tr key={model.digest}>
              <td><a href={cardHref(modelRef(model.names, model.digest))}>{modelLabel(model.names, model.digest)}</a>{model.names.length > 1 && <span class="muted"> +{model.names.length - 1}</span>}</td>
              <td>{(parents.get(model.digest) ?? []).map(({ node, relation }, index) => (
                <span key={node.digest}>{index > 0 && ", "}{relation} from <a href={cardHref(modelRef(node.names, node.digest))}>{modelLabel(node.names, node.digest)}</a></span>
              ))}{!parents.has(model.digest) && <span class="muted">root</span>}</td>
              <td>{model.architecture}</td>
              <td class="num">{formatParameterCount(model.parameterCount)}</td>
              <td>{model.quantization}</td>
              <td class="num">{formatBytes(model.size)}</td>
              <td class="num">{model.contextLength}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** `/models`: the store's fork trees as a graph, its models as a table, and recent forge jobs. */
export function ModelsOverview() {
  const store = useLoad(async () => {
    const [models, roots] = await Promise.all([listModels(), storeTree()]);
    return { models, roots };
  }, "store");
  const jobs = useLoad(listJobs, "jobs");
  const models = store.data?.models ?? [];
  return (
    <main class="page models-page">
      <h1>Models</h1>
      {store.error && <p role="alert" class="error">{store.error}</p>}
      {store.data && (
        <>
          <section aria-labelledby="tree-heading">
            <h2 id="tree-heading">Fork tree</h2>
            <ForkGraph roots={store.data.roots} models={new Map(models.map((model) => [model.digest, model]))}
              caption={`${models.length} model${models.length === 1 ? "" : "s"}; each edge is labelled with how the fork was made. Open a model to see its card.`} />
          </section>
          <section aria-labelledby="list-heading">
            <h2 id="list-heading">All models</h2>
            <ModelTable models={models} roots={store.data.roots} />
          </section>
        </>
      )}
      <section aria-labelledby="jobs-heading">
        <h2 id="jobs-heading">Recent forge jobs</h2>
        {jobs.error && <p role="alert" class="error">{jobs.error}</p>}
        {jobs.data && <RecentJobs jobs={jobs.data} caption="Recent forge jobs" />}
      </section>
    </main>
  );
}
