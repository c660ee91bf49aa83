import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadConfig } from "../config/config.js";
import { issueKey } from "../gateway/issue-key.js";
import { createLogger } from "../logging/logger.js";
import { startGrove, type RunningGrove } from "../services.js";
import { createTestModel, type TestModel } from "../test-support/grove-fixture.js";

// /metrics scraped around real requests, and the request id in logs and headers.

let model: TestModel;
let grove: RunningGrove;
let client: OpenAI;
let modelId: string;
const logLines: Record<string, unknown>[] = [];

before(async () => {
  model = await createTestModel();
  const config = loadConfig({ env: {}, flags: { home: join(model.directory, "home"), model: model.path, port: 0, threads: 1, contextSize: 512 } });
  grove = await startGrove(config, createLogger("info", { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) }));
  client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
  modelId = grove.engine.models[0]!.info.id;
});

after(async () => {
  await grove?.close();
  await model?.cleanup();
});

/** Parses the Prometheus text format into `name{labels}` → value. */
async function scrape(headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const response = await fetch(`${grove.url}/metrics`, { headers });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

const sample = (samples: Map<string, number>, key: string) => samples.get(key) ?? 0;

describe("metrics", () => {
  test("counters and histograms move by what the requests did", async () => {
    const before = await scrape();
    const plain = await client.chat.completions.create({ model: modelId, messages: [{ role: "user", content: "Hello" }], max_tokens: 8, temperature: 0 });
    const stream = await client.chat.completions.create({
      model: modelId,
      messages: [{ role: "user", content: "Count" }],
      max_tokens: 12,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    let streamed: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) if (chunk.usage) streamed = chunk.usage;
    await assert.rejects(client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }), { status: 404 });
    const afterwards = await scrape();

    const route = '/v1/chat/completions';
    const ok = `grove_requests_total{route="${route}",model="${modelId}",status="200"}`;
    assert.equal(sample(afterwards, ok) - sample(before, ok), 2);
    // A name that was never accepted does not become a label.
    const missing = `grove_requests_total{route="${route}",model="",status="404"}`;
    assert.equal(sample(afterwards, missing) - sample(before, missing), 1);
    const prompt = `grove_prompt_tokens_total{model="${modelId}"}`;
    const completion = `grove_completion_tokens_total{model="${modelId}"}`;
    assert.equal(sample(afterwards, prompt) - sample(before, prompt), plain.usage!.prompt_tokens + streamed!.prompt_tokens);
    assert.equal(sample(afterwards, completion) - sample(before, completion), plain.usage!.completion_tokens + streamed!.completion_tokens);
    assert.equal(streamed!.completion_tokens, 12);
    const ttftCount = `grove_time_to_first_token_seconds_count{model="${modelId}"}`;
    assert.equal(sample(afterwards, ttftCount) - sample(before, ttftCount), 2);
    const ttftInf = `grove_time_to_first_token_seconds_bucket{le="+Inf",model="${modelId}"}`;
    assert.equal(sample(afterwards, ttftInf) - sample(before, ttftInf), 2);
    const durationCount = `grove_request_duration_seconds_count{route="${route}",model="${modelId}"}`;
    assert.equal(sample(afterwards, durationCount) - sample(before, durationCount), 2);
    assert.ok(sample(afterwards, `grove_request_duration_seconds_sum{route="${route}",model="${modelId}"}`) > 0);

    assert.equal(sample(afterwards, "grove_models_loaded"), 1);
    assert.equal(sample(afterwards, `grove_slots_total{model="${modelId}"}`), grove.engine.models[0]!.info.slots);
    assert.equal(sample(afterwards, `grove_slots_busy{model="${modelId}"}`), 0);
    assert.equal(sample(afterwards, `grove_queue_depth{model="${modelId}"}`), 0);
  });

  test("every log line of a request carries its id, which the response header returns", async () => {
    const start = logLines.length;
    const response = await fetch(`${grove.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "trace-4711" },
      body: JSON.stringify({ model: modelId, messages: [{ role: "user", content: "Hi" }], max_tokens: 4, stream: true }),
    });
    assert.equal(response.headers.get("x-request-id"), "trace-4711");
    await response.text();
    const failing = await fetch(`${grove.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "trace-4712" },
      body: JSON.stringify({ model: "no-such-model", messages: [{ role: "user", content: "Hi" }] }),
    });
    assert.equal(failing.status, 404);
    assert.equal(failing.headers.get("x-request-id"), "trace-4712");
    await failing.text();
    // Lines are written synchronously; the completion line of the last request may trail its response.
    for (let wait = 0; wait < 100 && !logLines.slice(start).some((line) => line.reqId === "trace-4712" && line.msg === "request completed"); wait++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    const lines = logLines.slice(start);
    assert.ok(lines.length >= 5, JSON.stringify(lines));
    for (const line of lines) assert.ok(line.reqId === "trace-4711" || line.reqId === "trace-4712", `a line without the request id: ${JSON.stringify(line)}`);
    assert.ok(lines.filter((line) => line.reqId === "trace-4711").length >= 2);
    assert.ok(lines.some((line) => line.reqId === "trace-4712" && line.code === "model_not_found"));

    // An id that could forge log content is replaced by a fresh one.
    const forged = await fetch(`${grove.url}/v1/models`, { headers: { "x-request-id": "bad id\nwith newline".replace("\n", " ") } });
    await forged.text();
    assert.match(forged.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  });

  test("with keys configured, only an admin key may scrape", async () => {
    const admin = await issueKey(grove.gateway.store, { name: "ops", admin: true, limits: {} }, new Date());
    const user = await issueKey(grove.gateway.store, { name: "app", admin: false, limits: {} }, new Date());
    assert.equal((await fetch(`${grove.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${grove.url}/metrics`, { headers: { authorization: `Bearer ${user.secret}` } })).status, 403);
    const samples = await scrape({ authorization: `Bearer ${admin.secret}` });
    assert.ok(samples.has("grove_models_loaded"));
  });
});
