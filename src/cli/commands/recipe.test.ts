import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generateModel, type GenerateModelResult } from "../../forge/generate/generate-model.js";
import type { RecipeDocument } from "../../forge/recipe/recipe.js";
import { runCli, runCliInProcess } from "../../test-support/run-cli.js";
import type { BuildReport } from "./recipe.js";

// `small` models (rows of 256/768, so Q4_K_M is what it says); each CLI run takes well under a second.
let directory: string;
let home: string;
let other: string;
let sources: GenerateModelResult[];

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-recipe-cli-"));
  home = join(directory, "home");
  other = join(directory, "other");
  sources = await Promise.all([1, 2].map((seed) => generateModel({ preset: "small", seed, dtype: "f16", outPath: join(directory, `small-${seed}.gguf`) })));
  for (const [index, source] of sources.entries()) {
    for (const [store, name] of [[home, `small:s${index + 1}`], [other, undefined]] as const) {
      const imported = await runCli("import", source.path, "--home", store, ...(name === undefined ? [] : ["--name", name]));
      assert.equal(imported.code, 0, imported.stderr);
    }
  }
});
after(() => rm(directory, { recursive: true, force: true }));

async function storeFiles(store: string): Promise<string[]> {
  return [...(await readdir(join(store, "blobs"))), ...(await readdir(join(store, "tmp")))].sort();
}

/** `grove recipe REF` into a file, parsed. */
async function saveRecipe(ref: string, file: string): Promise<RecipeDocument> {
  const printed = await runCli("recipe", ref, "--home", home);
  assert.equal(printed.code, 0, printed.stderr);
  await writeFile(join(directory, file), printed.stdout);
  return JSON.parse(printed.stdout) as RecipeDocument;
}

