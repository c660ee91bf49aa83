import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generateModel, type GenerateModelResult } from "../../forge/generate/generate-model.js";
import { ModelStore, type ModelListing, type TreeNode } from "../../store/model-store.js";
import { runCli, runCliInProcess, storeSnapshot } from "../../test-support/run-cli.js";
import type { ShowResult } from "./store-commands.js";

let directory: string;
/** seed 1 f16 (base), seed 1 q8_0, seed 2 f16 (fine-tune), seed 2 q8_0 (its quant). */
const files = {} as Record<"base" | "baseQ8" | "tuned" | "tunedQ8", GenerateModelResult>;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-store-cli-"));
  const make = (name: string, seed: number, dtype: "f16" | "q8_0") => generateModel({ preset: "test-tiny", seed, dtype, outPath: join(directory, `${name}.gguf`) });
  files.base = await make("base", 1, "f16");
  files.baseQ8 = await make("base-q8", 1, "q8_0");
  files.tuned = await make("tuned", 2, "f16");
  files.tunedQ8 = await make("tuned-q8", 2, "q8_0");
});
after(() => rm(directory, { recursive: true, force: true }));

const short = (digest: string) => `${digest.slice(0, 19)}…`;

describe("grove import, ls, show, tree, tag, rm, gc", () => {
  it("builds a three-level lineage and shows, tags, removes and collects it", async () => {
    const home = join(directory, "flow");
    const importRun = (file: string, ...flags: string[]) => runCli("import", file, "--home", home, ...flags);

    const base = await importRun(files.base.path, "--name", "tiny:f16");
    assert.equal(base.code, 0, base.stderr);
    assert.equal(base.stdout, `imported  ${files.base.digest}  tiny:f16  342.2 KB\nlineage   none (a root)\n`);
    assert.equal(base.stderr, "");

    const q8 = await importRun(files.baseQ8.path, "--name", "tiny:q8", "--base", "tiny:f16", "--relation", "quantized", "--json");
    assert.equal(q8.code, 0, q8.stderr);
    const q8Report = JSON.parse(q8.stdout) as { digest: string; name: string; created: boolean; parents: { digest: string; names: string[]; relation: string }[] };
    assert.equal(q8Report.digest, files.baseQ8.digest);
    assert.equal(q8Report.name, "tiny:q8");
    assert.equal(q8Report.created, true);
    assert.deepEqual(q8Report.parents.map(({ digest, names, relation }) => ({ digest, names, relation })), [{ digest: files.base.digest, names: ["tiny:f16"], relation: "quantized" }]);

    // A digest prefix as the base.
    const tuned = await importRun(files.tuned.path, "--name", "tuned:f16", "--base", files.base.digest.slice(7, 19), "--relation", "finetune");
    assert.equal(tuned.code, 0, tuned.stderr);
    assert.match(tuned.stdout, new RegExp(`^imported  ${files.tuned.digest}  tuned:f16  342\\.2 KB\\nlineage   finetune from tiny:f16 \\(sha256:${files.base.digest.slice(7, 19)}…\\)\\n$`));
    const tunedQ8 = await importRun(files.tunedQ8.path, "--name", "tuned:q8", "--base", "tuned:f16", "--relation", "quantized");
    assert.equal(tunedQ8.code, 0, tunedQ8.stderr);

    const again = await importRun(files.tunedQ8.path);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^already in the store  sha256:[0-9a-f]{64}  tuned:q8  188\.7 KB\nlineage   quantized from tuned:f16 /);

    const ls = await runCli("ls", "--home", home);
    assert.equal(ls.code, 0, ls.stderr);
    const lines = ls.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^NAME\s+DIGEST\s+SIZE\s+ARCH\s+QUANT\s+CREATED$/);
    assert.deepEqual(
      lines.slice(1).map((line) => line.split(/\s{2,}/).slice(0, 5)),
      [
        ["tiny:f16", files.base.digest.slice(7, 19), "342.2 KB", "llama", "F16"],
        ["tiny:q8", files.baseQ8.digest.slice(7, 19), "188.7 KB", "llama", "Q8_0"],
        ["tuned:f16", files.tuned.digest.slice(7, 19), "342.2 KB", "llama", "F16"],
        ["tuned:q8", files.tunedQ8.digest.slice(7, 19), "188.7 KB", "llama", "Q8_0"],
      ],
    );
    for (const line of lines.slice(1)) assert.match(line, /\d{4}-\d\d-\d\d \d\d:\d\d$/);

    const show = await runCli("show", "tuned:f16", "--home", home);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`^digest\\s+${files.tuned.digest}$`, "m"));
    assert.match(show.stdout, /^names\s+tuned:f16$/m);
    assert.match(show.stdout, /^quantization\s+F16$/m);
    assert.match(show.stdout, new RegExp(`^parents \\(1\\)\\n  finetune   tiny:f16 \\(${short(files.base.digest)}\\)$`, "m"));
    assert.match(show.stdout, new RegExp(`^forks \\(1\\)\\n  quantized  tuned:q8 \\(${short(files.tunedQ8.digest)}\\)$`, "m"));
    const showJson = JSON.parse((await runCli("show", files.baseQ8.digest.slice(7, 15), "--json", "--home", home)).stdout) as ShowResult;
    assert.equal(showJson.model.digest, files.baseQ8.digest);
    assert.deepEqual(showJson.parents, [{ digest: files.base.digest, names: ["tiny:f16"], relation: "quantized", recipe: null }]);
    assert.deepEqual(showJson.children, []);
    assert.equal((await stat(showJson.path)).size, files.baseQ8.fileSize);

    const tree = await runCli("tree", "--home", home);
    assert.equal(tree.code, 0, tree.stderr);
    assert.equal(
      tree.stdout,
      [
        `tiny:f16 (${short(files.base.digest)}, 342.2 KB)`,
        `├─ quantized  tiny:q8 (${short(files.baseQ8.digest)}, 188.7 KB)`,
        `└─ finetune   tuned:f16 (${short(files.tuned.digest)}, 342.2 KB)`,
        `   └─ quantized  tuned:q8 (${short(files.tunedQ8.digest)}, 188.7 KB)`,
        "",
      ].join("\n"),
    );
    const treeJson = JSON.parse((await runCli("tree", "tuned:q8", "--json", "--home", home)).stdout) as TreeNode[];
    const depth = (node: TreeNode): number => 1 + Math.max(0, ...node.children.map(depth));
    assert.equal(treeJson.length, 1);
    assert.equal(treeJson[0]!.digest, files.base.digest);
    assert.equal(depth(treeJson[0]!), 3);

    // diff takes store REFs as well as files: the quantized fork differs in every weight's type.
    const diff = JSON.parse((await runCli("diff", "tiny:f16", "tiny:q8", "--json", "--home", home)).stdout) as {
      identical: boolean;
      tensors: { status: string }[];
    };
    assert.equal(diff.identical, false);
    assert.ok(diff.tensors.some((tensor) => tensor.status === "changed"));
    const same = JSON.parse((await runCli("diff", "tiny:f16", files.base.digest, "--json", "--home", home)).stdout) as {
      identical: boolean;
    };
    assert.equal(same.identical, true);

    const tag = await runCli("tag", "tiny:f16", "tiny:stable", "--home", home);
    assert.equal(tag.code, 0, tag.stderr);
    assert.equal(tag.stdout, `tiny:stable → ${short(files.base.digest)}\n`);

    // rm drops one name; the model goes with its last one, and not while forks record it as parent.
    const dropped = await runCli("rm", "tiny:stable", "--home", home);
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.equal(dropped.stdout, "deleted 'tiny:stable' (the model keeps tiny:f16)\n");
    const refused = await runCliInProcess("rm", "tiny:f16", "--home", home);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error \(conflict\): tiny:f16 \(sha256:[0-9a-f]{12}…\) has 2 forks \(tiny:q8 .*, tuned:f16 .*\) whose lineage records it as their parent; removing its last name would remove it and orphan them\. .*force \(--force/);

    const removed = await runCli("rm", "Tiny:F16", "--force", "--home", home);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /^deleted 'tiny:f16': removed tiny:f16 \(sha256:[0-9a-f]{12}…\); its blob is freed by `grove gc`\nnow roots: sha256:[0-9a-f]{12}…, sha256:[0-9a-f]{12}…\n$/);
    assert.equal((await stat(join(home, "blobs", `sha256-${files.base.digest.slice(7)}`))).size, files.base.fileSize);

    const gc = await runCli("gc", "--json", "--home", home);
    assert.equal(gc.code, 0, gc.stderr);
    assert.deepEqual(JSON.parse(gc.stdout), { removedBlobs: [files.base.digest], freedBytes: files.base.fileSize, removedTempFiles: 0 });
    assert.ok(!(await readdir(join(home, "blobs"))).includes(`sha256-${files.base.digest.slice(7)}`));

    const store = await ModelStore.open(home);
    try {
      const left: ModelListing[] = await store.list();
      assert.deepEqual(left.map((model) => model.names), [["tiny:q8"], ["tuned:f16"], ["tuned:q8"]]);
      assert.deepEqual((await store.tree()).map((node) => [node.names, node.children.length]), [[["tiny:q8"], 0], [["tuned:f16"], 1]]);
      const verify = await store.verify();
      assert.deepEqual({ ...verify, checked: 0 }, { checked: 0, mismatched: [], missing: [], unreferenced: [] });
    } finally {
      await store.close();
    }
  });

  it("refuses bad input with a clear message, exit 1 and the store unchanged", async () => {
    const home = join(directory, "bad");
    assert.equal((await runCli("import", files.base.path, "--name", "tiny:f16", "--home", home)).code, 0);
    const notGguf = join(directory, "notes.txt");
    await writeFile(notGguf, "plain text, not a model\n");
    const before = await storeSnapshot(home);

    const cases: [string[], RegExp][] = [
      [["import", files.tuned.path, "--name", "Tiny:F!6"], /^error \(invalid_parameter\): Invalid model name "Tiny:F!6": the tag "f!6" holds a character outside/],
      [["import", files.tuned.path, "--name", "../etc:x"], /^error \(invalid_parameter\): Invalid model name "\.\.\/etc:x": '\.\.' is not allowed/],
      [["import", files.tuned.path, "--base", "nope:f16", "--relation", "finetune"], /^error \(model_not_found\): The model 'nope:f16' does not exist/],
      [["import", files.tuned.path, "--relation", "finetune"], /^error \(invalid_parameter\): A 'finetune' relation needs a base model/],
      [["import", files.tuned.path, "--base", "tiny:f16"], /^error \(invalid_parameter\): A base model needs a relation \(finetune, adapter, quantized, merge, config\)/],
      [["import", files.tuned.path, "--base", "tiny:f16", "--relation", "sibling"], /^error \(invalid_parameter\): Unknown relation "sibling"; valid: finetune, adapter, quantized, merge/],
      [["import", join(directory, "missing.gguf")], /^error \(invalid_parameter\): No such file: .*missing\.gguf/],
      [["import", notGguf, "--name", "notes:x"], /^error \(invalid_model_file\): notes\.txt: is not a GGUF file/],
      [["show", "nope"], /^error \(model_not_found\): The model 'nope:latest' does not exist/],
      [["show", "sha256:ffff"], /^error \(model_not_found\): .*ffff/],
      [["tree", "nope:x"], /^error \(model_not_found\)/],
      [["tag", "nope", "tiny:x"], /^error \(model_not_found\)/],
      [["tag", "tiny:f16", "bad name"], /^error \(invalid_parameter\): Invalid model name "bad name": it holds whitespace/],
      [["rm", "nope"], /^error \(model_not_found\)/],
      [["pull", "hf:../etc/x.gguf"], /^error \(invalid_parameter\): Invalid hub reference: /],
      [["pull", "hf:acme/tiny", "--name", "BAD?"], /^error \(invalid_parameter\): Invalid model name "BAD\?"/],
      [["cp", "nope", "tiny:x"], /^error \(model_not_found\)/],
      [["cp", "tiny:f16", "bad name"], /^error \(invalid_parameter\): Invalid model name "bad name"/],
      [["cp", "tiny:f16", "tiny:f16"], /^$/],
    ];
    for (const [args, pattern] of cases) {
      const run = await runCliInProcess(...args, "--home", home);
      if (args[0] === "cp" && args[2] === "tiny:f16") {
        assert.equal(run.code, 0, "copying a name onto itself changes nothing");
        continue;
      }
      assert.equal(run.code, 1, `exit code of grove ${args.join(" ")}`);
      assert.match(run.stderr, pattern, `message of grove ${args.join(" ")}`);
    }
    assert.deepEqual(await storeSnapshot(home), before);
  });
});

