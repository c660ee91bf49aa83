import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { Digest } from "../../core/digest.js";
import { DigestMismatchError, InvalidRequestError } from "../../core/errors.js";
import { formatRecipe, parseRecipe, recipeOf, type RecipeDocument } from "../../forge/recipe/recipe.js";
import { rebuildWithParents } from "../../forge/recipe/rebuild.js";
// For its side effect: the fine-tune registers its rebuilders (both trainers) with rebuild.ts.
import "../../forge/finetune/finetune-job.js";
import { formatImportReport, importReport, type ImportReport } from "../import-report.js";
import { HOME_FLAG, HOME_FLAG_HELP, withStore } from "../store-access.js";

interface RecipeFlags {
  home?: string;
  json?: boolean;
}

interface BuildFlags {
  name?: string;
  data: string[];
  recursive: boolean;
  home?: string;
  json?: boolean;
}

/** What `grove build --json` prints: the import report plus how the digest compares. */
export interface BuildReport extends ImportReport {
  /** The digest the recipe promised. */
  expected: Digest;
  /** True when the rebuilt fork has the recipe's digest. */
  matches: boolean;
  /** Things that may make the digest differ, e.g. another tool version. */
  warnings: string[];
  /** The parents missing from the store that were rebuilt first, from the recipes the document carries. */
  rebuiltParents: Omit<BuildReport, "rebuiltParents">[];
}

/**
 * Registers `grove recipe REF` (prints the recipe document of a fork) and `grove build FILE`
 * (re-creates the fork a recipe document describes, stores it with the same lineage and recipe,
 * and fails when its digest is not the recipe's).
 *
 * @example
 * grove recipe small:q4 > small-q4.recipe.json
 * grove build small-q4.recipe.json --home /tmp/other-store
 * grove build tuned.recipe.json --data train.jsonl --json
 */
export function registerRecipeCommands(program: Command): void {
  program
    .command("recipe")
    .description("print the recipe of a fork: the document `grove build` makes it again from")
    .argument("<ref>", "name, digest or unique digest prefix of the fork")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option("--json", "print the document on one line")
    .action(async (ref: string, flags: RecipeFlags) => {
      const document = await withStore(flags.home, (store) => recipeOf(store, ref));
      process.stdout.write(flags.json ? `${JSON.stringify(document)}\n` : formatRecipe(document));
    });

  program
    .command("build")
    .description("re-create a fork from a recipe document (from `grove recipe`) and check its digest")
    .argument("<file>", "recipe document (JSON), or - for standard input")
    .option("--name <family:tag>", "name to point at the rebuilt fork (default: the recipe's name, when free and the digest matches)")
    .option("--data <path>", "a data input of the recipe (training data), checked against its digest; repeat for several", (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option("--no-recursive", "refuse when a parent is missing from the store, instead of rebuilding it first from the recipe the document carries")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option("--json", "print the result as JSON")
    .action(async (file: string, flags: BuildFlags) => {
      const recipe = parseRecipe(await readRecipeText(file));
      const report: BuildReport = await withStore(flags.home, async (store) => {
        const result = await rebuildWithParents(store, recipe, {
          ...(flags.name === undefined ? {} : { name: flags.name }),
          data: flags.data.map((path) => resolve(path)),
          recursive: flags.recursive,
          onPlan: (steps) => void (steps.length > 1 && process.stderr.write(formatBuildPlan(steps))),
          onWarning: (message) => void process.stderr.write(`warning: ${message}\n`),
        });
        const rebuiltParents = await Promise.all(
          result.parents.map(async (parent) => ({ ...(await importReport(store, parent.import)), expected: parent.expected, matches: parent.matches, warnings: parent.warnings })),
        );
        return { ...(await importReport(store, result.import)), expected: result.expected, matches: result.matches, warnings: result.warnings, rebuiltParents };
      });
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatBuildReport(report));
      if (!report.matches) {
        throw new DigestMismatchError(
          `The rebuilt fork is ${report.digest}, not the recipe's ${report.expected}: the recipe did not reproduce it (stored for comparison: grove diff ${report.expected.slice(0, 19)} ${report.digest.slice(0, 19)})`,
          report.expected,
          report.digest,
        );
      }
    });
}

/** The steps of a build that rebuilds parents first, one line each, for stderr before it starts. */
export function formatBuildPlan(steps: readonly RecipeDocument[]): string {
  const lines = steps.map((step, index) => {
    const what = index === steps.length - 1 ? "then the fork" : "rebuild the missing parent";
    return `  ${index + 1}. ${what} ${step.output.name ?? step.output.digest.slice(0, 19)} (${step.output.digest.slice(7, 19)}): ${step.relation} by ${step.tool}`;
  });
  return `plan: ${steps.length - 1} of the recipe's parents ${steps.length === 2 ? "is" : "are"} not in the store; building them from the recipes the document carries (--no-recursive refuses instead)\n${lines.join("\n")}\n`;
}

/** The import report's lines plus `digest  matches the recipe` (or the mismatch). */
export function formatBuildReport(report: BuildReport): string {
  const lines = formatImportReport(report).replace(/^imported/, "rebuilt ");
  const verdict = report.matches ? `matches the recipe${report.created ? "" : " (the model was already in the store)"}` : `differs from the recipe's ${report.expected}`;
  return `${lines}digest    ${verdict}\n`;
}

async function readRecipeText(file: string): Promise<string> {
  if (file === "-") {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }
  try {
    return await readFile(resolve(file), "utf8");
  } catch (error) {
    throw new InvalidRequestError(`Cannot read the recipe ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { param: "file", cause: error });
  }
}
