import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Digest } from "../core/digest.js";
import { AmbiguousModelError, ConflictError, DigestMismatchError, InvalidModelFileError, InvalidRequestError, ModelNotFoundError } from "../core/errors.js";
import { generateModel, type GenerateModelOptions, type GenerateModelResult } from "../forge/generate/generate-model.js";
import { ModelStore, type TreeNode } from "./model-store.js";
import { ownedTempName } from "./temp-owner.js";
import type { ModelRecord, Recipe } from "./registry.js";

let directory: string;
let count = 0;
/** seed 1 f16 (base), seed 1 q8_0, seed 2 f16 (fine-tune), seed 2 q8_0, seed 3 f16 (merge). */
const files = {} as Record<"base" | "baseQ8" | "tuned" | "tunedQ8" | "merged", GenerateModelResult>;

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-model-store-"));
  const make = (name: string, seed: number, dtype: GenerateModelOptions["dtype"]) =>
    generateModel({ preset: "test-tiny", seed, dtype, outPath: join(directory, `${name}.gguf`) });
  files.base = await make("base", 1, "f16");
  files.baseQ8 = await make("base-q8", 1, "q8_0");
  files.tuned = await make("tuned", 2, "f16");
  files.tunedQ8 = await make("tuned-q8", 2, "q8_0");
  files.merged = await make("merged", 3, "f16");
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

async function openStore(): Promise<ModelStore> {
  return ModelStore.open(join(directory, `home-${++count}`));
}

function recipe(type: string, ...inputs: Digest[]): Recipe {
  return { tool: "grove-forge", toolVersion: "0.1.0", parameters: { type }, inputs };
}

/** `digest → [relation, names]` lines, indented: easy to compare whole trees. */
function render(nodes: TreeNode[], depth = 0): string[] {
  return nodes
    .flatMap((node) => [`${"  ".repeat(depth)}${node.names.join(",") || node.digest.slice(7, 15)} ${node.relation ?? "root"} ${node.quantization}`, ...render(node.children, depth + 1)])
    .sort();
}

/** Temp directory and blob list, to prove an operation left nothing behind. */
async function contents(store: ModelStore) {
  return { blobs: await store.blobs.list(), temp: await readdir(store.blobs.tempDirectory), models: (await store.list()).length };
}