describe("grove recipe and grove build", () => {
  it("prints a quantized fork's recipe; building it elsewhere gives the same digest, lineage and recipe", async () => {
    const quantized = await runCli("quantize", "small:s1", "--type", "Q4_K_M", "--name", "small:q4", "--home", home, "--json");
    assert.equal(quantized.code, 0, quantized.stderr);
    const digest = (JSON.parse(quantized.stdout) as { digest: string }).digest;
    const document = await saveRecipe("small:q4", "q4.json");
    assert.equal(document.grove_recipe, 1);
    assert.deepEqual(document.output, { digest, name: "small:q4", generalName: "grove-small-s1" });
    assert.equal(document.relation, "quantized");
    assert.deepEqual(document.parameters, { type: "Q4_K_M" });
    assert.deepEqual(document.inputs, [{ digest: sources[0]!.digest, role: "model", name: "small:s1" }]);
    const oneLine = await runCli("recipe", "small:q4", "--home", home, "--json");
    assert.deepEqual(JSON.parse(oneLine.stdout), document);
    assert.equal(oneLine.stdout.trim().includes("\n"), false);

    const built = await runCli("build", join(directory, "q4.json"), "--home", other, "--json");
    assert.equal(built.code, 0, built.stderr);
    assert.equal(built.stderr, "");
    const report = JSON.parse(built.stdout) as BuildReport;
    assert.equal(report.digest, digest);
    assert.equal(report.matches, true);
    assert.equal(report.created, true);
    assert.deepEqual(report.names, ["small:q4"]);
    assert.deepEqual(report.parents.map((parent) => [parent.digest, parent.relation, parent.recipe?.parameters]), [[sources[0]!.digest, "quantized", { type: "Q4_K_M" }]]);

    const again = await runCli("build", join(directory, "q4.json"), "--home", home);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`^already in the store  ${digest}  small:q4  3\\.\\d MB\\nlineage   quantized from small:s1 .*\\ndigest    matches the recipe \\(the model was already in the store\\)\\n$`));
  });

  it("prints a merge's recipe (one edge per parent, one recipe); building it gives the same digest", async () => {
    const merged = await runCli("merge", "small:s1", "small:s2", "--method", "linear", "--weights", "0.7,0.3", "--name", "small:mix", "--home", home, "--json");
    assert.equal(merged.code, 0, merged.stderr);
    const digest = (JSON.parse(merged.stdout) as { digest: string }).digest;
    const document = await saveRecipe("small:mix", "mix.json");
    assert.equal(document.relation, "merge");
    assert.deepEqual(document.parameters, { method: "linear", weights: [0.7, 0.3] });
    assert.deepEqual(document.inputs.map((input) => input.name), ["small:s1", "small:s2"]);
    const built = await runCli("build", join(directory, "mix.json"), "--home", other, "--name", "mine:mix");
    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stdout, new RegExp(`^rebuilt   ${digest}  mine:mix  11\\.\\d MB\\nlineage   merge from small-1:latest \\(sha256:.*\\nlineage   merge from small-2:latest \\(sha256:.*\\ndigest    matches the recipe\\n$`));
  });

  it("refuses malformed documents, missing fields, unknown tools and inputs not in the store, writing nothing", async () => {
    const document = JSON.parse(await readFile(join(directory, "q4.json"), "utf8")) as RecipeDocument;
    const { tool: _tool, ...noTool } = document;
    const cases: [string, string, RegExp][] = [
      ["malformed.json", '{"grove_recipe": 1', /^error \(invalid_parameter\): The recipe is not valid JSON: /],
      ["no-tool.json", JSON.stringify(noTool), /^error \(invalid_parameter\): Invalid recipe: field 'tool': missing\n$/],
      ["bad-digest.json", JSON.stringify({ ...document, output: { digest: "sha256:123" } }), /Invalid recipe: field 'output\.digest': expected 'sha256:' and 64 lower-case hex digits/],
      ["unknown-tool.json", JSON.stringify({ ...document, tool: "mergekit" }), /Unknown recipe tool 'mergekit'; Grove can rebuild: grove ggml-opt, grove merge, llama\.cpp llama_model_quantize, llama\.cpp llama_opt_epoch/],
      ["not-in-store.json", JSON.stringify({ ...document, inputs: [{ digest: `sha256:${"0".repeat(64)}`, role: "model" }] }), /The recipe's input sha256:0{64} is not in the store and the document has no recipe for it; pull or import it first/],
    ];
    const before = await storeFiles(other);
    for (const [file, text, pattern] of cases) {
      await writeFile(join(directory, file), text);
      const run = await runCliInProcess("build", join(directory, file), "--home", other);
      assert.equal(run.code, 1, file);
      assert.match(run.stderr, pattern, file);
    }
    const missingFile = await runCliInProcess("build", join(directory, "nope.json"), "--home", other);
    assert.match(missingFile.stderr, /Cannot read the recipe .*nope\.json: ENOENT/);
    const root = await runCliInProcess("recipe", "small:s1", "--home", home);
    assert.equal(root.code, 1);
    assert.match(root.stderr, /small:s1 has no recipe: it is a root \(no parents\)/);
    assert.deepEqual(await storeFiles(other), before);
  });

  it("exits 1 when the rebuild's digest differs, and warns about another tool version", async () => {
    const document = JSON.parse(await readFile(join(directory, "q4.json"), "utf8")) as RecipeDocument;
    await writeFile(join(directory, "q8.json"), JSON.stringify({ ...document, toolVersion: "llama.cpp b1", parameters: { type: "Q8_0" } }));
    const run = await runCli("build", join(directory, "q8.json"), "--home", other);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^warning: the recipe was made with llama\.cpp llama_model_quantize llama\.cpp b1, this Grove has .*; the digest may differ\n/);
    assert.match(run.stderr, new RegExp(`error \\(digest_mismatch\\): The rebuilt fork is sha256:\\w+, not the recipe's ${document.output.digest}: the recipe did not reproduce it`));
    assert.match(run.stdout, /^rebuilt   sha256:\w+  small-1:latest-q8_0  \d+\.\d MB\n.*\ndigest    differs from the recipe's sha256:/);
  });

  it("builds a merge whose parents are not in the store by rebuilding them first from the recipes the document carries, with the plan printed; --no-recursive refuses (issue 23)", async () => {
    for (const [name, weights] of [["small:left", "0.8,0.2"], ["small:right", "0.3,0.7"]] as const) {
      const merged = await runCli("merge", "small:s1", "small:s2", "--method", "linear", "--weights", weights, "--name", name, "--home", home);
      assert.equal(merged.code, 0, merged.stderr);
    }
    const top = await runCli("merge", "small:left", "small:right", "--method", "linear", "--weights", "0.5,0.5", "--name", "small:top", "--home", home, "--json");
    assert.equal(top.code, 0, top.stderr);
    const digest = (JSON.parse(top.stdout) as { digest: string }).digest;
    const document = await saveRecipe("small:top", "top.json");
    // Each parent carries its own recipe, whose inputs (the roots) carry none.
    assert.deepEqual(document.inputs.map((input) => [input.name, input.recipe?.output.name, input.recipe?.inputs.map((each) => each.recipe)]), [
      ["small:left", "small:left", [undefined, undefined]],
      ["small:right", "small:right", [undefined, undefined]],
    ]);

    // `other` holds only the roots: without the parents, --no-recursive refuses and writes nothing.
    const before = await storeFiles(other);
    const refused = await runCliInProcess("build", join(directory, "top.json"), "--home", other, "--no-recursive");
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error \(invalid_parameter\): The recipe's input sha256:\w+ \(small:left\), sha256:\w+ \(small:right\) is not in the store; build it first, or leave out --no-recursive/);
    assert.deepEqual(await storeFiles(other), before);

    const built = await runCli("build", join(directory, "top.json"), "--home", other, "--json");
    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stderr, /^plan: 2 of the recipe's parents are not in the store; building them from the recipes the document carries \(--no-recursive refuses instead\)\n  1\. rebuild the missing parent small:left \(\w{12}\): merge by grove merge\n  2\. rebuild the missing parent small:right .*\n  3\. then the fork small:top .*\n$/);
    const report = JSON.parse(built.stdout) as BuildReport;
    assert.equal(report.digest, digest);
    assert.equal(report.matches, true);
    assert.deepEqual(report.names, ["small:top"]);
    assert.deepEqual(report.rebuiltParents.map((parent) => [parent.digest, parent.matches, parent.names]), document.inputs.map((input) => [input.digest, true, [input.name]]));
    // Built once, the parents are in the store: a second build rebuilds nothing first.
    const again = await runCli("build", join(directory, "top.json"), "--home", other, "--json");
    assert.equal(again.stderr, "");
    assert.deepEqual((JSON.parse(again.stdout) as BuildReport).rebuiltParents, []);
  });
});
