import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { RunningGrove } from "../services.js";
import { startTestGrove, type TestModel } from "../test-support/grove-fixture.js";
import { llamaSource } from "../test-support/llama-source.js";
import { postJson } from "../test-support/post-json.js";
import { runCli } from "../test-support/run-cli.js";

// llama-server's clients against Grove: its own endpoints, the OpenAI routes without /v1, a
// request without `model`, special tokens in raw prompts, x-api-key — on the shipped chat model
// (a real BPE vocabulary with ChatML's special tokens) served by the real server.

const REPO = resolve(fileURLToPath(new URL("../../", import.meta.url)));
const CHAT_MODEL = join(REPO, "data", "demo", "models", "demo-s-chat-f16.gguf");


let directory: string;
let grove: RunningGrove;
let keyed: RunningGrove;
let base: string;

const post = (path: string, body: unknown, url = base, headers: Record<string, string> = {}) => postJson(url, path, body, headers);

before(async () => {
  directory = await mkdtemp(join(tmpdir(), "grove-llama-compat-"));
  const model: TestModel = { path: CHAT_MODEL, directory, cleanup: async () => {} };
  grove = await startTestGrove(model, { parallel: 2, contextSize: 512, slots: "on" });
  base = grove.url;
  const keyedModel: TestModel = { path: CHAT_MODEL, directory: join(directory, "keyed"), cleanup: async () => {} };
  keyed = await startTestGrove(keyedModel, { parallel: 1, contextSize: 256, apiKey: "sekret-key" });
});

after(async () => {
  await grove?.close();
  await keyed?.close();
  await rm(directory, { recursive: true, force: true });
});