describe("ModelStore", () => {
  it("imports a three-level lineage, shows it, tags, refuses to orphan forks, removes and collects", async () => {
    const store = await openStore();
    try {
      const base = await store.importFile(files.base.path, { name: "tiny:f16", license: "apache-2.0" });
      assert.equal(base.model.digest, files.base.digest);
      assert.equal(base.model.quantization, "F16");
      assert.equal(base.model.architecture, "llama");
      assert.equal(base.model.vocabularySize, 512);
      assert.equal(base.model.license, "apache-2.0");
      assert.equal(base.model.size, files.base.fileSize);
      assert.ok(base.created && base.blobCreated);
      await store.importFile(files.baseQ8.path, { name: "tiny:q8_0", base: "tiny:f16", relation: "quantized", recipe: recipe("q8_0", files.base.digest) });
      await store.importFile(files.tuned.path, { name: "tiny-chat:f16", base: files.base.digest, relation: "finetune", recipe: recipe("lora", files.base.digest) });
      const tunedQ8 = await store.importFile(files.tunedQ8.path, { name: "tiny-chat:q8_0", base: "tiny-chat:f16", relation: "quantized" });
      assert.equal(tunedQ8.model.quantization, "Q8_0");
      assert.deepEqual(tunedQ8.parents, [{ child: files.tunedQ8.digest, parent: files.tuned.digest, relation: "quantized", recipe: null }]);

      const shown = await store.show("tiny:q8_0");
      assert.deepEqual(shown.names, ["tiny:q8_0"]);
      assert.equal(shown.path, store.blobs.pathOf(files.baseQ8.digest));
      assert.deepEqual(shown.parents, [{ child: files.baseQ8.digest, parent: files.base.digest, relation: "quantized", recipe: recipe("q8_0", files.base.digest) }]);
      assert.deepEqual((await store.show("tiny:f16")).children.map((edge) => edge.relation).sort(), ["finetune", "quantized"]);

      const expected = ["tiny:f16 root F16", "  tiny-chat:f16 finetune F16", "    tiny-chat:q8_0 quantized Q8_0", "  tiny:q8_0 quantized Q8_0"].sort();
      assert.deepEqual(render(await store.tree("tiny-chat:q8_0")), expected, "walks up to the root, then down");
      assert.deepEqual(render(await store.tree()), expected);
      const [root] = await store.tree(files.tuned.digest.slice(7, 19));
      assert.equal(root.size, files.base.fileSize);

      const listed = await store.list();
      assert.deepEqual(listed.map((model) => [model.names, model.quantization]), [
        [["tiny:f16"], "F16"], [["tiny:q8_0"], "Q8_0"], [["tiny-chat:f16"], "F16"], [["tiny-chat:q8_0"], "Q8_0"],
      ]);

      assert.deepEqual(await store.tag("tiny-chat:q8_0", "chat"), { name: "chat:latest", digest: files.tunedQ8.digest });
      assert.equal((await store.resolve("chat")).digest, files.tunedQ8.digest);
      assert.deepEqual(await store.tag("tiny:q8_0", "chat"), { name: "chat:latest", digest: files.baseQ8.digest, previous: files.tunedQ8.digest });
      await store.untag("chat");
      await assert.rejects(store.resolve("chat"), ModelNotFoundError);
      await assert.rejects(store.untag("chat"), ModelNotFoundError);

      await assert.rejects(store.remove("tiny-chat:f16"), (error: unknown) => {
        assert.ok(error instanceof ConflictError);
        assert.match(error.message, /tiny-chat:q8_0/);
        return true;
      });
      const removed = await store.remove("tiny-chat:f16", { force: true });
      assert.deepEqual(removed.names, ["tiny-chat:f16"]);
      assert.equal(removed.edges.length, 2);
      await assert.rejects(store.resolve("tiny-chat:f16"), ModelNotFoundError);
      assert.deepEqual(render(await store.tree()), ["tiny-chat:q8_0 root Q8_0", "tiny:f16 root F16", "  tiny:q8_0 quantized Q8_0"].sort());
      assert.ok(existsSync(store.blobs.pathOf(files.tuned.digest)), "rm drops rows only");

      const collected = await store.gc();
      assert.deepEqual(collected, { removedBlobs: [files.tuned.digest], freedBytes: files.tuned.fileSize, removedTempFiles: 0 });
      assert.equal(existsSync(store.blobs.pathOf(files.tuned.digest)), false);
      assert.deepEqual(await store.gc(), { removedBlobs: [], freedBytes: 0, removedTempFiles: 0 });
      assert.deepEqual(await store.verify(), { checked: 3, mismatched: [], missing: [], unreferenced: [] });
    } finally {
      await store.close();
    }
  });

  it("records a merge under each parent", async () => {
    const store = await openStore();
    try {
      await store.importFile(files.base.path, { name: "left" });
      await store.importFile(files.tuned.path, { name: "right" });
      await assert.rejects(store.importFile(files.merged.path, { bases: ["left", "right"], relation: "finetune" }), /Only a merge/);
      const merged = await store.importFile(files.merged.path, { name: "both", base: "left", bases: ["right"], relation: "merge", recipe: recipe("slerp", files.base.digest, files.tuned.digest) });
      assert.deepEqual(merged.parents.map((edge) => edge.parent), [files.base.digest, files.tuned.digest]);
      assert.deepEqual(render(await store.tree("both")), ["left:latest root F16", "  both:latest merge F16", "right:latest root F16", "  both:latest merge F16"].sort());
    } finally {
      await store.close();
    }
  });

  it("stores the same file once however often it is imported", async () => {
    const store = await openStore();
    try {
      const first = await store.importFile(files.base.path, { name: "one" });
      const second = await store.importFile(files.base.path, { name: "two" });
      assert.equal(second.created, false);
      assert.equal(second.blobCreated, false);
      assert.equal(second.model.createdAt, first.model.createdAt);
      assert.deepEqual(await contents(store), { blobs: [files.base.digest], temp: [], models: 1 });
      assert.deepEqual((await store.show("one")).names, ["one:latest", "two:latest"]);
    } finally {
      await store.close();
    }
  });

  it("leaves nothing behind when a digest differs, a file is not GGUF or a base is unknown", async () => {
    const store = await openStore();
    try {
      await assert.rejects(store.importFile(files.base.path, { expectedDigest: files.tuned.digest }), DigestMismatchError);
      const garbage = join(directory, "garbage.gguf");
      await writeFile(garbage, "GGUF but not really");
      await assert.rejects(store.importFile(garbage), InvalidModelFileError);
      await assert.rejects(store.importFile(files.tuned.path, { base: "ghost:f16", relation: "finetune" }), ModelNotFoundError);
      await assert.rejects(store.importFile(files.tuned.path, { base: "ghost:f16" }), /needs a relation/);
      await assert.rejects(store.importFile(files.tuned.path, { relation: "finetune" }), /needs a base/);
      await assert.rejects(store.importFile(files.tuned.path, { recipe: recipe("x") }), /recipe needs/);
      assert.deepEqual(await contents(store), { blobs: [], temp: [], models: 0 });
    } finally {
      await store.close();
    }
  });

  it("resolves names, digests and unique prefixes, listing candidates for an ambiguous prefix", async () => {
    const store = await openStore();
    try {
      await store.importFile(files.base.path, { name: "tiny" });
      assert.equal((await store.resolve(files.base.digest)).digest, files.base.digest);
      assert.equal((await store.resolve(files.base.digest.slice(7, 13))).digest, files.base.digest);
      assert.equal((await store.resolve(`sha256:${files.base.digest.slice(7, 13)}`)).digest, files.base.digest);
      assert.equal((await store.resolve("tiny:latest")).digest, files.base.digest);
      // Rows with crafted digests: two real files sharing four hex digits would take ~65,000 models.
      const row = (await store.resolve("tiny")) as ModelRecord;
      for (const suffix of ["1", "2", "3"]) await store.registry.addModel({ ...row, digest: `sha256:cafe${suffix.padEnd(60, "0")}` });
      await assert.rejects(store.resolve("cafe"), (error: unknown) => {
        assert.ok(error instanceof AmbiguousModelError);
        assert.equal(error.candidates.length, 3);
        for (const candidate of error.candidates) assert.ok(error.message.includes(candidate));
        return true;
      });
      assert.equal((await store.resolve("cafe2")).digest, `sha256:cafe2${"0".repeat(59)}`);
      await store.tag("cafe3", "cafe");
      assert.equal((await store.resolve("cafe")).digest, `sha256:cafe3${"0".repeat(59)}`, "a name wins over a prefix");
      await assert.rejects(store.resolve("beef"), ModelNotFoundError);
      await assert.rejects(store.resolve(`sha256:${"b".repeat(64)}`), ModelNotFoundError);
      await assert.rejects(store.resolve("nothing:here"), ModelNotFoundError);
    } finally {
      await store.close();
    }
  });

  it("refuses bad names and references before any file system call", async () => {
    const store = await openStore();
    const hostile = ["../x", "/abs", "a\\b", "a\u0000b", "ｆｕｌｌwidth", "", "a:b:c", "x/../../etc", "sha256:../x"];
    try {
      // With the home gone, any mkdir or write on the way would bring it back.
      await rm(store.home, { recursive: true, force: true });
      for (const text of hostile) {
        await assert.rejects(store.importFile(files.base.path, { name: text }), InvalidRequestError, JSON.stringify(text));
        await assert.rejects(store.importFile(files.base.path, { base: text, relation: "quantized" }), InvalidRequestError);
        await assert.rejects(store.importFile(files.base.path, { expectedDigest: text as Digest }), InvalidRequestError);
        await assert.rejects(store.resolve(text), InvalidRequestError);
        await assert.rejects(store.show(text), InvalidRequestError);
        await assert.rejects(store.tree(text), InvalidRequestError);
        await assert.rejects(store.tag("tiny", text), InvalidRequestError);
        await assert.rejects(store.tag(text, "tiny"), InvalidRequestError);
        await assert.rejects(store.untag(text), InvalidRequestError);
        await assert.rejects(store.remove(text), InvalidRequestError);
      }
      assert.equal(existsSync(store.home), false);
      // The control: the first file system step of an import does bring the home back.
      await store.blobs.createTempPath();
      assert.equal(existsSync(store.home), true);
    } finally {
      await store.close();
    }
  });

  it("reopens an existing home with its models (migrations are idempotent)", async () => {
    const home = join(directory, `home-${++count}`);
    const first = await ModelStore.open(home);
    await first.importFile(files.base.path, { name: "tiny" });
    await first.close();
    const second = await ModelStore.open(home);
    try {
      assert.equal((await second.resolve("tiny")).digest, files.base.digest);
    } finally {
      await second.close();
    }
  });

  it("verify reports blobs whose content differs from their name and rows without a blob; gc cleans stale temp files", async () => {
    const store = await openStore();
    try {
      await store.importFile(files.base.path);
      await store.importFile(files.tuned.path);
      await writeFile(store.blobs.pathOf(files.base.digest), "corrupted");
      await rm(store.blobs.pathOf(files.tuned.digest));
      await writeFile(join(store.blobs.blobsDirectory, `sha256-${"e".repeat(64)}`), "stray");
      assert.deepEqual(await store.verify(), { checked: 2, mismatched: [files.base.digest, `sha256:${"e".repeat(64)}`], missing: [files.tuned.digest], unreferenced: [`sha256:${"e".repeat(64)}`] });
      // A temp file of a writer that is gone (process id 2^31 - 2 runs nowhere) goes at once.
      await mkdir(store.blobs.tempDirectory, { recursive: true });
      await writeFile(join(store.blobs.tempDirectory, ownedTempName("x.partial", 2 ** 31 - 2)), "partial download");
      await writeFile(await store.blobs.createTempPath(), "a running writer's");
      const collected = await store.gc();
      assert.deepEqual(collected, { removedBlobs: [`sha256:${"e".repeat(64)}`], freedBytes: 5 + 16, removedTempFiles: 1 });
    } finally {
      await store.close();
    }
  });
});
