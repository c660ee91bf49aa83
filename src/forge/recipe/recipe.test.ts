import assert from "node:assert/strict";
import { copyFile, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Digest } from "../../core/digest.js";
import { DigestMismatchError, InvalidRequestError } from "../../core/errors.js";
import { digestOfFile } from "../../store/file-digest.js";
import { ModelStore } from "../../store/model-store.js";
import { generateModel } from "../generate/generate-model.js";
import { MERGE_TOOL, mergeFork } from "../merge/merge-fork.js";
import { QUANTIZE_TOOL, quantizeFork } from "../quantize/quantize-fork.js";
import { quantizerVersion } from "../quantize/quantize-model.js";
import { parseRecipe, recipeOf, RECIPE_FORMAT_VERSION, type RecipeDocument } from "./recipe.js";
import { rebuildableTools, rebuildFork, registerRebuilder } from "./rebuild.js";

// test-tiny models: merges and Q8_0 (32-element blocks) apply to every tensor, in milliseconds.
let directory: string;
let store: ModelStore;
let a: Digest;
let b: Digest;
let base: Digest;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-recipe-"));
  store = await ModelStore.open(join(directory, "home"));
  for (const [seed, name] of [[1, "tiny:a"], [2, "tiny:b"], [3, "tiny:base"]] as const) {
    const path = join(directory, `${seed}.gguf`);
    await generateModel({ preset: "test-tiny", seed, dtype: "f16", outPath: path });
    await store.importFile(path, { name });
  }
  [a, b, base] = await Promise.all(["tiny:a", "tiny:b", "tiny:base"].map(async (ref) => (await store.resolve(ref)).digest));
});
after(async () => {
  await store.close();
  await rm(directory, { recursive: true, force: true });
});

/** The store's blobs and temp files, to check a refused build wrote nothing. */
async function storeFiles(): Promise<string[]> {
  return [...(await readdir(join(store.home, "blobs"))), ...(await readdir(join(store.home, "tmp")))].sort();
}

describe("parseRecipe", () => {
  const valid = (): Record<string, unknown> => ({
    grove_recipe: 1,
    output: { digest: `sha256:${"a".repeat(64)}`, name: "tiny:q8" },
    relation: "quantized",
    tool: QUANTIZE_TOOL,
    toolVersion: "x",
    parameters: { type: "Q8_0" },
    inputs: [{ digest: `sha256:${"b".repeat(64)}`, role: "model" }],
  });
  const refuses = (document: unknown, pattern: RegExp) =>
    assert.throws(() => parseRecipe(typeof document === "string" ? document : JSON.stringify(document)), (error: unknown) => error instanceof InvalidRequestError && pattern.test(error.message));

  it("reads a valid document", () => {
    assert.deepEqual(parseRecipe(JSON.stringify(valid())), valid());
  });

  it("names the bad field", () => {
    refuses("{\"grove_recipe\": 1,", /^The recipe is not valid JSON: /);
    refuses([1], /must be a JSON object/);
    const { tool: _tool, ...noTool } = valid();
    refuses(noTool, /^Invalid recipe: field 'tool': missing$/);
    refuses({ ...valid(), grove_recipe: 2 }, /field 'grove_recipe': expected 1/);
    refuses({ ...valid(), relation: "copied" }, /field 'relation': .*quantized/);
    refuses({ ...valid(), inputs: [{ digest: "sha256:abc", role: "model" }] }, /field 'inputs\[0\]\.digest': expected 'sha256:' and 64/);
    refuses({ ...valid(), inputs: [{ digest: `sha256:${"b".repeat(64)}`, role: "weights" }] }, /field 'inputs\[0\]\.role'/);
    refuses({ ...valid(), inputs: [] }, /field 'inputs': expected at least one input/);
    refuses({ ...valid(), inputs: [{ digest: `sha256:${"b".repeat(64)}`, role: "data" }] }, /field 'inputs': expected at least one input with role 'model'/);
    refuses({ ...valid(), toolversion: "x" }, /Unrecognized key.*toolversion/);
    refuses({ ...valid(), output: { digest: `sha256:${"a".repeat(64)}`, names: [] } }, /field 'output'.*names/);
  });
});

