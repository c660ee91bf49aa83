import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli as runGrove } from "../../test-support/run-cli.js";
import { after, before, describe, it } from "node:test";
import { generateModel } from "../../forge/generate/generate-model.js";
import { writeGgufWithoutTensors, writeTinyLlama } from "../../test-support/gguf-test-fixtures.js";

let directory: string;
let model: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-inspect-"));
  model = (await generateModel({ preset: "test-tiny", seed: 5, outPath: join(directory, "tiny.gguf") })).path;
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("grove inspect", () => {
  it("prints the verdict, summary and metadata, and the tensors with --tensors", async () => {
    const run = await runGrove("inspect", model, "--tensors");
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    assert.match(run.stdout, /^file +.*tiny\.gguf\n/);
    assert.match(run.stdout, /\nverdict +valid: llama\.cpp can load it\n/);
    assert.match(run.stdout, /\narchitecture +llama\n/);
    assert.match(run.stdout, /\nparameters +164\.2K \(164160\)\n/);
    assert.match(run.stdout, /\nmetadata \(28 keys\)\nKEY +TYPE +VALUE\n/);
    assert.match(run.stdout, /\ntokenizer\.ggml\.tokens +arr\[str\] +512 items: .*, … \(sha256 [0-9a-f]{12}\)\n/);
    assert.match(run.stdout, /\ngrove\.generator\.seed +u64 +5\n/);
    assert.match(run.stdout, /\ntensors \(21\)\nNAME +SHAPE +TYPE +BYTES\ntoken_embd\.weight +64 × 512 +F16 +65536\n/);
  });

  it("prints JSON with --json, with the tensor table only when asked", async () => {
    const plain = JSON.parse((await runGrove("inspect", model, "--json")).stdout) as Record<string, unknown>;
    assert.equal(plain.tensors, undefined);
    assert.equal((plain.summary as { vocabularySize: number }).vocabularySize, 512);
    assert.equal((plain.metadata as unknown[]).length, 28);
    const full = JSON.parse((await runGrove("inspect", model, "--json", "--tensors")).stdout) as { tensors: { name: string; shape: number[] }[] };
    assert.equal(full.tensors.length, 21);
    assert.deepEqual(full.tensors[0].shape, [64, 512]);
  });

  it("exits 1 with a clear message for a missing file, a directory, a text file and an invalid model", async () => {
    const text = join(directory, "notes.txt");
    await writeFile(text, "just notes\n");
    const invalid = await writeTinyLlama(directory, "no-ff.gguf", { omit: ["llama.feed_forward_length"] });
    const cases: [string, RegExp][] = [
      [join(directory, "missing.gguf"), /error \(invalid_parameter\): No such file: .*missing\.gguf/],
      [directory, /error \(invalid_parameter\): .* is not a regular file/],
      [text, /error \(invalid_model_file\): notes\.txt: is not a GGUF file \(it does not start with 'GGUF'; it looks like text\)/],
      [invalid, /error \(invalid_model_file\): no-ff\.gguf: metadata key 'llama\.feed_forward_length' is missing/],
    ];
    for (const [path, pattern] of cases) {
      const run = await runGrove("inspect", path);
      assert.equal(run.code, 1, path);
      assert.match(run.stderr, pattern);
      // An invalid model still gets its report, so the reason stands next to its metadata.
      if (path === invalid) assert.match(run.stdout, /\nverdict +invalid: no-ff\.gguf: metadata key/);
      else assert.equal(run.stdout, "");
    }
  });

  it("calls a qwen3 without its attn_k_norm tensors invalid, naming the tensor, and import refuses it (issue 23)", async () => {
    const qwen3 = (await generateModel({ preset: "qwen3-tiny", seed: 7, outPath: join(directory, "qwen3.gguf") })).path;
    const edited = join(directory, "qwen3-no-k-norm.gguf");
    const dropped = await writeGgufWithoutTensors(qwen3, edited, (name) => /^blk\.\d+\.attn_k_norm\.weight$/.test(name));
    assert.deepEqual(dropped, ["blk.0.attn_k_norm.weight", "blk.1.attn_k_norm.weight"]);
    // The untouched copy passes: the rewrite alone breaks nothing.
    const copy = join(directory, "qwen3-copy.gguf");
    await writeGgufWithoutTensors(qwen3, copy, () => false);
    assert.equal((await runGrove("inspect", copy)).code, 0);

    const inspected = await runGrove("inspect", edited);
    assert.equal(inspected.code, 1);
    assert.match(inspected.stdout, /\nverdict +invalid: qwen3-no-k-norm\.gguf: tensor blk\.0\.attn_k_norm\.weight is missing\n/);
    const home = join(directory, "home");
    const imported = await runGrove("import", edited, "--name", "qwen3:edited", "--home", home);
    assert.equal(imported.code, 1);
    assert.match(imported.stderr, /error \(invalid_model_file\): .*tensor blk\.0\.attn_k_norm\.weight is missing/);
    assert.equal((await runGrove("ls", "--home", home, "--json")).stdout.includes("qwen3:edited"), false);
  });
});
