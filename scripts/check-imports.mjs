#!/usr/bin/env node
// Checks the import graph of src/ and web/src/ (type-only imports included: a circle of types is
// still a circle a reader has to hold in mind):
//   1. no circle between files;
//   2. no import runs back up a layer (LAYERS below; docs/architecture.md draws them);
//   3. no CLI command imports from a sibling command (shared helpers live in src/cli/*.ts);
//   4. the web app reaches src/ only through `import type` from the wire contract.
// Tests (*.test.ts) may import anything and are left out. Prints each problem and exits 1, else
// one line with the counts. Usage: node scripts/check-imports.mjs [root]
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/**
 * The floors of src/, lowest first. A folder imports only from floors below its own: two
 * folders on one floor do not import each other. services.ts is the composition root.
 */
export const LAYERS = [
  ["core"],
  ["config", "logging", "gguf", "native"],
  ["store"],
  ["engine", "gateway"],
  ["forge", "results"],
  ["bench", "plan"],
  ["serving", "demo"],
  ["server"],
  ["services.ts"],
  ["cli"],
  ["test-support"],
];

/** The one module of src/ the web app may import, type-only: the JSON shapes of the admin API. */
export const WIRE_MODULE = "src/core/wire.ts";

/**
 * Known upward imports, each with the reason it is still there. Empty is the goal; an entry
 * here is a debt that a reader sees, not a rule.
 */
const KNOWN_UPWARD = new Map([
  // ["src/a/x.ts -> src/b/y.ts", "why it is still there"],
]);

/** Known circles (files sorted, joined by " <-> "), each with its reason: debts a reader sees, not rules. */
const KNOWN_CIRCLES = new Map([
  // ["src/a/x.ts <-> src/b/y.ts", "why it is still there"],
]);

const root = resolve(process.argv[2] ?? ".");
const floorOf = new Map(LAYERS.flatMap((names, floor) => names.map((name) => [name, floor])));

function sourceFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(entry.name) && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** Relative imports and re-exports of a file: `{ target, typeOnly }` with the target a repo path. */
function importsOf(file) {
  const text = readFileSync(file, "utf8");
  const found = [];
  const pattern = /^\s*(import|export)\s+(type\s+)?([^;]*?)\s*from\s*["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/gm;
  for (const match of text.matchAll(pattern)) {
    const specifier = match[4] ?? match[5];
    let target = resolve(dirname(file), specifier);
    if (target.endsWith(".js")) target = target.slice(0, -3);
    const candidates = [`${target}.ts`, `${target}.tsx`, `${target}/index.ts`];
    const hit = candidates.find((path) => files.has(path)) ?? `${target}.ts`;
    const namesAllTypes = match[3] !== undefined && /^\{[^}]*\}$/.test(match[3].trim()) && match[3].replace(/[{}]/g, "").split(",").every((name) => name.trim() === "" || name.trim().startsWith("type "));
    found.push({ target: hit, typeOnly: match[2] !== undefined || namesAllTypes });
  }
  return found;
}

const all = [...sourceFiles(join(root, "src")), ...sourceFiles(join(root, "web/src"))];
const files = new Set(all);
const graph = new Map();
for (const file of all) graph.set(file, importsOf(file));

const problems = [];
const rel = (path) => relative(root, path);

// 2, 3, 4: edge rules.
const folderOf = (path) => {
  const parts = relative(join(root, "src"), path).split("/");
  return parts[0];
};
for (const [file, imports] of graph) {
  if (/\.test\.tsx?$/.test(file)) continue;
  const inWeb = rel(file).startsWith("web/");
  for (const { target, typeOnly } of imports) {
    const edge = `${rel(file)} -> ${rel(target)}`;
    if (inWeb) {
      if (rel(target).startsWith("web/")) continue;
      if (rel(target) !== WIRE_MODULE || !typeOnly) problems.push(`web reaches into src/ other than a type-only import of ${WIRE_MODULE}: ${edge}`);
      continue;
    }
    if (!rel(target).startsWith("src/")) continue;
    const from = folderOf(file);
    const to = folderOf(target);
    if (from === to) {
      const inCommands = (path) => rel(path).startsWith("src/cli/commands/");
      if (inCommands(file) && inCommands(target)) problems.push(`a CLI command imports from a sibling command (share it from src/cli/): ${edge}`);
      continue;
    }
    const fromFloor = floorOf.get(from);
    const toFloor = floorOf.get(to);
    if (fromFloor === undefined || toFloor === undefined) {
      problems.push(`folder not on any floor of scripts/check-imports.mjs LAYERS: ${fromFloor === undefined ? from : to} (${edge})`);
    } else if (toFloor >= fromFloor && !KNOWN_UPWARD.has(edge)) {
      problems.push(`import runs ${toFloor === fromFloor ? "across" : "up"} a layer (${from} -> ${to}): ${edge}`);
    }
  }
}

// 1: circles, as strongly connected components (Tarjan), tests included.
let index = 0;
const stack = [];
const state = new Map();
const circles = [];
function connect(node) {
  const mine = { index, low: index, onStack: true };
  index += 1;
  state.set(node, mine);
  stack.push(node);
  for (const { target } of graph.get(node) ?? []) {
    if (!graph.has(target)) continue;
    const seen = state.get(target);
    if (seen === undefined) {
      connect(target);
      mine.low = Math.min(mine.low, state.get(target).low);
    } else if (seen.onStack) {
      mine.low = Math.min(mine.low, seen.index);
    }
  }
  if (mine.low === mine.index) {
    const component = [];
    let member;
    do {
      member = stack.pop();
      state.get(member).onStack = false;
      component.push(member);
    } while (member !== node);
    if (component.length > 1) circles.push(component.map(rel).sort());
  }
}
for (const node of graph.keys()) if (!state.has(node)) connect(node);
for (const circle of circles) if (!KNOWN_CIRCLES.has(circle.join(" <-> "))) problems.push(`import circle: ${circle.join(" <-> ")}`);

// 6: the store's registry is the store's own: other folders ask ModelStore (issue 22). Tests may
// reach it to set up a case; prom-client's registry in server/metrics.ts is another thing.
for (const file of graph.keys()) {
  const path = rel(file);
  if (!path.startsWith("src/") || path.startsWith("src/store/") || path.startsWith("src/test-support/") || /\.test\.tsx?$/.test(path)) continue;
  for (const [index, line] of readFileSync(file, "utf8").split("\n").entries()) {
    if (/\bstore\.registry\b/.test(line)) problems.push(`store.registry read outside src/store/ (ask ModelStore): ${path}:${index + 1}`);
  }
}

if (problems.length > 0) {
  for (const problem of problems) process.stderr.write(`${problem}\n`);
  process.stderr.write(`check-imports: ${problems.length} problem(s) in ${graph.size} files\n`);
  process.exit(1);
}
const edges = [...graph.values()].reduce((sum, imports) => sum + imports.length, 0);
process.stdout.write(`check-imports: ${graph.size} files, ${edges} imports: no circle, none up a layer (known and listed in the script: ${KNOWN_CIRCLES.size} circle(s), ${KNOWN_UPWARD.size} upward import(s))\n`);