describe("recipeOf and rebuildFork", () => {
  it("rebuilds a quantized fork to the same digest, with the same lineage and recipe", async () => {
    const fork = await quantizeFork(store, { model: "tiny:a", type: "Q8_0", name: "tiny:q8", threads: 1 });
    const document = await recipeOf(store, "tiny:q8");
    assert.deepEqual(document, {
      grove_recipe: RECIPE_FORMAT_VERSION,
      output: { digest: fork.import.model.digest, name: "tiny:q8", generalName: "grove-test-tiny-s1" },
      relation: "quantized",
      tool: QUANTIZE_TOOL,
      toolVersion: quantizerVersion(),
      parameters: { type: "Q8_0" },
      inputs: [{ digest: a, role: "model", name: "tiny:a" }],
    });
    const warnings: string[] = [];
    const rebuilt = await rebuildFork(store, document, { threads: 1, onWarning: (message) => warnings.push(message) });
    assert.equal(rebuilt.matches, true);
    assert.equal(rebuilt.import.created, false);
    assert.deepEqual(warnings, []);
    assert.deepEqual(await recipeOf(store, "tiny:q8"), document);
    assert.deepEqual(await readdir(join(store.home, "tmp")), []);
  });

  it("rebuilds a task-arithmetic merge (its base is an input) and warns about another tool version", async () => {
    const merged = await mergeFork(store, { models: ["tiny:a", "tiny:b"], method: "task-arithmetic", base: "tiny:base", weights: [0.5, 0.25], name: "tiny:ta" });
    const document = await recipeOf(store, "tiny:ta");
    assert.equal(document.tool, MERGE_TOOL);
    assert.equal(document.relation, "merge");
    assert.deepEqual(document.parameters, { method: "task-arithmetic", weights: [0.5, 0.25], base });
    assert.deepEqual(document.inputs.map((input) => [input.digest, input.role]), [[a, "model"], [b, "model"], [base, "model"]]);
    // Rebuilt elsewhere: a fresh store holding only the inputs.
    const other = await ModelStore.open(join(directory, "other"));
    try {
      for (const digest of [a, b, base]) await other.importFile(store.blobs.pathOf(digest));
      const warnings: string[] = [];
      const rebuilt = await rebuildFork(other, { ...document, toolVersion: "0.0.1" }, { onWarning: (message) => warnings.push(message) });
      assert.equal(rebuilt.import.model.digest, merged.model.digest);
      assert.equal(rebuilt.matches, true);
      assert.equal(rebuilt.import.created, true);
      assert.equal(rebuilt.import.name, "tiny:ta");
      assert.match(warnings.join(), /made with grove merge 0\.0\.1, this Grove has \d+\.\d+\.\d+; the digest may differ/);
      assert.deepEqual((await other.parentsOf(merged.model.digest)).map((edge) => [edge.parent, edge.relation, edge.recipe?.toolVersion]).sort(), [
        [a, "merge", "0.0.1"],
        [b, "merge", "0.0.1"],
        [base, "merge", "0.0.1"],
      ].sort());
    } finally {
      await other.close();
    }
  });

  it("stores a rebuild that differs under a name of its own (never the recipe's), recorded with the tool version that made it", async () => {
    const document = await recipeOf(store, "tiny:q8");
    const rebuilt = await rebuildFork(store, { ...document, parameters: { type: "Q4_0" } }, { threads: 1 });
    assert.equal(rebuilt.matches, false);
    assert.equal(rebuilt.expected, document.output.digest);
    // Every model in the store has a name: the parent's plus the quantization, not the recipe's output name.
    assert.equal(rebuilt.import.name, "tiny:a-q4_0");
    assert.equal((await store.resolve("tiny:q8")).digest, document.output.digest);
    assert.equal(rebuilt.import.parents[0]?.recipe?.toolVersion, quantizerVersion());
  });

  it("refuses a root, an unknown tool, a missing input and bad parameters, writing nothing", async () => {
    await assert.rejects(recipeOf(store, "tiny:a"), /tiny:a has no recipe: it is a root/);
    const document = await recipeOf(store, "tiny:q8");
    const before = await storeFiles();
    await assert.rejects(rebuildFork(store, { ...document, tool: "llama-quantize" }), /Unknown recipe tool 'llama-quantize'; Grove can rebuild: .*grove merge.*llama\.cpp llama_model_quantize/);
    const missing = `sha256:${"c".repeat(64)}` as Digest;
    await assert.rejects(rebuildFork(store, { ...document, inputs: [{ digest: missing, role: "model", name: "gone:x" }] }), new RegExp(`The recipe's input ${missing} \\(gone:x\\) is not in the store`));
    await assert.rejects(rebuildFork(store, { ...document, parameters: { type: "Q8_0", dither: 1 } }), /does not know the parameter 'dither'/);
    await assert.rejects(rebuildFork(store, { ...document, parameters: { type: "Q8_0", imatrix: "x" } }), /with an importance matrix has one model input, one data input/);
    await assert.rejects(rebuildFork(store, { ...document, parameters: { type: "Q9" } }), /Unknown quantization type 'Q9'/);
    assert.deepEqual(await storeFiles(), before);
  });

  it("takes rebuilders registered later, with data inputs supplied by file and checked by digest", async () => {
    // A stand-in for the fine-tune: inputs [parent, data], output = a file made beforehand.
    const tool = "test data-tool";
    const made = join(directory, "made.gguf");
    await generateModel({ preset: "test-tiny", seed: 9, dtype: "f16", outPath: made });
    registerRebuilder(tool, { version: () => "1", rebuild: async (_store, _recipe, context) => copyFile(made, context.output) });
    assert.ok(rebuildableTools().includes(tool));
    const data = join(directory, "train.jsonl");
    await writeFile(data, '{"text":"hello"}\n');
    const dataDigest = await digestOfFile(data);
    const recipe = { tool, toolVersion: "1", parameters: { epochs: 1 }, inputs: [a, dataDigest] };
    const child = await store.importFile(made, { name: "tiny:tuned", base: "tiny:a", relation: "finetune", recipe });
    const document: RecipeDocument = await recipeOf(store, "tiny:tuned");
    assert.deepEqual(document.inputs, [{ digest: a, role: "model", name: "tiny:a" }, { digest: dataDigest, role: "data" }]);

    const before = await storeFiles();
    await assert.rejects(rebuildFork(store, document), new RegExp(`needs data input ${dataDigest}; pass the file with --data PATH`));
    const wrong = join(directory, "wrong.jsonl");
    await writeFile(wrong, "{}\n");
    await assert.rejects(rebuildFork(store, document, { data: [wrong] }), (error: unknown) => error instanceof DigestMismatchError && /is none of the recipe's data inputs/.test(error.message));
    assert.deepEqual(await storeFiles(), before);

    const rebuilt = await rebuildFork(store, document, { data: [data] });
    assert.equal(rebuilt.matches, true);
    assert.equal(rebuilt.import.model.digest, child.model.digest);
    assert.deepEqual(rebuilt.import.parents.map((edge) => [edge.parent, edge.relation, edge.recipe]), [[a, "finetune", recipe]]);
  });
});
