import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { SqliteUpstreamStore } from "../gateway/sqlite-upstream-store.js";
import type { RunningGrove } from "../services.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";

// A second Grove process (`bin/grove.js serve`) is the upstream of the Grove under test: requests
// go through it with the official client, fail over when it dies, and recover when it returns.

const BIN = fileURLToPath(new URL("../../bin/grove.js", import.meta.url));
const UPSTREAM_KEY = "upstream-secret-0123456789";
const LOCAL_ID = "test-tiny-s7";
let model: TestModel;
let upstreamHome: string;
let upstream: { child: ChildProcess; url: string };
let grove: RunningGrove;
let client: OpenAI;

/** Starts `grove serve` on `port` (0: any) and resolves once it prints its URL. */
async function startUpstream(port: number): Promise<{ child: ChildProcess; url: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, GROVE_HOME: upstreamHome, GROVE_LOG_LEVEL: "warn" };
  for (const key of ["GROVE_PORT", "GROVE_MODEL", "GROVE_HOST", "GROVE_API_KEY", "GROVE_DATABASE_URL", "GROVE_REDIS_URL"]) delete env[key];
  const child = spawn(
    process.execPath,
    [BIN, "serve", "--port", String(port), "--model", model.path, "--threads", "1", "--ctx-size", "512", "--api-key", UPSTREAM_KEY],
    { stdio: ["ignore", "pipe", "pipe"], env },
  );
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let stdout = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /http:\/\/127\.0\.0\.1:\d+/.exec(stdout);
      if (match) resolve(match[0]);
    });
    child.on("close", (code) => reject(new Error(`upstream exited with ${code} before listening: ${stderr}`)));
  });
  return { child, url };
}

async function stopUpstream(): Promise<void> {
  if (upstream.child.exitCode !== null || upstream.child.signalCode !== null) return;
  const closed = once(upstream.child, "close");
  upstream.child.kill("SIGKILL");
  await closed;
}

before(async () => {
  model = await createTestModel();
  upstreamHome = await mkdtemp(join(tmpdir(), "grove-upstream-"));
  upstream = await startUpstream(0);
  const home = join(model.directory, "home");
  mkdirSync(home, { recursive: true });
  const routes = SqliteUpstreamStore.open(home);
  const createdAt = new Date().toISOString();
  await routes.putUpstream({ name: "remote", url: `${upstream.url}/v1`, remoteModel: LOCAL_ID, apiKey: UPSTREAM_KEY, fallback: LOCAL_ID, createdAt });
  await routes.putUpstream({ name: "remote-strict", url: `${upstream.url}/v1`, remoteModel: LOCAL_ID, apiKey: UPSTREAM_KEY, createdAt });
  await routes.close();
  grove = await startTestGrove(model, { contextSize: 512, upstreamHealthInterval: "200ms" });
  client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  await grove?.close();
  if (upstream) await stopUpstream();
  await rm(upstreamHome, { recursive: true, force: true });
  await model?.cleanup();
});

const messages = [{ role: "user" as const, content: "Name a colour." }];

async function usageOf(requestId: string) {
  const rows = (await grove.gateway.store.listUsage({})).filter((row) => row.requestId === requestId);
  assert.equal(rows.length, 1, `one usage row for ${requestId}`);
  return rows[0]!;
}

describe("upstreams", () => {
  test("chat through the upstream, not streaming: the client's name, the upstream's usage, metered alike", async () => {
    const { data, response } = await client.chat.completions.create({ model: "remote", messages, max_tokens: 10, temperature: 0 }).withResponse();
    assert.equal(data.object, "chat.completion");
    assert.equal(data.model, "remote");
    assert.ok(data.usage!.prompt_tokens > 0);
    assert.ok(data.usage!.completion_tokens >= 1 && data.usage!.completion_tokens <= 10);
    const row = await usageOf(response.headers.get("x-request-id")!);
    assert.equal(row.modelDigest, "upstream:remote");
    assert.equal(row.model, "remote");
    assert.equal(row.status, 200);
    assert.equal(row.promptTokens, data.usage!.prompt_tokens);
    assert.equal(row.completionTokens, data.usage!.completion_tokens);
  });

  test("streaming passes the SSE through; usage only when asked, metered either way", async () => {
    const { data: stream, response } = await client.chat.completions
      .create({ model: "remote", messages, max_tokens: 12, ignore_eos: true, stream: true, stream_options: { include_usage: true } } as OpenAI.ChatCompletionCreateParamsStreaming)
      .withResponse();
    let content = "";
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      assert.equal(chunk.model, "remote");
      content += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(finish, "length");
    assert.equal(usage?.completion_tokens, 12);
    assert.ok(content.length > 0);
    const row = await usageOf(response.headers.get("x-request-id")!);
    assert.equal(row.completionTokens, 12);
    assert.equal(row.promptTokens, usage!.prompt_tokens);
    assert.ok(row.ttftMs !== undefined && row.ttftMs > 0);

    const { data: quiet, response: quietResponse } = await client.chat.completions
      .create({ model: "remote", messages, max_tokens: 5, ignore_eos: true, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming)
      .withResponse();
    for await (const chunk of quiet) assert.ok(chunk.usage === undefined || chunk.usage === null, "no usage unless asked");
    assert.equal((await usageOf(quietResponse.headers.get("x-request-id")!)).completionTokens, 5);
  });

  test("embeddings and the model listing", async () => {
    const embedded = await client.embeddings.create({ model: "remote", input: ["one", "two"] });
    assert.equal(embedded.data.length, 2);
    assert.ok(embedded.data[0]!.embedding.length > 0);
    assert.ok(embedded.usage.prompt_tokens > 0);
    const listed = (await client.models.list()).data.map((entry) => entry.id);
    assert.ok(listed.includes("remote") && listed.includes("remote-strict") && listed.includes(LOCAL_ID), listed.join(","));
  });

  test("upstream down: fail over to the fallback, or a clear 503 naming the upstream; back after the next health check", async () => {
    const port = Number(new URL(upstream.url).port);
    await stopUpstream();
    const failedOver = await client.chat.completions.create({ model: "remote", messages, max_tokens: 4 });
    assert.equal(failedOver.model, LOCAL_ID, "answered by the local fallback");
    const refused = await client.chat.completions.create({ model: "remote-strict", messages, max_tokens: 4 }).then(
      () => assert.fail("expected a 503"),
      (error: unknown) => error,
    );
    assert.ok(refused instanceof OpenAI.APIError);
    assert.equal(refused.status, 503);
    assert.match(refused.message, /upstream 'remote-strict'/);
    assert.equal(grove.upstreams.engines.find((engine) => engine.name === "remote-strict")?.healthy, false);

    upstream = await startUpstream(port);
    const deadline = Date.now() + 15_000;
    while (!grove.upstreams.engines.every((engine) => engine.healthy)) {
      assert.ok(Date.now() < deadline, "upstreams healthy again within 15 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const recovered = await client.chat.completions.create({ model: "remote-strict", messages, max_tokens: 4 });
    assert.equal(recovered.model, "remote-strict");
    const back = await client.chat.completions.create({ model: "remote", messages, max_tokens: 4 });
    assert.equal(back.model, "remote");
  });
});
