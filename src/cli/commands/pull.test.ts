import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generateModel, type GenerateModelResult } from "../../forge/generate/generate-model.js";
import { generateAdapter } from "../../forge/generate/generate-adapter.js";
import { FakeHub } from "../../test-support/fake-hub.js";
import { ModelStore } from "../../store/model-store.js";
import { runCli, runCliInProcess } from "../../test-support/run-cli.js";
import type { PullReport } from "./pull.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
let directory: string;
let hub: FakeHub;
/** seed 1 f16 (a base on the hub), seed 1 q8_0 (its quant), seed 2 f16 (a fine-tune of a base imported locally), seed 3 f16 (a base that is nowhere). */
const files = {} as Record<"hubBase" | "hubQuant" | "localBase" | "tuned" | "orphan", GenerateModelResult>;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-pull-cli-"));
  const make = (name: string, seed: number, dtype: "f16" | "q8_0") => generateModel({ preset: "test-tiny", seed, dtype, outPath: join(directory, `${name}.gguf`) });
  files.hubBase = await make("hub-base", 1, "f16");
  files.hubQuant = await make("hub-quant", 1, "q8_0");
  files.localBase = await make("local-base", 4, "f16");
  files.tuned = await make("tuned", 2, "f16");
  files.orphan = await make("orphan", 3, "f16");
  await generateAdapter({ basePath: files.hubBase.path, seed: 5, outPath: join(directory, "lora.gguf") });
  const file = async (path: string, result: GenerateModelResult) => ({ path, content: await readFile(result.path) });
  const card = (...lines: string[]) => `---\n${lines.join("\n")}\n---\n# Model\n`;
  hub = await FakeHub.start({
    cdn: true,
    repos: [
      { repo: "acme/base-1b", commit: COMMIT, readme: card("license: apache-2.0"), files: [await file("base.f16.gguf", files.hubBase)] },
      { repo: "acme/base-1b-GGUF", readme: card("base_model: acme/base-1b", "base_model_relation: quantized"), files: [await file("base.Q8_0.gguf", files.hubQuant)] },
      // Its base is found by name (a local import called `local-base`); no relation → finetune.
      { repo: "acme/tuned-GGUF", readme: card("base_model:", "- Acme/Local-Base", "license: mit"), files: [await file("tuned.gguf", files.tuned)] },
      { repo: "acme/orphan-GGUF", readme: card("base_model: acme/not-here", "base_model_relation: finetune"), files: [await file("orphan.gguf", files.orphan)] },
      // An adapter whose card names its base but no relation: the file says it is an adapter.
      { repo: "acme/base-1b-lora", readme: card("base_model: acme/base-1b"), files: [{ path: "lora.gguf", content: await readFile(join(directory, "lora.gguf")) }] },
      { repo: "acme/text-GGUF", files: [{ path: "text.gguf", content: Buffer.from("plain text, not a model\n".repeat(100)) }] },
    ],
  });
});
after(async () => {
  await hub?.close();
  await rm(directory, { recursive: true, force: true });
});

const pull = (home: string, ...args: string[]) => runCli("pull", ...args, "--endpoint", hub.endpoint, "--home", home);