describe("a request without model, and the OpenAI routes without /v1", () => {
  test("the served model answers chat, completions and embeddings without `model`", async () => {
    const chat = await post("/v1/chat/completions", { messages: [{ role: "user", content: "What part of speech is dog?" }], max_tokens: 4, temperature: 0 });
    assert.equal(chat.status, 200, chat.text);
    assert.equal(chat.json.model, grove.defaultModel);
    const completion = await post("/v1/completions", { prompt: "dog", max_tokens: 2 });
    assert.equal(completion.status, 200, completion.text);
  });

  test("/chat/completions and /models answer as their /v1 routes (/completions and /embeddings are llama-server's own, as there)", async () => {
    const chat = await post("/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
    assert.equal(chat.status, 200, chat.text);
    assert.equal(chat.json.object, "chat.completion");
    const models = await fetch(`${base}/models`, { headers: { accept: "application/json" } });
    assert.equal(models.status, 200);
    assert.equal(((await models.json()) as any).data[0].id, grove.defaultModel);
  });
});

describe("special tokens in raw prompts", () => {
  test("`<|im_start|>` in a completions prompt is one token, as llama-server parses it; parse_special: false keeps it text", async () => {
    const prompt = "<|im_start|>user\nWhat part of speech is dog?<|im_end|>\n<|im_start|>assistant\n";
    const parsed = await post("/v1/completions", { prompt, max_tokens: 1, echo: true, logprobs: 0, temperature: 0 });
    const literal = await post("/v1/completions", { prompt, max_tokens: 1, echo: true, logprobs: 0, temperature: 0, parse_special: false });
    assert.equal(parsed.status, 200, parsed.text);
    assert.ok(parsed.json.usage.prompt_tokens < literal.json.usage.prompt_tokens - 10, `${parsed.json.usage.prompt_tokens} vs ${literal.json.usage.prompt_tokens}`);
    const { logprobs, text } = parsed.json.choices[0];
    assert.equal(logprobs.tokens[0], "<|im_start|>");
    // The echo is the prompt as written, and every token's offset points into it.
    assert.ok(text.startsWith(prompt), text);
    logprobs.tokens.forEach((token: string, index: number) => {
      if (logprobs.text_offset[index] < prompt.length) assert.equal(text.slice(logprobs.text_offset[index], logprobs.text_offset[index] + token.length), token);
    });
    // Parsed, the chat model answers as it was taught; literal text is not its format.
    const answer = await post("/v1/completions", { prompt, max_tokens: 4, temperature: 0 });
    assert.match(answer.json.choices[0].text, /^(noun|verb|adjective|adverb)/);
  });

  test("grove eval --endpoint on Grove's own API gives the in-process scores on the shipped chat tasks", async () => {
    const home = join(directory, "eval-home");
    const imported = await runCli("import", CHAT_MODEL, "--name", "chat:f16", "--home", home);
    assert.equal(imported.code, 0, imported.stderr);
    for (const task of ["pos-exact", "pos-mc"]) {
      const file = join(REPO, "data", "demo", "tasks", `${task}.jsonl`);
      const local = await runCli("eval", "chat:f16", "--task", file, "--home", home, "--json");
      const remote = await runCli("eval", "--endpoint", `${base}/v1`, "--model", grove.defaultModel, "--task", file, "--home", home, "--json");
      assert.equal(local.code, 0, local.stderr);
      assert.equal(remote.code, 0, remote.stderr);
      const metrics = (run: { stdout: string }) => {
        const [entry] = JSON.parse(run.stdout);
        return (entry.result ?? entry).metrics;
      };
      assert.deepEqual(metrics(remote), metrics(local), task);
      assert.ok(Object.values(metrics(local) as Record<string, number>)[0]! > 0.5, `${task} scores above chance`);
    }
  });
});

describe("llama-server's endpoints", () => {
  test("/tokenize and /detokenize round-trip; with_pieces names each token's text; special tokens parse", async () => {
    const content = "What part of speech is dog?";
    const tokens = await post("/tokenize", { content });
    assert.equal(tokens.status, 200, tokens.text);
    assert.ok(tokens.json.tokens.length > 3);
    const back = await post("/detokenize", { tokens: tokens.json.tokens });
    assert.equal(back.json.content, content);
    const pieces = await post("/tokenize", { content, with_pieces: true });
    assert.equal(pieces.json.tokens.map((entry: { piece: string }) => entry.piece).join(""), content);
    const special = await post("/tokenize", { content: "<|im_start|>user" });
    assert.equal((await post("/detokenize", { tokens: [special.json.tokens[0]] })).json.content, "<|im_start|>");
    const mixed = await post("/tokenize", { content: [special.json.tokens[0], "user"] });
    assert.deepEqual(mixed.json.tokens, special.json.tokens);
  });

  test("/apply-template renders the model's template; /props and /slots describe the server", async () => {
    const rendered = await post("/apply-template", { messages: [{ role: "user", content: "hi" }] });
    assert.equal(rendered.json.prompt, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    const bare = await post("/apply-template", { messages: [{ role: "user", content: "hi" }], add_generation_prompt: false });
    assert.equal(bare.json.prompt, "<|im_start|>user\nhi<|im_end|>\n");
    const props = (await (await fetch(`${base}/props`)).json()) as any;
    assert.equal(props.total_slots, 2);
    assert.equal(props.default_generation_settings.n_ctx, 512);
    assert.match(props.model_path, /\.gguf$/);
    assert.ok(!props.model_path.includes("/"), "no server path");
    assert.match(props.chat_template, /im_start/);
    const slots = (await (await fetch(`${base}/slots`)).json()) as any[];
    assert.equal(slots.length, 2);
  });

  test("/completion: llama-server's fields, return_tokens, n_probs, several prompts, a grammar", async () => {
    const one = await post("/completion", { prompt: "<|im_start|>user\nWhat part of speech is cat?<|im_end|>\n<|im_start|>assistant\n", n_predict: 6, temperature: 0, return_tokens: true, n_probs: 2 });
    assert.equal(one.status, 200, one.text);
    assert.equal(typeof one.json.content, "string");
    assert.equal(one.json.tokens.length, one.json.tokens_predicted);
    assert.equal(one.json.timings.predicted_n, one.json.tokens_predicted);
    assert.equal(one.json.completion_probabilities.length, one.json.tokens_predicted);
    assert.equal(one.json.completion_probabilities[0].top_logprobs.length, 2);
    assert.ok(["eos", "limit"].includes(one.json.stop_type));
    const tokens = (await post("/tokenize", { content: "a dog", add_special: true })).json.tokens;
    const many = await post("/completion", { prompt: [tokens, "a dog"], n_predict: 3, temperature: 0 });
    assert.equal(many.json.length, 2);
    assert.equal(many.json[0].content, many.json[1].content);
    const fields = await post("/completion", { prompt: "dog", n_predict: 2, response_fields: ["content", "generation_settings/n_predict"] });
    assert.deepEqual(Object.keys(fields.json).sort(), ["content", "generation_settings/n_predict"]);
    assert.equal(fields.json["generation_settings/n_predict"], 2);
    const words = await post("/completion", { prompt: "dog is a", n_predict: 6, temperature: 0, logit_bias: { " noun": -100, ".": false } });
    assert.equal(words.status, 200, words.text);
    assert.ok(!words.json.content.includes(" noun") && !words.json.content.includes("."), words.json.content);
    const constrained = await post("/completion", { prompt: "dog is a", n_predict: 8, temperature: 1, seed: 3, grammar: 'root ::= "yes" | "no"' });
    assert.ok(["yes", "no"].includes(constrained.json.content), constrained.text);
  });

  test("/completion: n_probs up to the whole vocabulary (a distribution to compare), beyond the bound a 400", async () => {
    const whole = await post("/completion", { prompt: "dog is a", n_predict: 1, temperature: 0, n_probs: 65_536 });
    assert.equal(whole.status, 200, whole.text.slice(0, 300));
    const top = whole.json.completion_probabilities[0].top_logprobs as { id: number; logprob: number }[];
    assert.equal(new Set(top.map((entry) => entry.id)).size, top.length);
    assert.ok(top.length > 1000, `${top.length} tokens`);
    const mass = top.reduce((sum, entry) => sum + Math.exp(entry.logprob), 0);
    assert.ok(Math.abs(mass - 1) < 1e-3, `probabilities sum to ${mass}`);
    for (let index = 1; index < top.length; index++) assert.ok(top[index - 1]!.logprob >= top[index]!.logprob);
    const tooMany = await post("/completion", { prompt: "dog", n_predict: 1, n_probs: 65_537 });
    assert.equal(tooMany.status, 400, tooMany.text);
  });

  test("/completion streams llama-server's events: tokens in each, stop: true with timings last, no [DONE]", async () => {
    const response = await fetch(`${base}/completion`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "dog", n_predict: 5, stream: true, temperature: 0, ignore_eos: true }) });
    const events = (await response.text()).split("\n\n").filter((line) => line.startsWith("data: ")).map((line) => line.slice(6));
    assert.ok(!events.includes("[DONE]"));
    const parsed = events.map((event) => JSON.parse(event));
    const last = parsed.at(-1);
    assert.equal(last.stop, true);
    assert.equal(last.stop_type, "limit");
    assert.equal(last.timings.predicted_n, 5);
    for (const event of parsed.slice(0, -1)) {
      assert.equal(event.stop, false);
      assert.ok(event.tokens.length > 0);
    }
  });

  test("bad input: a clear 4xx/501 and the server keeps serving", async () => {
    const cases: [string, unknown, number, RegExp][] = [
      ["/tokenize", { content: 5 }, 400, /content/],
      ["/detokenize", { tokens: [99_999_999] }, 400, /vocabulary/],
      ["/detokenize", { tokens: "1,2" }, 400, /tokens/],
      ["/completion", { prompt: {} }, 400, /prompt/],
      ["/completion", { prompt: { prompt_string: "x <__media__>", multimodal_data: ["iVBORw0KGgo="] } }, 400, /Media input is not supported: this model has no multimodal projector/],
      ["/completion", { prompt: [{ prompt_string: "x" }, { prompt_string: "y", multimodal_data: "iVBORw0KGgo=" }] }, 400, /multimodal projector/],
      ["/v1/chat/completions", { messages: [{ role: "user", content: "x" }], response_format: { type: "json_object", schema: { type: "hiccup" } } }, 400, /Invalid JSON schema/],
      ["/v1/chat/completions", { messages: [{ role: "user", content: "x" }], response_format: { type: "json_object", schema: 123 } }, 400, /response_format/],
      ["/completion", { prompt: "" }, 400, /empty/],
      ["/completion", { prompt: "x", grammar: "root ::= (" }, 400, /grammar/],
      ["/completion", { prompt: "x", grammar: 'root ::= "a"', json_schema: { type: "object" } }, 400, /grammar or json_schema/],
      ["/completion", { prompt: "x", n_predict: -5 }, 400, /n_predict/],
      ["/apply-template", { messages: [] }, 400, /messages/],
      ["/infill", { input_prefix: "def f(", input_suffix: "):" }, 501, /fill-in-the-middle/],
      ["/completion", { model: "no-such-model", prompt: "x" }, 404, /no-such-model/],
    ];
    for (const [path, body, status, message] of cases) {
      const result = await post(path, body);
      assert.equal(result.status, status, `${path} ${JSON.stringify(body)}: ${result.text}`);
      assert.match(result.json.error.message, message, path);
    }
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
  });

  test("with --api-key, llama-server's endpoints need the key too, given as Bearer or x-api-key", async () => {
    for (const path of ["/tokenize", "/completion", "/completions", "/embeddings", "/apply-template"]) {
      const refused = await post(path, { content: "x", prompt: "x", input: "x", messages: [{ role: "user", content: "x" }] }, keyed.url);
      assert.equal(refused.status, 401, path);
    }
    assert.equal((await fetch(`${keyed.url}/props`)).status, 401);
    const bearer = await post("/tokenize", { content: "dog" }, keyed.url, { authorization: "Bearer sekret-key" });
    assert.equal(bearer.status, 200);
    const header = await post("/tokenize", { content: "dog" }, keyed.url, { "x-api-key": "sekret-key" });
    assert.equal(header.status, 200);
    const wrong = await post("/tokenize", { content: "dog" }, keyed.url, { "x-api-key": "wrong" });
    assert.equal(wrong.status, 401);
  });
});

