import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Ollama } from "ollama";
import { loadConfig } from "../config/config.js";
import { generateModel } from "../forge/generate/generate-model.js";
import { startGrove, type RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";
import { spawnCli } from "../test-support/run-cli.js";

// Ollama's model lifecycle against the real server (store mode, port 0) through the official
// `ollama` client and `grove ps|stop`: keep_alive (durations, 0 unloads, negative keeps), /api/ps,
// /api/copy and /api/delete with Ollama's shapes and statuses, and Grove's refusals.

let directory: string;
let grove: RunningGrove;
let client: Ollama;
const NEVER_YEAR = "9999";

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-ollama-lifecycle-"));
  const home = join(directory, "home");
  const store = await ModelStore.open(home);
  const make = (seed: number, dtype: "f16" | "q8_0") => generateModel({ preset: "test-tiny", seed, dtype, outPath: join(directory, `${seed}-${dtype}.gguf`) });
  await store.importFile((await make(7, "f16")).path, { name: "tiny:a" });
  // A quantized fork imported without a name: it is named after its parent.
  await store.importFile((await make(7, "q8_0")).path, { base: "tiny:a", relation: "quantized" });
  await store.importFile((await make(8, "f16")).path, { name: "tiny:b" });
  await store.close();
  const config = loadConfig({ env: {}, flags: { home, model: "tiny:a", port: 0, threads: 1, parallel: 2, contextSize: 512, logLevel: "silent" } });
  grove = await startGrove(config);
  client = new Ollama({ host: grove.url });
});

after(async () => {
  await grove?.close();
  await rm(directory, { recursive: true, force: true });
});

const loadedNames = async () => (await client.ps()).models.map((model) => model.name).sort();
const statusOf = (pattern: RegExp, status: number) => (error: any) => error?.status_code === status && pattern.test(String(error?.error ?? error?.message));

