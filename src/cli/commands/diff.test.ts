import assert from "node:assert/strict";
import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli as runGrove } from "../../test-support/run-cli.js";
import { after, before, describe, it } from "node:test";
import { generateModel } from "../../forge/generate/generate-model.js";
import type { GgufDiff } from "../../gguf/gguf-diff.js";

let directory: string;
const files = { f16: "", q8: "", copy: "" };
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-diff-"));
  files.f16 = (await generateModel({ preset: "test-tiny", seed: 4, dtype: "f16", outPath: join(directory, "f16.gguf") })).path;
  files.q8 = (await generateModel({ preset: "test-tiny", seed: 4, dtype: "q8_0", outPath: join(directory, "q8.gguf") })).path;
  files.copy = join(directory, "copy.gguf");
  await copyFile(files.f16, files.copy);
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("grove diff", () => {
  it("prints metadata differences and a per-tensor table", async () => {
    const run = await runGrove("diff", files.f16, files.q8);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "");
    assert.match(run.stdout, /^A  .*f16\.gguf \(342\.2 KB, 28 metadata keys, 21 tensors\)\nB  .*q8\.gguf \(188\.7 KB, 29 metadata keys, 21 tensors\)\n\ndifferent\n/);
    assert.match(run.stdout, /\nmetadata: 1 changed, 1 added in B, 0 removed from A\nSTATUS +KEY +A +B\nchanged +general\.file_type +u32 1 +u32 7\nadded +general\.quantization_version +- +u32 2\n/);
    assert.match(run.stdout, /\ntensors: 16 changed, 5 same, 0 only in A, 0 only in B\nNAME +SHAPE A +SHAPE B +TYPE A +TYPE B +STATUS\n/);
    assert.match(run.stdout, /\ntoken_embd\.weight +64 × 512 +64 × 512 +F16 +Q8_0 +changed \(type\)\n/);
    assert.match(run.stdout, /\noutput_norm\.weight +64 +64 +F32 +F32 +same\n/);
  });

  it("prints JSON with --json and finds a copy identical", async () => {
    const run = await runGrove("diff", files.f16, files.copy, "--json");
    assert.equal(run.code, 0, run.stderr);
    const diff = JSON.parse(run.stdout) as GgufDiff;
    assert.equal(diff.identical, true);
    assert.deepEqual(diff.tensorCounts, { same: 21, changed: 0, "only-in-a": 0, "only-in-b": 0 });
    assert.ok(diff.tensors.every((tensor) => tensor.digestA === tensor.digestB && /^[0-9a-f]{64}$/.test(tensor.digestA ?? "")));
    const human = await runGrove("diff", files.f16, files.copy);
    assert.match(human.stdout, /\n\nidentical: same metadata and tensor data\n/);
  });

  it("exits 1 with a clear message for a missing or non-GGUF file", async () => {
    const text = join(directory, "notes.txt");
    await writeFile(text, "just notes\n");
    const missing = await runGrove("diff", files.f16, join(directory, "missing.gguf"));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error \(invalid_parameter\): No such file: .*missing\.gguf/);
    const notGguf = await runGrove("diff", text, files.f16);
    assert.equal(notGguf.code, 1);
    assert.match(notGguf.stderr, /error \(invalid_model_file\): notes\.txt: is not a GGUF file/);
    assert.equal(notGguf.stdout, "");
  });
});