describe("llama-server's switches: --reasoning, chat_template_kwargs, --accept-any-model, grammar and json_schema on chat", () => {
  let thinking: RunningGrove;
  let quiet: RunningGrove;
  before(async () => {
    const QWEN3 = join(await llamaSource(), "models", "templates", "Qwen-Qwen3-0.6B.jinja");
    const model = (name: string): TestModel => ({ path: CHAT_MODEL, directory: join(directory, name), cleanup: async () => {} });
    thinking = await startTestGrove(model("thinking"), { parallel: 1, contextSize: 256, chatTemplateFile: QWEN3, acceptAnyModel: "on" });
    quiet = await startTestGrove(model("quiet"), { parallel: 1, contextSize: 256, chatTemplateFile: QWEN3, reasoning: "off" });
  });
  after(async () => {
    await thinking?.close();
    await quiet?.close();
  });

  test("--reasoning off, or chat_template_kwargs enable_thinking false, closes the thinking block in the prompt", async () => {
    const messages = [{ role: "user", content: "What is today?" }];
    const open = await post("/apply-template", { messages }, thinking.url);
    assert.ok(open.json.prompt.endsWith("<|im_start|>assistant\n"), open.text);
    const closed = "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    assert.ok((await post("/apply-template", { messages }, quiet.url)).json.prompt.endsWith(closed));
    assert.ok((await post("/apply-template", { messages, chat_template_kwargs: { enable_thinking: false } }, thinking.url)).json.prompt.endsWith(closed));
    const withTools = await post("/apply-template", { messages, tools: [{ type: "function", function: { name: "now", parameters: { type: "object", properties: {} } } }] }, thinking.url);
    assert.match(withTools.json.prompt, /<tools>[\s\S]*"now"[\s\S]*<\/tools>/);
  });

  test("--accept-any-model: any name means the one model served; without it an unknown name is a 404", async () => {
    const any = await post("/v1/chat/completions", { model: "test", messages: [{ role: "user", content: "hi" }], max_tokens: 2 }, thinking.url);
    assert.equal(any.status, 200, any.text);
    assert.equal(any.json.model, "test");
    const strict = await post("/v1/chat/completions", { model: "test", messages: [{ role: "user", content: "hi" }], max_tokens: 2 }, quiet.url);
    assert.equal(strict.status, 404);
  });

  test("chat completions take llama-server's grammar and json_schema; a bad grammar is a 400", async () => {
    const grammar = await post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 8, grammar: 'root ::= "a"{5,5}' }, quiet.url);
    assert.equal(grammar.json.choices[0].message.content, "aaaaa");
    const schema = await post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 24, json_schema: { type: "object", properties: { n: { type: "integer", minimum: 0, maximum: 9 } }, required: ["n"] } }, quiet.url);
    assert.equal(typeof JSON.parse(schema.json.choices[0].message.content).n, "number", schema.text);
    // llama-server's extension: json_object with a schema constrains by the schema (a draft-4 tuple too).
    const constant = await post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 6, response_format: { type: "json_object", schema: { const: "42" } } }, quiet.url);
    assert.equal(constant.json.choices[0].message.content, '"42"', constant.text);
    const tuple = await post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 24, response_format: { type: "json_object", schema: { items: [{ type: "integer" }] } } }, quiet.url);
    const parsed = JSON.parse(tuple.json.choices[0].message.content);
    assert.ok(Array.isArray(parsed) && parsed.length === 1 && Number.isInteger(parsed[0]), tuple.text);
    const bad = await post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], grammar: "root ::= (" }, quiet.url);
    assert.equal(bad.status, 400);
  });
});