describe("grove pull", () => {
  it("pulls with the source and lineage from the card, notes a base not in the store, and pulls nothing twice", async () => {
    const home = join(directory, "home");

    const orphan = await pull(home, "hf:acme/orphan-GGUF", "--name", "orphan:f16");
    assert.equal(orphan.code, 0, orphan.stderr);
    assert.equal(orphan.stderr, `note: the base model "acme/not-here" is not in the store; it is recorded in the model's card as base_model\n`);
    assert.match(orphan.stdout, new RegExp(`^pulled    hf:acme/orphan-GGUF/orphan\\.gguf@c{40} \\(342\\.2 KB downloaded\\)\\nimported  ${files.orphan.digest}  orphan:f16  342\\.2 KB\\nlineage   none \\(a root\\)\\n$`));

    const base = await pull(home, "hf:acme/base-1b/base.f16.gguf", "--name", "base-1b:f16", "--json");
    assert.equal(base.code, 0, base.stderr);
    assert.equal(base.stderr, "");
    const baseReport = JSON.parse(base.stdout) as PullReport;
    assert.equal(baseReport.digest, files.hubBase.digest);
    assert.equal(baseReport.source, `hf:acme/base-1b/base.f16.gguf@${COMMIT}`);
    assert.equal(baseReport.model.license, "apache-2.0");
    assert.equal(baseReport.alreadyStored, false);
    assert.equal(baseReport.downloadedBytes, files.hubBase.fileSize);

    // Linked through the base's recorded source (its name is not `base-1b`).
    const quant = await pull(home, "hf:acme/base-1b-GGUF", "--name", "base-1b:q8");
    assert.equal(quant.code, 0, quant.stderr);
    assert.equal(quant.stderr, "");
    assert.match(quant.stdout, new RegExp(`\\nlineage   quantized from base-1b:f16 \\(sha256:${files.hubBase.digest.slice(7, 19)}…\\)\\n$`));

    // Linked through a local name; a card without base_model_relation means finetune.
    assert.equal((await runCli("import", files.localBase.path, "--name", "local-base", "--home", home)).code, 0);
    const tuned = await pull(home, "hf:acme/tuned-GGUF");
    assert.equal(tuned.code, 0, tuned.stderr);
    assert.match(tuned.stdout, /\nlineage   finetune from local-base:latest \(sha256:[0-9a-f]{12}…\)\n$/);

    const getsBefore = hub.fileRequests("GET").length;
    const again = await pull(home, "hf:acme/base-1b-GGUF", "--name", "base-1b:again");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^pulled    hf:acme\/base-1b-GGUF\/base\.Q8_0\.gguf@c{40} \(nothing downloaded\)\nalready in the store  sha256:[0-9a-f]{64}  base-1b:again, base-1b:q8  188\.7 KB\nlineage   quantized from base-1b:f16 /);
    assert.equal(hub.fileRequests("GET").length, getsBefore, "a second pull downloads nothing");

    const store = await ModelStore.open(home);
    try {
      const models = new Map((await store.list()).map((model) => [model.digest, model]));
      assert.deepEqual(models.get(files.orphan.digest)!.card, {
        name: "grove-test-tiny-s3",
        source: "hf:acme/orphan-GGUF/orphan.gguf@" + "c".repeat(40),
        base_model: ["acme/not-here"],
        base_model_relation: "finetune",
      });
      assert.deepEqual(models.get(files.tuned.digest)!.card.base_model, ["Acme/Local-Base"]);
      assert.equal(models.get(files.tuned.digest)!.license, "mit");
      const tree = (await store.tree()).map((node) => [node.names, node.children.map((child) => [child.relation, child.names])]);
      assert.deepEqual(tree, [
        [["orphan:f16"], []],
        [["base-1b:f16"], [["quantized", ["base-1b:again", "base-1b:q8"]]]],
        // Pulled without --name: named from the hub path, as Ollama's hf.co/owner/repo.
        [["local-base:latest"], [["finetune", ["acme/tuned-gguf:latest"]]]],
      ]);
      const verify = await store.verify();
      assert.deepEqual([verify.checked, verify.mismatched, verify.missing, verify.unreferenced], [5, [], [], []]);
      assert.deepEqual(await readdir(store.blobs.tempDirectory), []);
    } finally {
      await store.close();
    }
  });

  it("links a pulled LoRA adapter to its base as an adapter fork, whatever its card's relation", async () => {
    const home = join(directory, "home-adapter");
    assert.equal((await pull(home, "hf:acme/base-1b/base.f16.gguf", "--name", "base-1b:f16")).code, 0);
    const adapter = await pull(home, "hf:acme/base-1b-lora", "--name", "base-1b:lora");
    assert.equal(adapter.code, 0, adapter.stderr);
    assert.match(adapter.stdout, /\nlineage   adapter from base-1b:f16 \(sha256:[0-9a-f]{12}…\)\n$/);
  });

  it("refuses a download that is not GGUF and an unknown repository, leaving the store unchanged", async () => {
    const home = join(directory, "refused");
    const text = await runCliInProcess("pull", "hf:acme/text-GGUF", "--name", "text:x", "--endpoint", hub.endpoint, "--home", home);
    assert.equal(text.code, 1);
    assert.match(text.stderr, /^error \(invalid_model_file\): .*is not a GGUF file/);
    const missing = await runCliInProcess("pull", "hf:acme/missing-GGUF", "--endpoint", hub.endpoint, "--home", home);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error \(not_found\): .*acme\/missing-GGUF/);
    const store = await ModelStore.open(home);
    try {
      assert.deepEqual(await store.list(), []);
      assert.deepEqual(await store.blobs.list(), []);
      assert.deepEqual(await readdir(store.blobs.tempDirectory), [], "nothing kept for a resume");
    } finally {
      await store.close();
    }
  });
});
