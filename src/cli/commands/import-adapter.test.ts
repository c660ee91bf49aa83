import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generateAdapter, type GenerateAdapterResult } from "../../forge/generate/generate-adapter.js";
import { generateModel, type GenerateModelResult } from "../../forge/generate/generate-model.js";
import type { TreeNode } from "../../store/model-store.js";
import { runCli, storeSnapshot } from "../../test-support/run-cli.js";
import type { ShowResult } from "./store-commands.js";

let directory: string;
let base: GenerateModelResult;
let other: GenerateModelResult;
let adapter: GenerateAdapterResult;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-import-adapter-"));
  base = await generateModel({ preset: "test-tiny", seed: 1, outPath: join(directory, "base.gguf") });
  other = await generateModel({ preset: "small", seed: 1, outPath: join(directory, "other.gguf") });
  adapter = await generateAdapter({ basePath: base.path, seed: 5, recordBaseDigest: false, outPath: join(directory, "lora.gguf") });
});
after(() => rm(directory, { recursive: true, force: true }));

const short = (digest: string) => `${digest.slice(0, 19)}…`;

describe("grove import of a LoRA adapter", () => {
  it("records an adapter fork that ls, show and tree present with the adapter's size", async () => {
    const home = join(directory, "ok");
    assert.equal((await runCli("import", base.path, "--name", "tiny:f16", "--home", home)).code, 0);
    const imported = await runCli("import", adapter.path, "--name", "tiny:lora", "--base", "tiny:f16", "--home", home);
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, new RegExp(`^imported  ${adapter.digest}  tiny:lora  .*\\nlineage   adapter from tiny:f16 \\(${short(base.digest)}\\)\\n$`));

    const show = await runCli("show", "tiny:lora", "--home", home);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`^size\\s+.* \\(${adapter.fileSize} bytes\\)$`, "m"));
    assert.match(show.stdout, new RegExp(`^adapter\\s+LoRA, applied to tiny:f16 \\(${short(base.digest)}\\) when served$`, "m"));
    assert.match(show.stdout, /^parents \(1\)\n {2}adapter {4}tiny:f16 .* recipe: grove import \S+ \{"adapterType":"lora","rank":4,"alpha":4,"pairs":4\}$/m);
    const showJson = JSON.parse((await runCli("show", "tiny:lora", "--json", "--home", home)).stdout) as ShowResult;
    assert.deepEqual(showJson.parents[0]?.recipe?.inputs, [base.digest]);

    const tree = JSON.parse((await runCli("tree", "--json", "--home", home)).stdout) as TreeNode[];
    assert.deepEqual(tree.map((root) => [root.digest, root.children.map((child) => [child.digest, child.relation, child.size])]), [[base.digest, [[adapter.digest, "adapter", adapter.fileSize]]]]);
    const ls = await runCli("ls", "--home", home);
    assert.match(ls.stdout, /tiny:lora/);
  });

  it("refuses, with a clear message and nothing written, an adapter for another base, without a base, or a model as an adapter", async () => {
    const home = join(directory, "refused");
    assert.equal((await runCli("import", base.path, "--name", "tiny:f16", "--home", home)).code, 0);
    assert.equal((await runCli("import", other.path, "--name", "small:f16", "--home", home)).code, 0);
    const before = await storeSnapshot(home);
    const cases: [string[], RegExp][] = [
      [[adapter.path, "--base", "small:f16"], /^error \(invalid_parameter\): The adapter lora\.gguf does not fit the base small:f16: tensor "blk\.0\.attn_q\.weight" has shapes base \[256, 256\], lora_a \[64, 4\], lora_b \[4, 64\]/],
      [[adapter.path, "--name", "tiny:lora"], /^error \(invalid_parameter\): lora\.gguf is a LoRA adapter, not a model: import it with the base it adapts \(--base REF\)/],
      [[base.path, "--base", "small:f16", "--relation", "adapter"], /^error \(invalid_parameter\): base\.gguf is not an adapter/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCli("import", ...args, "--home", home);
      assert.equal(run.code, 1, `exit code of grove import ${args.join(" ")}`);
      assert.match(run.stderr, pattern);
    }
    assert.deepEqual(await storeSnapshot(home), before);
  });
});
