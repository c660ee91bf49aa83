import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Digest } from "../core/digest.js";
import { digestOfBytes } from "../core/digest.js";
import { ModelNotFoundError, ModelNotLocalError } from "../core/errors.js";
import { MODEL_CONFIG_CARD_KEY } from "../core/model-config.js";
import { generateAdapter } from "../forge/generate/generate-adapter.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { AliasBook } from "./alias-book.js";
import { pickWeighted } from "./model-resolver.js";
import { ModelStore } from "./model-store.js";

// The one resolution of a model name, on a real SQLite store with a generated base, two adapter
// forks (one with a card scale), a config fork on the base and an alias over two models.

let directory: string;
let store: ModelStore;
const digests: Record<string, Digest> = {};

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-resolver-"));
  store = await ModelStore.open(join(directory, "home"));
  const base = await generateModel({ preset: "test-tiny", seed: 7, outPath: join(directory, "base.gguf") });
  const other = await generateModel({ preset: "test-tiny", seed: 8, outPath: join(directory, "other.gguf") });
  digests.base = (await store.importFile(base.path, { name: "tiny:base" })).model.digest;
  digests.other = (await store.importFile(other.path, { name: "tiny:other" })).model.digest;
  const lora = await generateAdapter({ basePath: base.path, seed: 11, outPath: join(directory, "lora.gguf") });
  digests.lora = (await store.importFile(lora.path, { name: "tiny:lora", base: "tiny:base" })).model.digest;
  const half = await generateAdapter({ basePath: base.path, seed: 12, outPath: join(directory, "half.gguf") });
  digests.half = (await store.importFile(half.path, { name: "tiny:half", base: "tiny:base", card: { adapter_scale: 0.5 } })).model.digest;
  // A config fork as forge/modelfile records one: no blob, its defaults in the card, a config edge.
  const parent = (await store.model(digests.base))!;
  const config = { system: "Be brief." };
  digests.config = digestOfBytes(Buffer.from(JSON.stringify({ parent: parent.digest, config })));
  const created = await store.addRecord(
    { ...parent, digest: digests.config, card: { [MODEL_CONFIG_CARD_KEY]: config } },
    { name: "tiny:brief", edges: [{ child: digests.config, parent: parent.digest, relation: "config", recipe: null }] },
  );
  assert.equal(created, true);
  await new AliasBook(store).set("chat", [{ ref: "tiny:base", weight: 3 }, { ref: "tiny:other", weight: 1 }]);
});

after(async () => {
  await store?.close();
  await rm(directory, { recursive: true, force: true });
});

describe("ModelResolver", () => {
  it("resolves names, digests and prefixes to the model, with a config fork's defaults", async () => {
    const { resolver } = store;
    assert.deepEqual(await resolver.resolveServed("tiny:base"), { digest: digests.base });
    assert.deepEqual(await resolver.resolveServed(digests.other!), { digest: digests.other });
    assert.deepEqual(await resolver.resolveServed(digests.lora!.slice(7, 19)), { digest: digests.lora });
    assert.deepEqual(await resolver.resolveServed("TINY:Brief"), { digest: digests.config, config: { system: "Be brief." } });
    assert.equal(await resolver.weightsOf(digests.config!), digests.base);
  });

  it("draws an alias's target by weight, and lists all of them for an unload", async () => {
    const { resolver } = store;
    const [first, second] = [digests.base!, digests.other!].sort();
    const firstWeight = first === digests.base ? 3 : 1;
    // The targets lie in digest order over [0, 1): the first takes firstWeight / 4 of it.
    assert.deepEqual(await resolver.resolveServed("chat", { random: () => 0 }), { digest: first, alias: "chat:latest" });
    assert.deepEqual(await resolver.resolveServed("chat:latest", { random: () => firstWeight / 4 }), { digest: second, alias: "chat:latest" });
    assert.deepEqual((await resolver.servedDigests("chat")).sort(), [first, second]);
    assert.deepEqual(await resolver.servedDigests("tiny:lora"), [digests.lora]);
    assert.equal((await resolver.alias("chat"))?.targets.length, 2);
    assert.equal(pickWeighted([{ digest: digests.base!, weight: 1 }], 0.999), digests.base);
  });

  it("gives an adapter fork its base's file and its card's scale (1 when the card has none)", async () => {
    const { resolver } = store;
    const basePath = store.blobs.pathOf(digests.base!);
    assert.deepEqual(await resolver.filesOf(digests.base!), { digest: digests.base, path: basePath });
    assert.deepEqual(await resolver.filesOf(digests.lora!), { digest: digests.lora, path: basePath, adapter: { path: store.blobs.pathOf(digests.lora!), scale: 1, base: digests.base } });
    assert.deepEqual((await resolver.filesOf(digests.half!)).adapter, { path: store.blobs.pathOf(digests.half!), scale: 0.5, base: digests.base });
    // A config fork runs on its weights' file.
    assert.deepEqual(await resolver.filesOf(digests.config!), { digest: digests.config, path: basePath });
  });

  it("refuses bad input: malformed and unknown names are unknown models, missing files are named", async () => {
    const { resolver } = store;
    for (const name of ["../etc/passwd", "tiny:nope", "sha256:zz", "a:b:c", "", "x".repeat(300), "nope"]) {
      await assert.rejects(resolver.resolveServed(name), (error: unknown) => error instanceof ModelNotFoundError && error.param === "model", name);
      assert.equal(await resolver.alias(name), undefined, name);
    }
    await assert.rejects(resolver.servedDigests("tiny:nope"), ModelNotFoundError);
    const missing = digestOfBytes(Buffer.from("not stored"));
    await assert.rejects(resolver.filesOf(missing, "ghost"), (error: unknown) => error instanceof ModelNotLocalError && /'ghost'/.test(error.message));
  });
});