describe("counting a chat's prompt", () => {
  test("/chat/completions/input_tokens counts what the chat would evaluate, tools included; usage chunks carry timings", async () => {
    const messages = [{ role: "user", content: "What part of speech is dog?" }];
    const counted = await post("/chat/completions/input_tokens", { messages });
    const verbose = await post("/v1/chat/completions", { messages, max_tokens: 1, verbose: true });
    assert.equal(verbose.json.__verbose.prompt, "<|im_start|>user\nWhat part of speech is dog?<|im_end|>\n<|im_start|>assistant\n");
    assert.equal((await post("/v1/chat/completions", { messages, max_tokens: 1 })).json.__verbose, undefined);
    const ran = await post("/v1/chat/completions", { messages, max_tokens: 1 });
    assert.equal(counted.json.input_tokens, ran.json.usage.prompt_tokens);
    const withTools = await post("/v1/chat/completions/input_tokens", { messages, tools: [{ type: "function", function: { name: "f" } }] });
    assert.ok(withTools.json.input_tokens > counted.json.input_tokens);
    assert.equal((await post("/chat/completions/input_tokens", { messages: [] })).status, 400);
    const stream = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messages, max_tokens: 3, stream: true, stream_options: { include_usage: true } }) });
    const events = (await stream.text()).split("\n\n").filter((line) => line.startsWith("data: {")).map((line) => JSON.parse(line.slice(6)));
    const usage = events.find((event) => event.choices.length === 0);
    assert.ok(usage.timings.predicted_n >= 1);
    assert.equal(events[0].choices[0].delta.content, null);
  });
});

describe("bad serve flags of this change", () => {
  test("--chat-template-file that is missing, a directory, or a template that does not parse; --reasoning outside auto/on/off: a clear error, nothing served", async () => {
    const model = (name: string): TestModel => ({ path: CHAT_MODEL, directory: join(directory, name), cleanup: async () => {} });
    await assert.rejects(startTestGrove(model("bad-1"), { chatTemplateFile: join(directory, "no-such.jinja") }), /chat template file .*no-such\.jinja/);
    await assert.rejects(startTestGrove(model("bad-2"), { chatTemplateFile: directory }), /not a regular file/);
    const broken = join(directory, "broken.jinja");
    await writeFile(broken, "{% for message in messages %}{{ message.content ");
    await assert.rejects(startTestGrove(model("bad-3"), { chatTemplateFile: broken }), /chat template does not parse/);
    await assert.rejects(startTestGrove(model("bad-4"), { reasoning: "sometimes" }), /reasoning/);
  });
});
