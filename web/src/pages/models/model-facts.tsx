import { formatBytes, formatParameterCount, formatDateTime, modelLabel, modelRef } from "../../format.js";
import { cardHref, type LineageEdge, type ModelDetails, type ModelListing, type ResultRecord } from "./models-api.js";

/** A link to a model's card, named by what the store calls it. */
export function ModelLink({ digest, models }: { digest: string; models: ReadonlyMap<string, ModelListing> }) {
  const names = models.get(digest)?.names ?? [];
  return <a href={cardHref(modelRef(names, digest))}>{modelLabel(names, digest)}</a>;
}

/** The model's metadata: what the store read from its GGUF file, and its names. */
export function ModelFacts({ details }: { details: ModelDetails }) {
  const { model, names } = details;
  const rows: [string, string][] = [
    ["Names", names.length > 0 ? names.join(", ") : "none (refer to it by digest)"],
    ["Architecture", model.architecture],
    ["Parameters", `${formatParameterCount(model.parameterCount)} (${model.parameterCount.toLocaleString()})`],
    ["Context length", `${model.contextLength.toLocaleString()} tokens`],
    ["Vocabulary", `${model.vocabularySize.toLocaleString()} tokens`],
    ["Quantization", model.quantization],
    ["Size", `${formatBytes(model.size)} (${model.size.toLocaleString()} bytes)`],
    ["Digest", model.digest],
    ...(model.license ? [["License", model.license] as [string, string]] : []),
    ["Added", formatDateTime(model.createdAt)],
  ];
  return (
    <dl class="facts">
      {rows.map(([term, value]) => (
        <div key={term}><dt>{term}</dt><dd class={term === "Digest" ? "digest" : undefined}>{value}</dd></div>
      ))}
    </dl>
  );
}

/** A parameter value as text: strings bare, everything else as JSON. */
const showValue = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value));

/** How the model was made: per parent edge, the relation, the tool and its parameters, the inputs. */
export function RecipeView({ parents, models }: { parents: readonly LineageEdge[]; models: ReadonlyMap<string, ModelListing> }) {
  if (parents.length === 0) return <p class="recipe muted">A root model: it was imported, not made from another model of the store.</p>;
  // A merge has one edge per parent, all with the same recipe: show it once.
  const [first] = parents;
  const recipe = first!.recipe;
  return (
    <div class="recipe">
      <p>
        <strong>{first!.relation}</strong> from{" "}
        {parents.map((edge, index) => <span key={edge.parent}>{index > 0 && ", "}<ModelLink digest={edge.parent} models={models} /></span>)}
      </p>
      {recipe ? (
        <dl class="facts">
          <div><dt>Tool</dt><dd>{recipe.tool} <span class="muted">{recipe.toolVersion}</span></dd></div>
          {Object.entries(recipe.parameters).map(([key, value]) => <div key={key}><dt>{key}</dt><dd>{showValue(value)}</dd></div>)}
          <div><dt>Inputs</dt><dd>
            <ul class="plain">
              {recipe.inputs.map((digest) => <li key={digest}>{models.has(digest) ? <ModelLink digest={digest} models={models} /> : <span class="digest">{digest} <span class="muted">(data)</span></span>}</li>)}
            </ul>
          </dd></div>
        </dl>
      ) : <p class="muted">No recipe was recorded for this fork.</p>}
    </div>
  );
}

/** Parents and children as links, with the relation of each edge. */
export function Lineage({ details, models }: { details: ModelDetails; models: ReadonlyMap<string, ModelListing> }) {
  const list = (edges: readonly LineageEdge[], end: "parent" | "child", empty: string) =>
    edges.length === 0 ? <p class="muted">{empty}</p> : (
      <ul>{edges.map((edge) => <li key={edge[end]}><ModelLink digest={edge[end]} models={models} /> <span class="muted">({edge.relation})</span></li>)}</ul>
    );
  return (
    <div class="lineage">
      <div><h3>Parents</h3>{list(details.parents, "parent", "None: a root model.")}</div>
      <div><h3>Forks</h3>{list(details.children, "child", "None yet: quantize or fine-tune it below.")}</div>
    </div>
  );
}

/** A metric's value, to four significant digits. */
const showMetric = (value: number | null): string => (value === null ? "—" : Number(value.toPrecision(4)).toString());

/** The model's evaluation and cost results. */
export function ResultsTable({ results }: { results: readonly ResultRecord[] }) {
  if (results.length === 0) return <p class="muted">No results yet: evaluate it with <code>grove eval</code> or <code>grove bench</code>.</p>;
  return (
    <div class="table-wrap">
      <table class="data">
        <caption class="visually-hidden">Results of this model</caption>
        <thead><tr><th>Task</th><th>Kind</th><th>Metrics</th><th>Flags</th><th>Measured</th></tr></thead>
        <tbody>
          {results.map((result) => (
            <tr key={JSON.stringify([result.task, result.taskDigest, result.settings, result.engineVersion])}>
              <td>{result.task}</td>
              <td>{result.kind}</td>
              <td>
                {Object.entries(result.metrics)
                  .map(([name, value]) => `${name} ${showMetric(value)}${typeof result.standardErrors?.[name] === "number" ? ` ±${showMetric(result.standardErrors[name])}` : ""}`)
                  .join(" · ")}
                {result.kind === "cost" && <span class="muted"> (on {result.machine == null ? "an unknown machine" : `${result.machine.cpu} × ${result.machine.cores}${result.machine.gpu === null ? "" : `, ${result.machine.gpu}`}`})</span>}
              </td>
              <td>{result.flags.join(", ") || "—"}</td>
              <td>{formatDateTime(result.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
