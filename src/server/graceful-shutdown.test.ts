import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { listeningUrl } from "../bench/server-process.js";
import { SqliteServiceStore } from "../gateway/sqlite-service-store.js";
import { createTestModel, type TestModel } from "../test-support/grove-fixture.js";

// SIGTERM to `grove serve` (a child process, as in production) during a long stream.

const BIN = fileURLToPath(new URL("../../bin/grove.js", import.meta.url));
let model: TestModel;
let home: string;

before(async () => {
  model = await createTestModel();
  home = await mkdtemp(join(tmpdir(), "grove-shutdown-"));
});
after(async () => {
  await rm(home, { recursive: true, force: true });
  await model.cleanup();
});

test("SIGTERM during a long stream: exit 0 after the grace period, the stream ends with an error event, usage rows exist", async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, GROVE_HOME: home, GROVE_LOG_LEVEL: "warn" };
  for (const key of ["GROVE_PORT", "GROVE_MODEL", "GROVE_HOST", "GROVE_API_KEY", "GROVE_DATABASE_URL", "GROVE_REDIS_URL"]) delete env[key];
  const graceMs = 1000;
  const child = spawn(
    process.execPath,
    [BIN, "serve", "--port", "0", "--model", model.path, "--ctx-size", "8192", "--parallel", "1", "--threads", "1", "--shutdown-grace", `${graceMs}ms`],
    { stdio: ["ignore", "pipe", "pipe"], env },
  );
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "close") as Promise<[number | null]>;
  const url = await listeningUrl(child, () => stderr);
  const modelId = "test-tiny-s7";
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": "long-stream-1" },
    // About 18 s of decoding for this model on one thread: far longer than the grace period.
    body: JSON.stringify({ model: modelId, messages: [{ role: "user", content: "Go on" }], max_tokens: 8000, ignore_eos: true, stream: true }),
  });
  assert.equal(response.status, 200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let signalledAt = 0;
  let contentChunks = 0;
  let clientError: unknown;
  let queued: Promise<Response> | undefined;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      contentChunks = text.split("\n\n").filter((event) => event.includes('"content":"') && !event.includes('"content":""')).length;
      if (signalledAt === 0 && contentChunks > 0) {
        // A second request waits for the only slot; /metrics shows it queued before the signal.
        queued = fetch(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-request-id": "queued-1" },
          body: JSON.stringify({ model: modelId, messages: [{ role: "user", content: "Wait" }], max_tokens: 8 }),
        });
        const deadline = Date.now() + 10_000;
        for (let depth = 0; depth !== 1; ) {
          assert.ok(Date.now() < deadline, "the second request is queued within 10 s");
          const metrics = await (await fetch(`${url}/metrics`)).text();
          depth = Number(/^grove_queue_depth\{model="test-tiny-s7"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
        }
        signalledAt = Date.now();
        child.kill("SIGTERM");
      }
    }
  } catch (error) {
    clientError = error;
  }
  const [code] = await exited;
  const elapsed = Date.now() - signalledAt;
  assert.equal(code, 0, stderr);
  assert.ok(elapsed >= graceMs, `exited ${elapsed} ms after SIGTERM, before the ${graceMs} ms grace period`);
  // A clean end: the last event is an error naming the shutdown, not a cut-off connection.
  assert.equal(clientError, undefined);
  const events = text.trim().split("\n\n");
  const last = JSON.parse(events[events.length - 1]!.slice("data: ".length)) as { error?: { code: string; message: string } };
  assert.equal(last.error?.code, "overloaded");
  assert.match(last.error?.message ?? "", /shutting down/);
  assert.ok(!text.includes("[DONE]"));
  const refused = await queued!;
  assert.equal(refused.status, 503);
  assert.match(((await refused.json()) as { error: { message: string } }).error.message, /shutting down/);

  const store = SqliteServiceStore.open(home);
  try {
    const rows = (await store.listUsage({})).filter((row) => row.requestId === "long-stream-1");
    assert.equal(rows.length, 1);
    const row = rows[0]!;
    assert.equal(row.cancelled, true);
    assert.equal(row.status, 499);
    assert.equal(row.model, modelId);
    // Tokens generated before the cancellation: at least one per content event received, far fewer than asked.
    assert.ok(row.completionTokens >= contentChunks && row.completionTokens < 8000, `${row.completionTokens} tokens, ${contentChunks} chunks`);
    assert.ok(row.promptTokens > 0);
    const waiting = (await store.listUsage({})).filter((usage) => usage.requestId === "queued-1");
    assert.equal(waiting.length, 1);
    assert.equal(waiting[0]!.completionTokens, 0);
    assert.equal(waiting[0]!.status, 499);
  } finally {
    await store.close();
  }
});
