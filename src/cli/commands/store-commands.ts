import type { Command } from "commander";
import type { Digest } from "../../core/digest.js";
import { modelfileOf } from "../../forge/modelfile/config-fork.js";
import { copyModelName, deleteModelName, type DeleteNameResult } from "../../store/model-names.js";
import type { ModelDetails, TreeNode } from "../../store/model-store.js";
import type { LineageEdge } from "../../store/registry.js";
import { formatBytes, renderTable, shortDigest, describeModel } from "../format.js";
import { type EdgeView, type HomeFlags, HOME_FLAG, HOME_FLAG_HELP, DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP, withStore, namesByDigest } from "../store-access.js";

interface ListingFlags extends HomeFlags {
  json?: boolean;
}

interface RemoveFlags extends HomeFlags {
  force?: boolean;
}

/** What `grove show --json` prints: the store's details with names on both ends of each edge. */
export interface ShowResult extends Omit<ModelDetails, "parents" | "children"> {
  parents: EdgeView[];
  children: EdgeView[];
}

/**
 * Registers the store's listing and housekeeping commands: `grove ls`, `show`, `tree`, `tag`,
 * `cp`, `rm` and `gc`. (`grove import` and `grove pull` live in their own files.) A REF is a name
 * (`family[:tag]`), a digest or a unique digest prefix.
 *
 * @example
 * grove ls --json
 * grove show small:q8
 * grove tree small:f32
 * grove tag sha256:3f2a small:stable
 * grove cp small:q8 team:small-Q8_0
 * grove rm small:f32 --force && grove gc
 */
export function registerStoreCommands(program: Command): void {
  program
    .command("ls")
    .description("list the models in the store: name, digest, size, architecture, quantization, created")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--json", "print the models as JSON")
    .action(async (flags: ListingFlags) => {
      const models = await withStore(flags, (store) => store.list());
      if (flags.json) return void process.stdout.write(`${JSON.stringify(models)}\n`);
      const allLocal = models.every((model) => model.local);
      const rows = models.flatMap((model) =>
        (model.names.length > 0 ? model.names : ["-"]).map((name) => [
          name,
          model.digest.slice(7, 19),
          formatBytes(model.size),
          model.architecture,
          model.quantization,
          formatTime(model.createdAt),
          ...(allLocal ? [] : [model.local ? "yes" : "no"]),
        ]),
      );
      // A shared registry (--database) lists models whose file is on another replica only.
      const headers = ["NAME", "DIGEST", "SIZE", "ARCH", "QUANT", "CREATED", ...(allLocal ? [] : ["LOCAL"])];
      process.stdout.write(`${renderTable(headers, rows, [false, false, true])}\n`);
    });

  program
    .command("show")
    .description("show a model: metadata, names, card, parents (relation and recipe) and forks")
    .argument("<ref>", "name, digest or unique digest prefix")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--json", "print the model as JSON")
    .option("--modelfile", "print a Modelfile that builds the model again (its FROM and, for a config fork, its defaults)")
    .action(async (ref: string, flags: ListingFlags & { modelfile?: boolean }) => {
      if (flags.modelfile) return void process.stdout.write(await withStore(flags, async (store) => modelfileOf(store, (await store.resolve(ref)).digest)));
      const result = await withStore(flags, async (store) => {
        const details = await store.show(ref);
        const names = await namesByDigest(store);
        const view = (digest: Digest, edge: LineageEdge): EdgeView => ({ digest, names: names.get(digest) ?? [], relation: edge.relation, recipe: edge.recipe });
        return {
          ...details,
          parents: details.parents.map((edge) => view(edge.parent, edge)),
          children: details.children.map((edge) => view(edge.child, edge)),
        } satisfies ShowResult;
      });
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : formatShow(result));
    });

  program
    .command("tree")
    .description("show fork trees: every tree in the store, or the one holding REF, with relation and size per model")
    .argument("[ref]", "name, digest or unique digest prefix")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--json", "print the trees as JSON")
    .action(async (ref: string | undefined, flags: ListingFlags) => {
      const trees = await withStore(flags, (store) => store.tree(ref));
      process.stdout.write(flags.json ? `${JSON.stringify(trees)}\n` : formatTree(trees));
    });

  program
    .command("tag")
    .description("point a name at a model (moving it if it pointed elsewhere)")
    .argument("<ref>", "name, digest or unique digest prefix of the model")
    .argument("<name>", "the name to point at it, family[:tag]")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .action(async (ref: string, name: string, flags: HomeFlags) => {
      const result = await withStore(flags, (store) => store.tag(ref, name));
      const moved = result.previous === undefined ? "" : ` (it pointed at ${shortDigest(result.previous)})`;
      process.stdout.write(`${result.name} → ${shortDigest(result.digest)}${moved}\n`);
    });

  program
    .command("cp")
    .description("give a model another name (as ollama cp); a name that names another model is refused (grove tag moves one)")
    .argument("<source>", "name, digest or unique digest prefix of the model")
    .argument("<destination>", "the new name, family[:tag] (case-insensitive: stored in lower case)")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .action(async (source: string, destination: string, flags: HomeFlags) => {
      const result = await withStore(flags, (store) => copyModelName(store, source, destination));
      process.stdout.write(`copied '${source}' to '${result.name}'${result.created ? "" : " (it already named that model)"}\n`);
    });

  program
    .command("rm")
    .description("remove a name (as ollama rm); the model goes with its last name, unless forks depend on it; a digest removes the model and all its names. Its blob is freed by `grove gc`")
    .argument("<refs...>", "names (or digests, unique digest prefixes)")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--force", "remove the model even if forks record it as their parent (they become roots)")
    .action(async (refs: string[], flags: RemoveFlags) => {
      await withStore(flags, async (store) => {
        for (const ref of refs) {
          const result = await deleteModelName(store, ref, { force: flags.force === true });
          process.stdout.write(`${formatRemoval(ref, result)}\n`);
        }
      });
    });

  program
    .command("gc")
    .description("delete blobs no model uses, and temp files whose writing process is gone (a crashed import, pull or quantize)")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, REGISTRY_DATABASE_FLAG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (flags: ListingFlags) => {
      const result = await withStore(flags, (store) => store.gc());
      if (flags.json) return void process.stdout.write(`${JSON.stringify(result)}\n`);
      const blobs = `${result.removedBlobs.length} blob${result.removedBlobs.length === 1 ? "" : "s"}`;
      const temp = `${result.removedTempFiles} temp file${result.removedTempFiles === 1 ? "" : "s"}`;
      process.stdout.write(`freed ${formatBytes(result.freedBytes)} (${result.freedBytes} bytes): ${blobs}, ${temp}\n`);
    });
}

