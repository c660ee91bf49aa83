import { useLocation } from "preact-iso";
import { useMemo } from "preact/hooks";
import { BOX, layoutForks, type PlacedEdge, type PlacedModel } from "./fork-layout.js";
import { formatBytes, formatParameterCount, modelLabel, modelRef } from "../../format.js";
import { cardHref, type ModelListing, type TreeNode } from "./models-api.js";

/** Props of {@link ForkGraph}. */
export interface ForkGraphProps {
  /** The trees to draw (`GET /api/tree` or `/api/models/:ref/tree`). */
  roots: readonly TreeNode[];
  /** The store's models by digest, for parameter counts. */
  models: ReadonlyMap<string, ModelListing>;
  /** The digest of the model whose card this is, drawn highlighted. */
  current?: string;
  /** The figure's caption. */
  caption: string;
}

const PAD = 4;
const half = BOX.height / 2;

/** One node: a link to the model's card with its name, quantization, size and parameters. */
function ModelBox({ model, listing, current, describe }: { model: PlacedModel; listing: ModelListing | undefined; current: boolean; describe: string }) {
  const { route } = useLocation();
  const href = cardHref(modelRef(model.names, model.digest));
  const label = modelLabel(model.names, model.digest);
  const details = `${formatBytes(model.size)}${listing ? ` · ${formatParameterCount(listing.parameterCount)} params` : ""}`;
  // preact-iso routes clicks on HTML links only; an SVG link is routed here so the page stays.
  const open = (event: MouseEvent) => {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    route(href);
  };
  return (
    <a href={href} class={`fork-node${current ? " current" : ""}`} aria-current={current ? "page" : undefined} aria-label={describe} onClick={open}>
      <rect x={model.x} y={model.y} width={BOX.width} height={BOX.height} rx={6} />
      <text x={model.x + 10} y={model.y + 19} class="name">{label.length > 24 ? `${label.slice(0, 23)}…` : label}</text>
      <text x={model.x + 10} y={model.y + 37} class="quantization">{model.quantization}</text>
      <text x={model.x + 10} y={model.y + 54} class="details">{details}</text>
    </a>
  );
}

/**
 * An edge from the parent's right side to the child's left side, labelled with its relation
 * where it runs level: beside the child, whose row is its own, or for a merge's extra edge
 * beside the parent, since the merge's first edge is labelled at the child.
 */
function EdgePath({ edge, from, to }: { edge: PlacedEdge; from: PlacedModel; to: PlacedModel }) {
  const [x1, y1, x2, y2] = [from.x + BOX.width, from.y + half, to.x, to.y + half];
  const middle = (x1 + x2) / 2;
  return (
    <g class={`fork-edge${edge.extra ? " extra" : ""}`} data-relation={edge.relation}>
      <path d={`M${x1},${y1} C${middle},${y1} ${middle},${y2} ${x2},${y2}`} />
      {edge.extra
        ? <text x={x1 + 6} y={y1 - 5}>{edge.relation}</text>
        : <text x={x2 - 6} y={y2 - 5} text-anchor="end">{edge.relation}</text>}
    </g>
  );
}

/**
 * The fork trees drawn as a graph: a box per model (a keyboard-focusable link to its card) and
 * an edge per lineage edge labelled with its relation; a merge's second parent gets a dashed
 * edge. Each link's accessible name says what the box shows and where the model comes from.
 */
export function ForkGraph({ roots, models, current, caption }: ForkGraphProps) {
  const layout = useMemo(() => layoutForks(roots), [roots]);
  if (layout.models.length === 0) return <p class="muted">No models in the store yet.</p>;
  const byDigest = new Map(layout.models.map((model) => [model.digest, model]));
  const origins = (digest: string) =>
    layout.edges.filter((edge) => edge.child === digest).map((edge) => {
      const parent = byDigest.get(edge.parent)!;
      return `${edge.relation} from ${modelLabel(parent.names, parent.digest)}`;
    });
  const describe = (model: PlacedModel) => {
    const listing = models.get(model.digest);
    const parts = [modelLabel(model.names, model.digest), model.quantization, formatBytes(model.size), ...(listing ? [`${formatParameterCount(listing.parameterCount)} parameters`] : []), ...origins(model.digest)];
    return parts.join(", ");
  };
  return (
    <figure class="fork-graph">
      <figcaption class="muted">{caption}</figcaption>
      <div class="fork-scroll">
        <svg role="group" aria-label={caption} width={layout.width + 2 * PAD} height={layout.height + 2 * PAD}
          viewBox={`${-PAD} ${-PAD} ${layout.width + 2 * PAD} ${layout.height + 2 * PAD}`}>
          {layout.edges.map((edge) => (
            <EdgePath key={`${edge.parent}-${edge.child}`} edge={edge} from={byDigest.get(edge.parent)!} to={byDigest.get(edge.child)!} />
          ))}
          {layout.models.map((model) => (
            <ModelBox key={model.digest} model={model} listing={models.get(model.digest)} current={model.digest === current} describe={describe(model)} />
          ))}
        </svg>
      </div>
      <TreeList roots={roots} current={current} />
    </figure>
  );
}

/** The same trees as nested lists, for reading rather than looking (a merge is under each parent). */
function TreeList({ roots, current }: { roots: readonly TreeNode[]; current: string | undefined }) {
  const item = (node: TreeNode, path: string) => (
    <li key={path}>
      {node.relation && <span class="muted">{node.relation}: </span>}
      <a href={cardHref(modelRef(node.names, node.digest))} aria-current={node.digest === current ? "page" : undefined}>{modelLabel(node.names, node.digest)}</a>
      {` (${node.quantization}, ${formatBytes(node.size)})`}
      {node.children.length > 0 && <ul>{node.children.map((child) => item(child, `${path}/${child.digest}`))}</ul>}
    </li>
  );
  return (
    <details class="tree-list">
      <summary>The tree as a list</summary>
      <ul>{roots.map((root) => item(root, root.digest))}</ul>
    </details>
  );
}
