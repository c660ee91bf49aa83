import assert from "node:assert/strict";
import { it } from "node:test";
import type { Digest } from "../core/digest.js";
import { AmbiguousModelError, ConflictError, InvalidRequestError, ModelNotFoundError } from "../core/errors.js";
import type { ModelRecord, Registry } from "../store/registry.js";

/** `sha256:` and `hex` padded with zeros to 64 digits. */
export function digest(hex: string): Digest {
  return `sha256:${hex.padEnd(64, "0")}`;
}

/** A model record with plausible fields, digest from `hex`. */
export function model(hex: string, extra: Partial<ModelRecord> = {}): ModelRecord {
  return {
    digest: digest(hex),
    size: 100,
    architecture: "llama",
    parameterCount: 1000,
    quantization: "F16",
    contextLength: 1024,
    vocabularySize: 512,
    card: { name: hex },
    createdAt: new Date().toISOString(),
    ...extra,
  };
}

/**
 * The behaviour every {@link Registry} shares, as `it` blocks to call inside a `describe`:
 * `open` returns a fresh, empty registry each time (the test closes it).
 */
export function registryContract(open: () => Promise<Registry>): void {
  it("stores models idempotently and round-trips every field", async () => {
    const registry = await open();
    const record = model("ab", { chatTemplate: "{{x}}", license: "mit", card: { author: "grove", tags: ["a"] } });
    assert.equal(await registry.addModel(record), true);
    assert.equal(await registry.addModel({ ...record, size: 5 }), false);
    assert.deepEqual(await registry.getModel(record.digest), record);
    assert.deepEqual(await registry.getModel(model("ac").digest), undefined);
    await registry.close();
  });

  it("finds a unique prefix and lists candidates for an ambiguous one", async () => {
    const registry = await open();
    await registry.addModel(model("abcd01"));
    await registry.addModel(model("abcd02"));
    await registry.addModel(model("ef"));
    assert.equal((await registry.findByPrefix("abcd01")).digest, digest("abcd01"));
    assert.equal((await registry.findByPrefix("ef")).digest, digest("ef"));
    await assert.rejects(registry.findByPrefix("abcd"), (error: unknown) => {
      assert.ok(error instanceof AmbiguousModelError);
      assert.deepEqual(error.candidates, [digest("abcd01"), digest("abcd02")]);
      assert.match(error.message, /abcd010+.*abcd020+/);
      return true;
    });
    await assert.rejects(registry.findByPrefix("1234"), ModelNotFoundError);
    await assert.rejects(registry.findByPrefix("ab%"), InvalidRequestError);
    await registry.close();
  });

  it("points names, moves them and lists them", async () => {
    const registry = await open();
    await registry.addModel(model("a1"));
    await registry.addModel(model("a2"));
    assert.equal(await registry.setName("tiny:latest", digest("a1")), undefined);
    assert.equal(await registry.setName("tiny:f16", digest("a1")), undefined);
    assert.equal(await registry.setName("tiny:latest", digest("a2")), digest("a1"));
    assert.deepEqual(await registry.namesOf(digest("a1")), ["tiny:f16"]);
    assert.equal(await registry.getNameTarget("tiny:latest"), digest("a2"));
    assert.deepEqual((await registry.listNames()).map((record) => record.name), ["tiny:f16", "tiny:latest"]);
    assert.equal(await registry.removeName("tiny:f16"), true);
    assert.equal(await registry.removeName("tiny:f16"), false);
    await assert.rejects(registry.setName("ghost:latest", digest("ff")), ModelNotFoundError);
    await registry.close();
  });

  it("records lineage with recipes and refuses cycles and unknown models", async () => {
    const registry = await open();
    for (const hex of ["b0", "b1", "b2"]) await registry.addModel(model(hex));
    const recipe = { tool: "grove-forge", toolVersion: "0.1.0", parameters: { type: "Q8_0" }, inputs: [digest("b0")] };
    await registry.addEdge({ child: digest("b1"), parent: digest("b0"), relation: "quantized", recipe });
    await registry.addEdge({ child: digest("b2"), parent: digest("b1"), relation: "finetune", recipe: null });
    assert.deepEqual(await registry.parentsOf(digest("b1")), [{ child: digest("b1"), parent: digest("b0"), relation: "quantized", recipe }]);
    assert.deepEqual((await registry.childrenOf(digest("b1"))).map((edge) => edge.child), [digest("b2")]);
    await assert.rejects(registry.addEdge({ child: digest("b0"), parent: digest("b2"), relation: "merge", recipe: null }), /cycle/);
    await assert.rejects(registry.addEdge({ child: digest("b0"), parent: digest("b0"), relation: "merge", recipe: null }), /own parent/);
    await assert.rejects(registry.addEdge({ child: digest("b0"), parent: digest("99"), relation: "merge", recipe: null }), ModelNotFoundError);
    // addEdges is all or none.
    await assert.rejects(
      registry.addEdges([
        { child: digest("b2"), parent: digest("b0"), relation: "merge", recipe: null },
        { child: digest("b2"), parent: digest("98"), relation: "merge", recipe: null },
      ]),
      ModelNotFoundError,
    );
    assert.equal((await registry.listEdges()).length, 2);
    await registry.close();
  });

  it("removes a model with its names and edges, unless an alias routes to it", async () => {
    const registry = await open();
    for (const hex of ["c0", "c1", "c2"]) await registry.addModel(model(hex));
    await registry.addEdge({ child: digest("c1"), parent: digest("c0"), relation: "finetune", recipe: null });
    await registry.addEdge({ child: digest("c2"), parent: digest("c1"), relation: "quantized", recipe: null });
    await registry.setName("mid:latest", digest("c1"));
    await registry.setAlias({ name: "chat", targets: [{ digest: digest("c1"), weight: 9 }, { digest: digest("c2"), weight: 1 }] });
    assert.deepEqual(await registry.getAlias("chat"), { name: "chat", targets: [{ digest: digest("c1"), weight: 9 }, { digest: digest("c2"), weight: 1 }] });
    assert.deepEqual(await registry.aliasesTargeting(digest("c1")), ["chat"]);
    await assert.rejects(registry.removeModel(digest("c1")), ConflictError);
    await registry.setAlias({ name: "chat", targets: [{ digest: digest("c2"), weight: 1 }] });
    assert.equal(await registry.removeModel(digest("c1")), true);
    assert.equal(await registry.removeModel(digest("c1")), false);
    assert.deepEqual(await registry.listEdges(), []);
    assert.equal(await registry.getNameTarget("mid:latest"), undefined);
    assert.deepEqual(await registry.listAliases(), [{ name: "chat", targets: [{ digest: digest("c2"), weight: 1 }] }]);
    await assert.rejects(registry.setAlias({ name: "bad", targets: [] }), InvalidRequestError);
    await assert.rejects(registry.setAlias({ name: "bad", targets: [{ digest: digest("c2"), weight: 0 }] }), InvalidRequestError);
    await assert.rejects(registry.setAlias({ name: "bad", targets: [{ digest: digest("77"), weight: 1 }] }), ModelNotFoundError);
    assert.equal(await registry.removeAlias("chat"), true);
    assert.deepEqual(await registry.listAliases(), []);
    await registry.close();
  });

  it("records alias history, oldest first", async () => {
    const registry = await open();
    await registry.addModel(model("f0"));
    const first = await registry.recordAliasEvent({ alias: "chat", at: "2026-11-29T00:00:00.000Z", action: "set", from: [], to: [{ digest: digest("f0"), weight: 1 }], tasks: [], scores: [], decision: "applied", reason: "first" });
    const second = await registry.recordAliasEvent({ alias: "chat", at: "2026-11-29T00:00:01.000Z", action: "remove", from: [{ digest: digest("f0"), weight: 1 }], to: [], tasks: ["arc"], scores: [{ task: "arc", metric: "acc", higherIsBetter: true, current: 0.5, candidate: null, regression: null }], decision: "refused", reason: "second" });
    assert.ok(second.id > first.id);
    assert.deepEqual(await registry.aliasHistory("chat"), [first, second]);
    assert.deepEqual(await registry.aliasHistory("other"), []);
    await registry.close();
  });
}