/** One line per lineage edge: `quantized  small:f32 (sha256:…)`, with its recipe when there is one. */
export function formatEdge(edge: EdgeView): string {
  const recipe = edge.recipe === null ? "" : `  recipe: ${edge.recipe.tool} ${edge.recipe.toolVersion} ${JSON.stringify(edge.recipe.parameters)}`;
  return `${edge.relation.padEnd(9)}  ${describeModel(edge.digest, edge.names)}${recipe}`;
}

/** The human-readable report of `grove show`. */
export function formatShow(result: ShowResult): string {
  const { model } = result;
  const lines: string[] = [];
  const field = (label: string, value: string): void => void lines.push(`${label.padEnd(14)} ${value}`);
  field("digest", model.digest);
  field("names", result.names.length > 0 ? result.names.join(", ") : "-");
  field("size", `${formatBytes(model.size)} (${model.size} bytes)`);
  field("architecture", model.architecture);
  field("parameters", String(model.parameterCount));
  field("quantization", model.quantization);
  // An adapter has no context or vocabulary of its own: it is served on top of its base.
  const adapterOf = result.parents.find((edge) => edge.relation === "adapter");
  if (adapterOf !== undefined) field("adapter", `LoRA, applied to ${describeModel(adapterOf.digest, adapterOf.names)} when served`);
  field("context", adapterOf === undefined ? String(model.contextLength) : "the base's");
  field("vocabulary", adapterOf === undefined ? `${model.vocabularySize} tokens` : "the base's");
  field("chat template", model.chatTemplate === undefined ? "none" : `${model.chatTemplate.length} characters`);
  field("license", model.license ?? "-");
  field("created", model.createdAt);
  field("path", result.path);
  for (const [key, value] of Object.entries(model.card).sort(([a], [b]) => a.localeCompare(b))) {
    field(`card ${key}`, key === "training" ? formatTrainingCard(value) : typeof value === "string" ? value : JSON.stringify(value));
  }
  lines.push("", `parents (${result.parents.length})`, ...result.parents.map((edge) => `  ${formatEdge(edge)}`));
  lines.push("", `forks (${result.children.length})`, ...result.children.map((edge) => `  ${formatEdge(edge)}`));
  return `${lines.join("\n")}\n`;
}

