import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { generateModel } from "../../forge/generate/generate-model.js";
import { readGgufHeader } from "../../gguf/gguf-header-reader.js";
import { ModelStore } from "../../store/model-store.js";
import { runCli, runCliInProcess } from "../../test-support/run-cli.js";
import type { ImportReport } from "../import-report.js";

let directory: string;
let home: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-merge-cli-"));
  home = join(directory, "home");
  const store = await ModelStore.open(home);
  try {
    for (const seed of [1, 2]) {
      const model = await generateModel({ preset: "test-tiny", seed, dtype: "f16", outPath: join(directory, `tiny-${seed}.gguf`) });
      await store.importFile(model.path, { name: `tiny:s${seed}` });
    }
  } finally {
    await store.close();
  }
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("grove merge", () => {
  it("stores a merge fork of both inputs with its recipe, and the result loads and generates", async () => {
    const run = await runCli("merge", "tiny:s1", "tiny:s2", "--method", "slerp", "--weights", "0.5,0.5", "--name", "tiny:merged", "--home", home, "--json");
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as ImportReport;
    assert.equal(report.name, "tiny:merged");
    assert.equal(report.created, true);

    const store = await ModelStore.open(home);
    let path: string;
    try {
      const merged = await store.show("tiny:merged");
      path = merged.path;
      const inputs = [(await store.resolve("tiny:s1")).digest, (await store.resolve("tiny:s2")).digest];
      assert.equal(merged.parents.length, 2);
      assert.deepEqual(merged.parents.map((edge) => edge.parent).sort(), [...inputs].sort());
      const version = (JSON.parse(await readFile(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
      for (const edge of merged.parents) {
        assert.equal(edge.relation, "merge");
        assert.deepEqual(edge.recipe, { tool: "grove merge", toolVersion: version, parameters: { method: "slerp", weights: [0.5, 0.5] }, inputs });
      }
    } finally {
      await store.close();
    }
    assert.equal((await readGgufHeader(path)).metadata.get("general.name")?.value, "tiny:merged");

    const llama = await getLlama({ gpu: false, maxThreads: 1, logLevel: LlamaLogLevel.error });
    try {
      const model = await llama.loadModel({ modelPath: path });
      const context = await model.createContext({ threads: 1, contextSize: 64 });
      const generated: number[] = [];
      for await (const token of context.getSequence().evaluate(model.tokenize("The grove"))) {
        generated.push(token);
        if (generated.length === 2) break;
      }
      assert.equal(generated.length, 2);
      await context.dispose();
      await model.dispose();
    } finally {
      await llama.dispose();
    }
  });

  it("explains what it refuses and exits with 1", async () => {
    const cases: [string[], RegExp][] = [
      [["tiny:s1", "tiny:s2", "--method", "average"], /error \(invalid_parameter\): Unknown --method 'average'; valid: linear, slerp, task-arithmetic/],
      [["tiny:s1", "tiny:s2", "--method", "linear", "--weights", "0.5,x"], /--weights must be comma-separated finite numbers, got '0\.5,x'/],
      [["tiny:s1", "tiny:s2", "--method", "linear", "--weights", "1,1,1"], /Got 3 weights for 2 input models/],
      [["tiny:s1", "tiny:s2", "--method", "task-arithmetic"], /task-arithmetic needs a base model/],
      [["tiny:s1", "--scale", "2", "--method", "linear"], /--scale goes with --adapter/],
      [["--adapter", "tiny:s2", "--method", "linear"], /--adapter takes no --method, --weights or --base/],
      [["--adapter", "tiny:s2", "tiny:s1", "tiny:s1"], /--adapter bakes into one model, got 2/],
      [["--adapter", "tiny:s2", "--scale", "x"], /--scale must be a number, got 'x'/],
      [["--adapter", "tiny:s2"], /tiny:s2 is not an adapter fork of a model in the store; name the model to bake it into/],
      [["--adapter", "nope:x"], /The model .nope:x. does not exist/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCliInProcess("merge", ...args, "--home", home);
      assert.equal(run.code, 1, args.join(" "));
      assert.match(run.stderr, pattern);
    }
  });
});
