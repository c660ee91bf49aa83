import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generateModel, type GenerateModelResult } from "../../forge/generate/generate-model.js";
import { validateGgufFile } from "../../gguf/gguf-validator.js";
import { ModelStore } from "../../store/model-store.js";
import { runCli, runCliInProcess } from "../../test-support/run-cli.js";
import { QUANTIZE_TOOL, type QuantizeReport } from "./quantize.js";

let directory: string;
let home: string;
let source: GenerateModelResult;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-quantize-cli-"));
  home = join(directory, "home");
  // `small`: rows of 256/768, so the K-quants apply to every matrix.
  source = await generateModel({ preset: "small", seed: 3, dtype: "f16", outPath: join(directory, "small.gguf") });
  const imported = await runCli("import", source.path, "--name", "small:f16", "--home", home);
  assert.equal(imported.code, 0, imported.stderr);
});
after(() => rm(directory, { recursive: true, force: true }));

describe("grove quantize", () => {
  it("stores a quantized fork with lineage and recipe; the same input and type give the same digest", async () => {
    const first = await runCli("quantize", "small:f16", "--type", "Q4_K_M", "--name", "small:q4", "--home", home, "--json");
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stderr, "");
    const report = JSON.parse(first.stdout) as QuantizeReport;
    assert.equal(report.type, "Q4_K_M");
    assert.equal(report.name, "small:q4");
    assert.equal(report.created, true);
    assert.ok(report.bitsPerWeight > 4.5 && report.bitsPerWeight < 5.5, `${report.bitsPerWeight}`);
    assert.equal(report.parents.length, 1);
    const [parent] = report.parents;
    assert.equal(parent!.digest, source.digest);
    assert.equal(parent!.relation, "quantized");
    assert.equal(parent!.recipe?.tool, QUANTIZE_TOOL);
    assert.match(parent!.recipe?.toolVersion ?? "", /^node-llama-cpp \S+ \/ llama\.cpp \S+$/);
    assert.deepEqual(parent!.recipe?.parameters, { type: "Q4_K_M" });
    assert.deepEqual(parent!.recipe?.inputs, [source.digest]);

    const again = await runCli("quantize", "small:f16", "--type", "q4_k_m", "--home", home);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`^already in the store  ${report.digest}  small:q4  3\\.\\d MB  \\d\\.\\d\\d bits/weight \\(Q4_K_M\\)\\nlineage   quantized from small:f16 `));

    const store = await ModelStore.open(home);
    try {
      const details = await store.show("small:q4");
      assert.equal(details.model.digest, report.digest);
      // general.file_type 15 is Q4_K_M, not the Q4_K of most of its tensors (issue 23).
      assert.equal(details.model.quantization, "Q4_K_M");
      assert.equal((await validateGgufFile(details.path)).parameterCount, source.parameterCount);
      assert.deepEqual(details.parents.map((edge) => [edge.parent, edge.relation, edge.recipe?.parameters]), [[source.digest, "quantized", { type: "Q4_K_M" }]]);
    } finally {
      await store.close();
    }
    assert.deepEqual(await readdir(join(home, "tmp")), []);
    const listed = await runCli("ls", "--home", home);
    assert.match(listed.stdout, /\nsmall:q4 +.* Q4_K_M /);
    const shown = await runCli("show", "small:q4", "--home", home);
    assert.match(shown.stdout, /\nquantization +Q4_K_M\n/);
  });

  it("refuses an unknown type and a missing model, storing nothing", async () => {
    const before = await readdir(join(home, "blobs"));
    const badType = await runCliInProcess("quantize", "small:f16", "--type", "Q7", "--home", home);
    assert.equal(badType.code, 1);
    assert.match(badType.stderr, /Unknown quantization type 'Q7'; valid types: F16, Q8_0, Q6_K, Q5_K_M, Q5_0, Q4_K_M, Q4_K_S, Q4_0, Q3_K_M, Q2_K/);
    const missing = await runCliInProcess("quantize", "nope:x", "--type", "Q8_0", "--home", home);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /'nope:x' does not exist/);
    assert.deepEqual(await readdir(join(home, "blobs")), before);
    assert.deepEqual(await readdir(join(home, "tmp")), []);
  });
});