describe("grove cp, rm NAME and names as Ollama's", () => {
  it("copies a name, folds case, names forks imported without one, and removes one name at a time", async () => {
    const home = join(directory, "names");
    assert.equal((await runCli("import", files.base.path, "--name", "Tiny:F16", "--home", home)).code, 0);
    // A fork imported without --name takes its parent's name plus a suffix: never nameless.
    const quant = await runCli("import", files.baseQ8.path, "--base", "TINY:f16", "--relation", "quantized", "--json", "--home", home);
    assert.equal(quant.code, 0, quant.stderr);
    assert.equal((JSON.parse(quant.stdout) as { name: string }).name, "tiny:f16-q8_0");
    const root = await runCli("import", files.tuned.path, "--json", "--home", home);
    assert.equal((JSON.parse(root.stdout) as { name: string }).name, "tuned:latest", "a root without --name is named from its file");

    const copied = await runCli("cp", "tiny:f16", "team:small-F16", "--home", home);
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(copied.stdout, "copied 'tiny:f16' to 'team:small-f16'\n");
    const collision = await runCliInProcess("cp", "tiny:f16-q8_0", "Team:Small-F16", "--home", home);
    assert.equal(collision.code, 1);
    assert.match(collision.stderr, /^error \(conflict\): 'team:small-f16' already names another model/);

    const ls = JSON.parse((await runCli("ls", "--json", "--home", home)).stdout) as ModelListing[];
    assert.deepEqual(ls.map((model) => model.names), [["team:small-f16", "tiny:f16"], ["tiny:f16-q8_0"], ["tuned:latest"]]);

    const dropped = await runCli("rm", "TINY:F16", "--home", home);
    assert.equal(dropped.stdout, "deleted 'tiny:f16' (the model keeps team:small-f16)\n");
    const refused = await runCliInProcess("rm", "team:small-f16", "--home", home);
    assert.equal(refused.code, 1, "its quantized fork records it as parent");
    assert.match(refused.stderr, /^error \(conflict\): team:small-f16 .* has 1 fork \(tiny:f16-q8_0 /);
    const gone = await runCli("rm", "tiny:f16-q8_0", "tuned", "--home", home);
    assert.equal(gone.code, 0, gone.stderr);
    assert.match(gone.stdout, /^deleted 'tiny:f16-q8_0': removed .*\ndeleted 'tuned:latest': removed /);
    const left = JSON.parse((await runCli("ls", "--json", "--home", home)).stdout) as ModelListing[];
    assert.deepEqual(left.map((model) => model.names), [["team:small-f16"]]);
  });
});
