import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { Ollama } from "ollama";
import { loadConfig } from "../config/config.js";
import { recipeOf } from "../forge/recipe/recipe.js";
import { rebuildFork } from "../forge/recipe/rebuild.js";
import { startGrove, type RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";

// `grove create NAME -f Modelfile` (the CLI, as a user runs it) and Ollama's /api/create and
// /api/show (the official `ollama` client), on the demo chat model the repository ships; the
// defaults of the created model apply on every API to requests that do not override them.

const run = promisify(execFile);
const GROVE = new URL("../../bin/grove.js", import.meta.url).pathname;
const DEMO = new URL("../../data/demo/models/demo-s-chat-f16.gguf", import.meta.url).pathname;

// docs/modelfile.md's `mario` example, FROM pointed at the demo model and num_ctx within its
// 512-token training context.
const MARIO = `FROM demo-s-chat:f16
# sets the temperature to 1 [higher is more creative, lower is more coherent]
PARAMETER temperature 1
# sets the context window size to 4096, this controls how many tokens the LLM can use as context to generate the next token
PARAMETER num_ctx 256

# sets a custom system message to specify the behavior of the chat assistant
SYSTEM You are Mario from super mario bros, acting as an assistant.
`;

let directory: string;
let home: string;
let grove: RunningGrove;
let client: Ollama;

const grove_ = (args: string[]) => run(process.execPath, [GROVE, ...args, "--home", home]);

async function createFails(text: string): Promise<string> {
  const file = join(directory, "Bad.modelfile");
  await writeFile(file, text);
  const failure = await grove_(["create", "bad:one", "-f", file]).then(
    () => assert.fail("created"),
    (error: { stderr: string; code: number }) => error,
  );
  assert.notEqual(failure.code, 0);
  return failure.stderr;
}

async function post(path: string, body: object) {
  const response = await fetch(`${grove.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-modelfile-"));
  home = join(directory, "home");
  await grove_(["import", DEMO, "--name", "demo-s-chat:f16"]);
  await writeFile(join(directory, "Modelfile"), MARIO);
  // -f defaults to ./Modelfile, as Ollama's does.
  const created = await run(process.execPath, [GROVE, "create", "mario", "--home", home], { cwd: directory });
  assert.match(created.stdout, /^mario:latest {2}sha256:[0-9a-f]{64} {2}config fork of sha256:/);
  const config = loadConfig({ env: {}, flags: { home, model: "demo-s-chat:f16", port: 0, threads: 1, parallel: 1, contextSize: 512, logLevel: "silent" } });
  grove = await startGrove(config);
  client = new Ollama({ host: grove.url });
});

after(async () => {
  await grove?.close();
  await rm(directory, { recursive: true, force: true });
});

describe("grove create NAME -f Modelfile", () => {
  test("the fork keeps the weights (no new blob) and shows a Modelfile that builds it", async () => {
    const { stdout } = await grove_(["show", "mario", "--modelfile"]);
    assert.match(stdout, /^FROM demo-s-chat:f16$/m);
    assert.match(stdout, /^SYSTEM You are Mario from super mario bros, acting as an assistant\.$/m);
    assert.match(stdout, /^PARAMETER temperature 1$/m);
    assert.match(stdout, /^PARAMETER num_ctx 256$/m);
    const listing = JSON.parse((await grove_(["ls", "--json"])).stdout) as { names: string[]; digest: string; local: boolean }[];
    assert.equal(listing.length, 2);
    assert.ok(listing.every((model) => model.local));
    const verify = await grove_(["verify", "--json"]).catch((error: { stdout: string }) => error);
    assert.doesNotMatch(verify.stdout, /"missing":\["sha256/);
  });

  test("its defaults apply where the request sets none, and the request wins where it does", async () => {
    const ask = [{ role: "user", content: "Who are you?" }];
    const plain = await post("/v1/chat/completions", { model: "mario", messages: ask, max_tokens: 2, verbose: true });
    assert.equal(plain.status, 200, JSON.stringify(plain.body));
    assert.match(plain.body["__verbose"].prompt, /You are Mario from super mario bros/);
    const own = await post("/v1/chat/completions", { model: "mario", messages: [{ role: "system", content: "You are Luigi." }, ...ask], max_tokens: 2, verbose: true });
    assert.match(own.body["__verbose"].prompt, /You are Luigi\./);
    assert.doesNotMatch(own.body["__verbose"].prompt, /Mario/);
    // llama-server's /apply-template and /completion show the prompt and the settings in force.
    const applied = await post("/apply-template", { model: "mario", messages: ask });
    assert.match(applied.body["prompt"], /You are Mario/);
    const defaults = await post("/completion", { model: "mario", prompt: "Hello", n_predict: 1 });
    assert.equal(defaults.body["generation_settings"].temperature, 1);
    const overridden = await post("/completion", { model: "mario", prompt: "Hello", n_predict: 1, temperature: 0.2 });
    assert.equal(overridden.body["generation_settings"].temperature, 0.2);
    // num_ctx is the context of the fork's load; the bare model keeps the server's 512.
    const loaded = (await (await fetch(`${grove.url}/api/ps`)).json()) as { models: { context_length: number }[] };
    assert.ok(loaded.models.some((model) => model.context_length === 256), JSON.stringify(loaded));
    const chat = await client.chat({ model: "mario", messages: ask, options: { num_predict: 2 } });
    assert.equal(chat.done, true);
    const messages = await post("/v1/messages", { model: "mario", max_tokens: 2, messages: ask });
    assert.equal(messages.status, 200, JSON.stringify(messages.body));
  });

  test("bad Modelfiles are refused with the line", async () => {
    assert.match(await createFails("FROM demo-s-chat:f16\n\nFOO bar\n"), /Modelfile line 3: command must be one of/);
    assert.match(await createFails("FROM demo-s-chat:f16\nPARAMETER temperature hot\n"), /Modelfile line 2: invalid float value for temperature: 'hot'/);
    assert.match(await createFails("FROM demo-s-chat:f16\nPARAMETER nonsense 1\n"), /Modelfile line 2: unknown parameter 'nonsense'/);
    assert.match(await createFails("# no model\nSYSTEM hi\n"), /no FROM line/);
    assert.match(await createFails("# a comment\nFROM nowhere:7\n"), /Modelfile line 2: FROM nowhere:7: no such model/);
    assert.match(await createFails("FROM demo-s-chat:f16\nPARAMETER num_ctx 4096\n"), /num_ctx 4096 is above the model's training context of 512/);
  });

  test("the recipe rebuilds the same fork", async () => {
    const store = await ModelStore.open(home);
    try {
      const recipe = await recipeOf(store, "mario");
      assert.equal(recipe.relation, "config");
      const rebuilt = await rebuildFork(store, recipe, { name: "mario:again" });
      assert.equal(rebuilt.matches, true);
      assert.equal(rebuilt.import.model.digest, recipe.output.digest);
    } finally {
      await store.close();
    }
  });
});

describe("Ollama's /api/create and /api/show", () => {
  test("the ollama client creates a fork from a store model and shows its Modelfile, parameters and system", async () => {
    const progress = await client.create({
      model: "luigi",
      from: "demo-s-chat:f16",
      system: "You are Luigi.",
      parameters: { temperature: 0.5, stop: ["<|im_end|>", "\n\n"], num_predict: 3 },
      messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "It's-a me!" }],
      stream: false,
    });
    assert.equal(progress.status, "success");
    const shown = await client.show({ model: "luigi" });
    assert.match(shown.modelfile, /^FROM demo-s-chat:f16$/m);
    assert.match(shown.modelfile, /^SYSTEM You are Luigi\.$/m);
    assert.match(shown.modelfile, /^MESSAGE assistant It's-a me!$/m);
    assert.equal(shown.system, "You are Luigi.");
    assert.match(shown.parameters, /^temperature +0\.5$/m);
    assert.match(shown.parameters, /^stop +"\\n\\n"$/m);
    assert.equal(shown.details.parent_model, "demo-s-chat:f16");
    assert.equal((shown.model_info as unknown as Record<string, unknown>)["general.architecture"], "llama");
    // The MESSAGE conversation comes before the request's; num_predict is the default length.
    const chat = await post("/v1/chat/completions", { model: "luigi", messages: [{ role: "user", content: "And you?" }], verbose: true });
    assert.match(chat.body["__verbose"].prompt, /You are Luigi\.[\s\S]*Hi[\s\S]*It's-a me![\s\S]*And you\?/);
    assert.ok(chat.body["usage"].completion_tokens <= 3);
  });

  test("streamed status lines, the older modelfile field, and errors in Ollama's shape", async () => {
    const lines: string[] = [];
    for await (const part of await client.create({ model: "peach", from: "mario", parameters: { top_k: 7 }, stream: true })) lines.push(part.status);
    assert.equal(lines.at(-1), "success");
    const peach = await client.show({ model: "peach" });
    assert.match(peach.parameters, /^top_k +7$/m);
    // Inherited from mario, as Ollama's FROM a created model keeps its defaults.
    assert.equal(peach.system, "You are Mario from super mario bros, acting as an assistant.");
    const legacy = await post("/api/create", { name: "toad", modelfile: "FROM demo-s-chat:f16\nSYSTEM You are Toad.\n", stream: false });
    assert.equal(legacy.status, 200, JSON.stringify(legacy.body));
    assert.equal((await client.show({ model: "toad" })).system, "You are Toad.");
    const unknown = await post("/api/create", { model: "x", from: "nowhere:1", stream: false });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body["error"], /nowhere:1/);
    const badParameter = await post("/api/create", { model: "x", from: "demo-s-chat:f16", parameters: { temprature: 1 }, stream: false });
    assert.equal(badParameter.status, 400);
    assert.match(badParameter.body["error"], /unknown parameter 'temprature'/);
    const badLine = await post("/api/create", { model: "x", modelfile: "FROM demo-s-chat:f16\nFOO\n", stream: false });
    assert.match(badLine.body["error"], /Modelfile line 2: command must be one of/);
  });
});
