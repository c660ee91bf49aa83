import assert from "node:assert/strict";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { InvalidModelFileError } from "../core/errors.js";
import { readGgufHeader } from "./gguf-header-reader.js";
import { inspectGgufFile } from "./gguf-inspect.js";
import { TINY_TOKENS, writeTinyLlama } from "../test-support/gguf-test-fixtures.js";

let directory: string;
before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-gguf-inspect-"));
});
after(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("inspectGgufFile", () => {
  it("reports the summary, every key with long arrays summarised, and the tensor table", async () => {
    const path = await writeTinyLlama(directory, "tiny.gguf");
    const inspection = await inspectGgufFile(path, { arrayItems: 3 });
    assert.equal(inspection.problem, undefined);
    assert.equal(inspection.summary?.architecture, "llama");
    assert.equal(inspection.version, 3);
    assert.equal(inspection.metadataCount, inspection.metadata.length);
    const byKey = new Map(inspection.metadata.map((entry) => [entry.key, entry]));
    assert.deepEqual(byKey.get("general.name"), { key: "general.name", type: "str", value: "tiny" });
    assert.deepEqual(byKey.get("llama.attention.layer_norm_rms_epsilon")?.value, 0.00001);
    const tokens = byKey.get("tokenizer.ggml.tokens");
    assert.deepEqual([tokens?.type, tokens?.length, tokens?.items], ["arr[str]", TINY_TOKENS.length, TINY_TOKENS.slice(0, 3)]);
    assert.match(tokens?.digest ?? "", /^[0-9a-f]{64}$/);
    assert.equal(inspection.tensors.length, 11);
    assert.deepEqual(inspection.tensors[0], { name: "token_embd.weight", shape: [32, 8], type: "F32", bytes: 1024, fileOffset: inspection.tensors[0].fileOffset });
    assert.ok(JSON.stringify(inspection).length > 0, "JSON-safe (no bigint)");
  });

  it("reports why a parseable file is invalid, next to what it holds", async () => {
    const path = await writeTinyLlama(directory, "no-heads.gguf", { omit: ["llama.attention.head_count"] });
    const inspection = await inspectGgufFile(path);
    assert.match(inspection.problem ?? "", /^no-heads\.gguf: metadata key 'llama\.attention\.head_count' is missing/);
    assert.equal(inspection.summary, undefined);
    assert.equal(inspection.tensors[0].type, "F32");
  });

  it("shows the stored tensor infos when the layout itself is broken", async () => {
    const path = await writeTinyLlama(directory, "bad-type.gguf");
    const end = (await readGgufHeader(path)).headerEnd;
    const handle = await open(path, "r+");
    await handle.write(Buffer.from([99, 0, 0, 0]), 0, 4, end - 12); // the last tensor's ggml type
    await handle.close();
    const inspection = await inspectGgufFile(path);
    assert.match(inspection.problem ?? "", /tensor output_norm\.weight has unknown ggml type 99/);
    assert.deepEqual(inspection.tensors.at(-1), { name: "output_norm.weight", shape: [32], type: "type 99" });
    assert.equal(inspection.tensors[0].fileOffset, undefined);
  });

  it("refuses what it cannot parse", async () => {
    const text = join(directory, "notes.txt");
    await writeFile(text, "hello");
    await assert.rejects(inspectGgufFile(text), (error: unknown) => error instanceof InvalidModelFileError && /not a GGUF file/.test(error.message));
  });
});
