import { hierarchy, tree } from "d3-hierarchy";
import type { Relation, TreeNode } from "./models-api.js";

/** One model placed in the drawing; `x`, `y` is its box's top-left corner. */
export interface PlacedModel {
  digest: string;
  names: string[];
  quantization: string;
  size: number;
  x: number;
  y: number;
}

/** A lineage edge in the drawing. `extra` marks a merge's further parents (drawn dashed). */
export interface PlacedEdge {
  parent: string;
  child: string;
  relation: Relation;
  extra: boolean;
}

/** What {@link layoutForks} answers: boxes, edges and the drawing's size. */
export interface ForkLayout {
  models: PlacedModel[];
  edges: PlacedEdge[];
  width: number;
  height: number;
}

/** A node's box, and the space between columns (where edge labels go) and rows. */
export const BOX = { width: 190, height: 62 } as const;
const COLUMN_GAP = 120;
const ROW_GAP = 16;

/** A tree node kept once; later appearances of a merge become extra edges instead. */
interface UniqueNode {
  node: TreeNode | null; // null: the virtual root above the store's roots
  children: UniqueNode[];
}

/**
 * Lays out fork trees left to right with d3-hierarchy's tidy tree. The server's trees repeat a
 * merge under each of its parents; here each model is placed once, under its first parent, and
 * its other parents get extra edges, so a merge shows as one box with two incoming edges.
 */
export function layoutForks(roots: readonly TreeNode[]): ForkLayout {
  const seen = new Set<string>();
  const extras: PlacedEdge[] = [];
  const unique = (node: TreeNode, parent: string | null): UniqueNode | null => {
    if (seen.has(node.digest)) {
      if (parent !== null && node.relation !== null) extras.push({ parent, child: node.digest, relation: node.relation, extra: true });
      return null;
    }
    seen.add(node.digest);
    const children = node.children.map((child) => unique(child, node.digest)).filter((child): child is UniqueNode => child !== null);
    return { node, children };
  };
  const top: UniqueNode = { node: null, children: roots.map((root) => unique(root, null)).filter((root): root is UniqueNode => root !== null) };
  if (top.children.length === 0) return { models: [], edges: [], width: 0, height: 0 };

  // d3 lays out top-down (x across, y down); the drawing turns it left to right.
  const laidOut = tree<UniqueNode>().nodeSize([BOX.height + ROW_GAP, BOX.width + COLUMN_GAP])(hierarchy(top, (entry) => entry.children));
  const placed = laidOut.descendants().filter((entry) => entry.data.node !== null);
  const minX = Math.min(...placed.map((entry) => entry.x));
  const models = placed.map((entry): PlacedModel => {
    const node = entry.data.node!;
    return { digest: node.digest, names: node.names, quantization: node.quantization, size: node.size, x: entry.y - (BOX.width + COLUMN_GAP), y: entry.x - minX };
  });
  const edges = placed.flatMap((entry): PlacedEdge[] => {
    const node = entry.data.node!;
    const parent = entry.parent?.data.node;
    return parent && node.relation !== null ? [{ parent: parent.digest, child: node.digest, relation: node.relation, extra: false }] : [];
  });
  return {
    models,
    edges: [...edges, ...extras],
    width: Math.max(...models.map((model) => model.x)) + BOX.width,
    height: Math.max(...models.map((model) => model.y)) + BOX.height,
  };
}
