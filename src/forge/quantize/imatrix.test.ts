import assert from "node:assert/strict";
import { copyFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { InvalidRequestError } from "../../core/errors.js";
import { digestOfFile } from "../../store/file-digest.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { createTestModel, type TestModel } from "../../test-support/grove-fixture.js";
import { ModelStore } from "../../store/model-store.js";
import { runCliInProcess } from "../../test-support/run-cli.js";
import { recipeOf } from "../recipe/recipe.js";
import { rebuildFork } from "../recipe/rebuild.js";
import { readImportanceMatrix, writeSyntheticImportanceMatrix } from "./imatrix.js";
import { quantizeFork } from "./quantize-fork.js";
import { quantizeModel } from "./quantize-model.js";

describe("quantizing with an importance matrix", () => {
  let small: TestModel;
  let tiny: TestModel;
  let matrix: string;

  before(async () => {
    // The i-quants need rows of 256: the `small` preset (256 wide) has them.
    small = await createTestModel("small", 3);
    tiny = await createTestModel("test-tiny", 3);
    matrix = join(small.directory, "small.imatrix.gguf");
    await writeSyntheticImportanceMatrix(small.path, matrix);
  });
  after(async () => {
    await small.cleanup();
    await tiny.cleanup();
  });

  test("reads llama-imatrix's GGUF format, normalised by counts", async () => {
    const read = await readImportanceMatrix(matrix);
    assert.deepEqual(read.datasets, ["grove-synthetic"]);
    assert.equal(read.chunkCount, 4);
    const q = read.entries.get("blk.0.attn_q.weight");
    assert.equal(q?.length, 256);
    assert.ok(q!.every((value) => value > 0.04 && value < 4.1), "sums / counts are the per-column importances");
    assert.ok(!read.entries.has("token_embd.weight"));
  });

  test("IQ2_XXS is refused without a matrix and made with one: loadable, smaller than Q4_K_M, reproducible", async () => {
    const output = join(small.directory, "iq2.gguf");
    await assert.rejects(quantizeModel({ input: small.path, output, type: "IQ2_XXS" }), (error: unknown) => error instanceof InvalidRequestError && /IQ2_XXS needs an importance matrix/.test(error.message));
    await quantizeModel({ input: small.path, output, type: "iq2_xxs", imatrix: matrix });
    const again = join(small.directory, "iq2-again.gguf");
    await quantizeModel({ input: small.path, output: again, type: "IQ2_XXS", imatrix: matrix });
    assert.equal(await digestOfFile(output), await digestOfFile(again));
    const header = await readGgufHeader(output);
    assert.equal(header.metadata.get("quantize.imatrix.file")?.value, "small.imatrix.gguf");
    assert.equal(header.metadata.get("quantize.imatrix.entries_count")?.value, 43);
    assert.ok(header.tensors.some((tensor) => tensor.type === 16 /* GGML_TYPE_IQ2_XXS */));

    const q4 = join(small.directory, "q4.gguf");
    await quantizeModel({ input: small.path, output: q4, type: "Q4_K_M" });
    assert.ok((await stat(output)).size < (await stat(q4)).size);

    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: output });
    try {
      assert.ok(model.tokenize("the grove").length > 0);
    } finally {
      await model.dispose();
    }
  });

  test("the matrix is a data input of the recipe; grove build with it (under any file name) gives the same digest", async () => {
    const store = await ModelStore.open(join(small.directory, "home"));
    try {
      await store.importFile(small.path, { name: "small:f16" });
      const made = await quantizeFork(store, { model: "small:f16", type: "IQ4_XS", imatrix: matrix, name: "small:iq4" });
      const recipe = await recipeOf(store, "small:iq4");
      assert.deepEqual(recipe.parameters, { type: "IQ4_XS", imatrix: "small.imatrix.gguf" });
      assert.deepEqual(recipe.inputs.map((input) => input.role), ["model", "data"]);
      const renamed = join(small.directory, "renamed-matrix.gguf");
      await copyFile(matrix, renamed);
      const rebuilt = await rebuildFork(store, recipe, { data: [renamed] });
      assert.equal(rebuilt.matches, true);
      assert.equal(rebuilt.import.model.digest, made.import.model.digest);
    } finally {
      await store.close();
    }
    const cli = await runCliInProcess("quantize", "small:f16", "--type", "IQ2_XS", "--home", join(small.directory, "home"));
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /IQ2_XS needs an importance matrix \(--imatrix FILE/);
  });

  test("a matrix for another model, or a file that is not one, is refused and nothing is written", async () => {
    const tinyMatrix = join(tiny.directory, "tiny.imatrix.gguf");
    await writeSyntheticImportanceMatrix(tiny.path, tinyMatrix);
    const output = join(small.directory, "refused.gguf");
    await assert.rejects(quantizeModel({ input: small.path, output, type: "IQ4_XS", imatrix: tinyMatrix }), /computed for another model/);
    await assert.rejects(quantizeModel({ input: small.path, output, type: "IQ4_XS", imatrix: small.path }), /lacks imatrix.datasets/);
    const text = join(small.directory, "notes.txt");
    await writeFile(text, "not a matrix");
    await assert.rejects(quantizeModel({ input: small.path, output, type: "IQ4_XS", imatrix: text }), /cannot be read as GGUF/);
    await assert.rejects(stat(output), { code: "ENOENT" });
    await assert.rejects(stat(`${output}.partial`), { code: "ENOENT" });
  });
});