/** Waits until `ps` no longer lists `name` (a keep_alive 0 unload runs once the request is done). */
async function untilUnloaded(name: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await loadedNames()).includes(name)) {
    assert.ok(Date.now() < deadline, `${name} still loaded after 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const grv = (...args: string[]) => spawnCli(args, { GROVE_HOST: grove.url }).result;

describe("Ollama's model lifecycle", () => {
  test("/api/ps lists the loaded model with Ollama's fields; the default keeps it loaded", async () => {
    const { models } = await client.ps();
    assert.equal(models.length, 1);
    const [model] = models;
    assert.equal(model!.name, "tiny:a");
    assert.equal(model!.model, "tiny:a");
    assert.match(model!.digest, /^[0-9a-f]{64}$/);
    assert.ok(model!.size > 0);
    assert.equal(model!.size_vram, 0);
    assert.equal((model as unknown as { context_length: number }).context_length, 512);
    assert.equal(model!.details.format, "gguf");
    assert.equal(new Date(model!.expires_at).getUTCFullYear(), Number(NEVER_YEAR));
  });

  test("chat with keep_alive \"5m\" loads a model until five minutes from now", async () => {
    const before = Date.now();
    const answer = await client.chat({ model: "tiny:b", messages: [{ role: "user", content: "hi" }], options: { num_predict: 2 }, keep_alive: "5m" });
    assert.equal(answer.done, true);
    const entry = (await client.ps()).models.find((model) => model.name === "tiny:b");
    assert.ok(entry, "tiny:b is loaded");
    const expires = new Date(entry.expires_at).getTime();
    assert.ok(expires >= before + 300_000 - 1000 && expires <= Date.now() + 300_000 + 1000, String(entry.expires_at));
    // The busiest (longest left) model is listed first, as Ollama sorts.
    assert.deepEqual((await client.ps()).models.map((model) => model.name), ["tiny:a", "tiny:b"]);
  });

  test("keep_alive 0 without messages unloads now and answers done_reason \"unload\"", async () => {
    const answer = await client.chat({ model: "tiny:b", messages: [], keep_alive: 0 });
    assert.equal(answer.done, true);
    assert.equal(answer.done_reason, "unload");
    assert.deepEqual(await loadedNames(), ["tiny:a"]);
    // Unloading what is not loaded is no error (Ollama's expireRunner), and generate answers the same.
    const again = await client.generate({ model: "tiny:b", prompt: "", keep_alive: 0 });
    assert.equal(again.done_reason, "unload");
    assert.equal(again.response, "");
  });

  test("keep_alive 0 with a prompt answers, then unloads; negative keeps the model for good", async () => {
    const answer = await client.generate({ model: "tiny:b", prompt: "hello", options: { num_predict: 2 }, keep_alive: 0 });
    assert.ok(answer.done_reason === "stop" || answer.done_reason === "length");
    await untilUnloaded("tiny:b");
    await client.embed({ model: "tiny:b", input: "hello", keep_alive: -1 });
    const entry = (await client.ps()).models.find((model) => model.name === "tiny:b");
    assert.equal(new Date(entry!.expires_at).getUTCFullYear(), Number(NEVER_YEAR));
    // A number is seconds.
    await client.chat({ model: "tiny:b", messages: [], keep_alive: 90 });
    const ninety = (await client.ps()).models.find((model) => model.name === "tiny:b");
    assert.ok(Math.abs(new Date(ninety!.expires_at).getTime() - (Date.now() + 90_000)) < 5_000, String(ninety!.expires_at));
  });

  test("/api/chat with messages and keep_alive 0 answers, then unloads (issue 23)", async () => {
    await client.chat({ model: "tiny:b", messages: [], keep_alive: -1 });
    assert.ok((await loadedNames()).includes("tiny:b"));
    const answer = await client.chat({ model: "tiny:b", messages: [{ role: "user", content: "hi" }], options: { num_predict: 2 }, keep_alive: 0 });
    assert.ok(answer.done_reason === "stop" || answer.done_reason === "length", answer.done_reason);
    await untilUnloaded("tiny:b");
    // Loaded again as the earlier test left it, for grove ps below.
    await client.chat({ model: "tiny:b", messages: [], keep_alive: 90 });
  });

  test("an /api/ route that does not exist is a 404 in Ollama's error shape; elsewhere OpenAI's (issue 23)", async () => {
    for (const [method, path] of [["POST", "/api/pul"], ["GET", "/api/nothing/here?x=1"], ["DELETE", "/api/generate"]] as const) {
      const response = await fetch(`${grove.url}${path}`, { method });
      assert.equal(response.status, 404, path);
      const body = (await response.json()) as { error: unknown };
      assert.equal(typeof body.error, "string", `${method} ${path}: ${JSON.stringify(body)}`);
      assert.match(body.error as string, new RegExp(`No route for ${method} /api/`));
    }
    const openai = (await (await fetch(`${grove.url}/v1/nothing`)).json()) as { error: { message: string; code: string } };
    assert.equal(openai.error.code, "not_found");
  });

  test("a bad duration is a 400 naming keep_alive; an unknown model to unload is a 404", async () => {
    await assert.rejects(client.chat({ model: "tiny:b", messages: [], keep_alive: "soon" }), statusOf(/keep_alive must be a duration/, 400));
    await assert.rejects(client.generate({ model: "tiny:b", prompt: "x", keep_alive: "5 minutes" }), statusOf(/keep_alive/, 400));
    await assert.rejects(client.generate({ model: "nope:x", prompt: "", keep_alive: 0 }), statusOf(/nope:x/, 404));
  });

  test("grove ps shows name, digest, memory, processor, slots and until when; grove stop unloads", async () => {
    const ps = await grv("ps");
    assert.equal(ps.code, 0, ps.stderr);
    const lines = ps.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^NAME\s+ID\s+SIZE\s+PROCESSOR\s+CONTEXT\s+SLOTS\s+UNTIL$/);
    const a = lines.find((line) => line.startsWith("tiny:a "));
    assert.match(a ?? "", /^tiny:a\s+[0-9a-f]{12}\s+\S+ [KMG]?B\s+100% CPU\s+512\s+0\/2\s+Forever$/);
    const b = lines.find((line) => line.startsWith("tiny:b "));
    assert.match(b ?? "", /\s(A minute|\d+ (minutes|seconds)) from now$/);
    const json = JSON.parse((await grv("ps", "--json")).stdout) as { models: { name: string; slots_total: number; expires_at: string }[] };
    assert.deepEqual(json.models.map((model) => [model.name, model.slots_total]).sort(), [["tiny:a", 2], ["tiny:b", 2]]);

    const stop = await grv("stop", "tiny:b");
    assert.equal(stop.code, 0, stop.stderr);
    assert.deepEqual(await loadedNames(), ["tiny:a"]);
    const unknown = await grv("stop", "nope:x");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error \(model_not_found\): The model 'nope:x'/);
    const nobody = await spawnCli(["ps"], { GROVE_HOST: "127.0.0.1:1" }).result;
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /No Grove server answers at http:\/\/127\.0\.0\.1:1/);
  });

  test("/api/copy gives a model another name (case-folded); a taken name is 409, an unknown source 404", async () => {
    assert.deepEqual(await client.copy({ source: "tiny:a", destination: "Team:Small-F16" }), { status: "success" });
    const names = (await client.list()).models.map((model) => model.name);
    assert.ok(names.includes("team:small-f16"), names.join(", "));
    assert.ok(names.includes("tiny:a-q8_0"), "the fork imported without a name got one");
    const answer = await client.chat({ model: "TEAM:small-f16", messages: [{ role: "user", content: "hi" }], options: { num_predict: 1 } });
    assert.equal(answer.done, true);
    await assert.rejects(client.copy({ source: "tiny:b", destination: "team:small-f16" }), statusOf(/already names another model/, 409));
    await assert.rejects(client.copy({ source: "nope:x", destination: "other:x" }), statusOf(/nope:x/, 404));
    await assert.rejects(client.copy({ source: "tiny:a", destination: "bad name" }), statusOf(/Invalid model name/, 400));
  });

  test("/api/delete drops one name; the last name of a model a fork needs is 409; the model goes with its last name", async () => {
    assert.deepEqual(await client.delete({ model: "tiny:a" }), { status: "success" });
    assert.ok(!(await client.list()).models.some((model) => model.name === "tiny:a"));
    await assert.rejects(client.delete({ model: "team:small-f16" }), statusOf(/fork.*tiny:a-q8_0/, 409));
    await assert.rejects(client.delete({ model: "nope:x" }), statusOf(/nope:x/, 404));
    // tiny:b has no fork: its last name takes the model, which is unloaded too.
    await client.chat({ model: "tiny:b", messages: [], keep_alive: -1 });
    await client.delete({ model: "tiny:b" });
    assert.ok(!(await loadedNames()).includes("tiny:b"));
    await assert.rejects(client.chat({ model: "tiny:b", messages: [] }), statusOf(/tiny:b/, 404));
  });
});