/**
 * A fine-tune's training card in a line per epoch — the per-step curve it also holds is for
 * `grove show --json` and `grove jobs show`:
 * `job job-0e14…, 9138 records, 255425 tokens` then `  epoch 1  train loss 0.2813  validation 0.1149`.
 */
function formatTrainingCard(value: unknown): string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return JSON.stringify(value);
  const card = value as { job?: unknown; dataDigest?: unknown; records?: unknown; tokens?: unknown; epochs?: unknown; steps?: unknown; untrainedTensors?: unknown };
  const head = [
    typeof card.job === "string" ? `job ${card.job}` : undefined,
    typeof card.dataDigest === "string" ? `data ${shortDigest(card.dataDigest as Digest)}` : undefined,
    typeof card.records === "number" ? `${card.records} records` : undefined,
    typeof card.tokens === "number" ? `${card.tokens} tokens` : undefined,
    Array.isArray(card.steps) ? `${card.steps.length} steps recorded (--json)` : undefined,
  ].filter((part) => part !== undefined);
  // The trainer's warning that some tensors kept their parent's values (llama.cpp's trainer).
  const untrained = Array.isArray(card.untrainedTensors) && card.untrainedTensors.length > 0 ? [`${"".padEnd(17)}untrained: ${card.untrainedTensors.join(", ")}`] : [];
  const epochs = Array.isArray(card.epochs) ? (card.epochs as { epoch?: unknown; trainLoss?: unknown; validationLoss?: unknown }[]) : [];
  const loss = (label: string, number: unknown): string => (typeof number === "number" ? `  ${label} ${number.toFixed(4)}` : "");
  const lines = epochs.map((epoch, index) => `${"".padEnd(17)}epoch ${typeof epoch.epoch === "number" ? epoch.epoch + 1 : index + 1}${loss("train loss", epoch.trainLoss)}${loss("validation", epoch.validationLoss)}`);
  return [head.join(", "), ...lines, ...untrained].join("\n");
}

/**
 * The fork trees as indented text, one model a line with its relation to the line above and its
 * size: `└─ quantized  small:q8 (sha256:3f2a9c01d4e5…, 6.2 MB)`.
 */
export function formatTree(trees: readonly TreeNode[]): string {
  const lines: string[] = [];
  const label = (node: TreeNode): string =>
    `${node.names.length > 0 ? `${node.names.join(", ")} ` : ""}(${shortDigest(node.digest)}, ${formatBytes(node.size)})`;
  const walk = (node: TreeNode, indent: string, last: boolean): void => {
    lines.push(`${indent}${last ? "└─" : "├─"} ${(node.relation ?? "").padEnd(9)}  ${label(node)}`);
    node.children.forEach((child, index) => walk(child, `${indent}${last ? "   " : "│  "}`, index === node.children.length - 1));
  };
  for (const root of trees) {
    lines.push(label(root));
    root.children.forEach((child, index) => walk(child, "", index === root.children.length - 1));
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/** What `grove rm` did, for people: `deleted 'tiny:b'`, and whether the model went with it. */
export function formatRemoval(ref: string, result: DeleteNameResult): string {
  if (result.removed === undefined) return `deleted '${result.name ?? ref}' (the model keeps ${result.remaining.join(", ")})`;
  const orphaned = result.removed.edges.filter((edge) => edge.parent === result.digest).map((edge) => shortDigest(edge.child));
  const lines = [`deleted '${result.name ?? ref}': removed ${describeModel(result.digest, result.removed.names)}; its blob is freed by \`grove gc\``];
  if (orphaned.length > 0) lines.push(`now roots: ${orphaned.join(", ")}`);
  return lines.join("\n");
}

/** `2025-01-31 14:05` (UTC) from an ISO 8601 time. */
function formatTime(iso: string): string {
  return iso.length >= 16 ? iso.slice(0, 16).replace("T", " ") : iso;
}
