import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadConfig } from "../../config/config.js";
import { createLogger } from "../../logging/logger.js";
import { openSqliteDatabase } from "../../store/sqlite-database.js";
import { startGrove, type RunningGrove } from "../../services.js";
import { createTestModel, type TestModel } from "../../test-support/grove-fixture.js";
import { callApi, type ApiInit } from "../../test-support/post-json.js";
import { checkBindSafety } from "../server.js";

// Keys, limits, budgets and metering against the real server (port 0, a generated model),
// through fetch and the official OpenAI client. Every log line of the server is captured at
// trace level, and the last test scans it and a dump of service.db for the secrets created.

let model: TestModel;
let grove: RunningGrove;
let home: string;
let modelId: string;
const logLines: string[] = [];
const secrets: string[] = [];
let admin: string;

const messages = [{ role: "user" as const, content: "Say something." }];

async function api(path: string, init: ApiInit = {}) {
  return callApi(grove.url, path, init);
}

async function createKey(body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const created = await api("/api/keys", { key: admin, body });
  assert.equal(created.status, 201, created.text);
  secrets.push(created.json.secret);
  return { id: created.json.key.id, secret: created.json.secret };
}

const chat = (key: string | undefined, extra: Record<string, unknown> = {}) =>
  api("/v1/chat/completions", { key, body: { model: modelId, messages, max_tokens: 4, temperature: 0, ...extra } });

before(async () => {
  model = await createTestModel();
  home = join(model.directory, "home");
  const capture = new Writable({
    write(chunk, _encoding, callback) {
      logLines.push(chunk.toString());
      callback();
    },
  });
  const config = loadConfig({ env: {}, flags: { home, model: model.path, port: 0, threads: 1, parallel: 4, contextSize: 512, queueLimit: 400 } });
  grove = await startGrove(config, createLogger("trace", capture));
  modelId = grove.engine.models[0]!.info.id;
});

after(async () => {
  await grove?.close();
  await model?.cleanup();
});

describe("keys", () => {
  test("without keys the API is open and still metered; the first key can be made there", async () => {
    const open = await chat("anything");
    assert.equal(open.status, 200, open.text);
    const rows = await grove.gateway.store.listUsage({});
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.keyId, undefined);
    assert.equal(rows[0]!.promptTokens, open.json.usage.prompt_tokens);
    assert.equal(rows[0]!.completionTokens, open.json.usage.completion_tokens);
    const created = await api("/api/keys", { body: { name: "root", admin: true } });
    assert.equal(created.status, 201);
    admin = created.json.secret;
    secrets.push(admin);
    assert.match(admin, /^grove-sk-/);
    assert.equal(created.json.key.admin, true);
    assert.equal(JSON.stringify(created.json.key).includes(admin), false, "the record never holds the secret");
  });

  test("once a key exists: 401 invalid_api_key without one or with a wrong one, never echoing it", async () => {
    const missing = await chat(undefined);
    assert.equal(missing.status, 401);
    assert.equal(missing.json.error.code, "invalid_api_key");
    assert.equal(missing.json.error.type, "authentication_error");
    const wrongKey = "grove-sk-wrongwrongwrongwrongwrongwrongwrongwrong";
    const wrong = await chat(wrongKey);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.text.includes(wrongKey), false);
    assert.equal((await api("/api/keys")).status, 401);
    assert.equal((await fetch(`${grove.url}/health`)).status, 200, "/health stays open");
    const client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: admin, maxRetries: 0 });
    const response = await client.chat.completions.create({ model: modelId, messages, max_tokens: 2 });
    assert.ok(response.usage!.completion_tokens >= 1);
    const refused = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "nope", maxRetries: 0 });
    await assert.rejects(refused.models.list(), (error: any) => error instanceof OpenAI.AuthenticationError && error.code === "invalid_api_key");
  });

  test("a non-admin key may run models but not the admin routes (403 permission_error)", async () => {
    const user = await createKey({ name: "user" });
    assert.equal((await chat(user.secret)).status, 200);
    assert.equal((await api("/v1/models", { key: user.secret })).status, 200);
    for (const path of ["/api/keys", "/api/usage", "/api/models"]) {
      const denied = await api(path, { key: user.secret });
      assert.equal(denied.status, 403, path);
      assert.equal(denied.json.error.code, "permission_denied");
      assert.equal(denied.json.error.type, "permission_error");
    }
  });

  test("model scope, expiry and revocation: 403", async () => {
    const scoped = await createKey({ models: ["some-other-model"] });
    const outside = await chat(scoped.secret);
    assert.equal(outside.status, 403);
    assert.equal(outside.json.error.param, "model");
    const inside = await createKey({ models: [modelId] });
    assert.equal((await chat(inside.secret)).status, 200);

    const expired = await grove.gateway.store.createKey(
      { name: "old", secretHash: "0".repeat(64), prefix: "grove-sk-0000", admin: false, expiresAt: "2001-01-01T00:00:00.000Z", limits: {} },
      new Date("2000-01-01"),
    );
    assert.equal((await api(`/api/keys/${expired.id}`, { key: admin })).json.status, "expired");

    const revoked = await api(`/api/keys/${inside.id}`, { method: "DELETE", key: admin });
    assert.equal(revoked.status, 200);
    assert.equal(revoked.json.key.status, "revoked");
    const after = await chat(inside.secret);
    assert.equal(after.status, 403);
    assert.match(after.json.error.message, /revoked/);
    assert.equal((await api(`/api/keys/${inside.id}/revoke`, { method: "POST", key: admin })).status, 200, "revoking twice is fine");
  });

  test("bad input to /api/keys: 400 naming the field, 404 for an unknown id", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ budget_tokens: -1 }, "budget_tokens"],
      [{ expires: "tomorrow" }, "expires"],
      [{ period: "day" }, "period"],
      [{ rpm: 0 }, "rpm"],
      [{ models: [] }, "models"],
      [{ admin: "yes" }, "admin"],
      [{ budget: 5 }, "budget"],
    ];
    for (const [body, param] of cases) {
      const response = await api("/api/keys", { key: admin, body });
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal(response.json.error.param, param);
    }
    for (const id of ["key_0000000000000000", "nope"]) {
      assert.equal((await api(`/api/keys/${id}`, { method: "DELETE", key: admin })).status, 404);
      assert.equal((await api(`/api/keys/${id}`, { key: admin })).status, 404);
    }
    const list = await api("/api/keys", { key: admin });
    assert.ok(list.json.keys.length >= 4);
    assert.equal(list.json.keys.some((key: any) => "secret" in key || "secretHash" in key), false);
  });

  test("a non-loopback bind needs a key: refused on an empty home, allowed once a key exists", async () => {
    assert.throws(() => checkBindSafety("0.0.0.0", "", false), (error: any) => error.code === "config_invalid" && /grove keys create/.test(error.message));
    assert.doesNotThrow(() => checkBindSafety("0.0.0.0", "", true));
    const config = loadConfig({ env: {}, flags: { home: join(model.directory, "empty-home"), model: model.path, host: "0.0.0.0", port: 0 } });
    await assert.rejects(startGrove(config), (error: any) => error.code === "config_invalid");
  });
});

describe("limits", () => {
  test("requests per minute: 429 rate_limit_exceeded with Retry-After", async () => {
    const limited = await createKey({ rpm: 2 });
    assert.equal((await chat(limited.secret)).status, 200);
    assert.equal((await chat(limited.secret)).status, 200);
    const third = await chat(limited.secret);
    assert.equal(third.status, 429);
    assert.equal(third.json.error.code, "rate_limit_exceeded");
    const retryAfter = Number(third.headers.get("retry-after"));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  });

  test("tokens per minute count prompt + max_tokens before admission", async () => {
    const limited = await createKey({ tpm: 50 });
    const refused = await chat(limited.secret, { max_tokens: 60 });
    assert.equal(refused.status, 429);
    assert.match(refused.json.error.message, /tokens per minute/);
    assert.equal((await chat(limited.secret, { max_tokens: 2 })).status, 200);
  });

  test("budget race: 200 concurrent requests never spend more than the budget; settled spend = tokens used", async () => {
    const promptTokens = grove.engine.getModel(modelId).applyChatTemplate(messages).length;
    const maxTokens = 8;
    const budget = 12 * (promptTokens + maxTokens);
    const { id, secret } = await createKey({ budget_tokens: budget, period: "day" });
    const responses = await Promise.all(Array.from({ length: 200 }, () => chat(secret, { max_tokens: maxTokens, ignore_eos: true })));
    const ok = responses.filter((response) => response.status === 200);
    const refused = responses.filter((response) => response.status === 429);
    assert.equal(ok.length + refused.length, 200, `statuses: ${[...new Set(responses.map((response) => response.status))]}`);
    assert.ok(refused.length > 0 && ok.length >= 12, `${ok.length} admitted, ${refused.length} refused`);
    for (const response of refused) {
      assert.equal(response.json.error.code, "insufficient_quota");
      assert.ok(Number(response.headers.get("retry-after")) >= 1);
    }
    const used = ok.reduce((sum, response) => sum + response.json.usage.total_tokens, 0);
    assert.ok(used <= budget, `admitted spend ${used} within the budget ${budget}`);
    const key = (await api(`/api/keys/${id}`, { key: admin })).json;
    assert.equal(key.budget.reservedTokens, 0, "every reservation settled");
    assert.equal(key.budget.spentTokens, used, "spent = tokens the clients were told they used");
    const rows = (await api(`/api/usage?key=${id}&limit=1000`, { key: admin })).json.usage;
    assert.equal(rows.length, 200, "one usage row per request, refused ones included");
    assert.equal(rows.filter((row: any) => row.status === 429).length, refused.length);
    assert.equal(rows.reduce((sum: number, row: any) => sum + row.promptTokens + row.completionTokens, 0), used);
  });
});

describe("metering", () => {
  test("an aborted stream counts only the tokens generated", async () => {
    const { id, secret } = await createKey({ name: "streamer", budget_tokens: 100_000 });
    const client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: secret, maxRetries: 0 });
    const controller = new AbortController();
    const maxTokens = 400;
    const stream = await client.chat.completions.create(
      { model: modelId, messages, max_tokens: maxTokens, stream: true, logprobs: true, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsStreaming,
      { signal: controller.signal },
    );
    let received = 0;
    try {
      for await (const chunk of stream) {
        received += chunk.choices[0]?.logprobs?.content?.length ?? 0;
        if (received >= 5 && !controller.signal.aborted) controller.abort();
      }
    } catch (error) {
      // Depending on timing the client ends the loop quietly or with an abort error.
      if (!(error instanceof OpenAI.APIUserAbortError)) throw error;
    }
    assert.ok(received >= 5 && received < maxTokens, `received ${received}`);
    let row: any;
    for (let attempt = 0; attempt < 200 && row === undefined; attempt++) {
      row = (await api(`/api/usage?key=${id}`, { key: admin })).json.usage[0];
      if (row === undefined) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.ok(row, "the usage row was written");
    console.log(`aborted stream: client received ${received} tokens, usage row counts ${row.completionTokens}`);
    assert.equal(row.cancelled, true);
    assert.equal(row.status, 499);
    assert.ok(row.completionTokens >= received, `${row.completionTokens} >= ${received}`);
    // Beyond what the client read: what was in flight when it aborted (the tiny model decodes
    // thousands of tokens a second, far faster than the client reads: tens of chunks sit in the
    // socket buffers), and the token being decoded when the server saw the connection close.
    // Cancellation stops the generation long before max_tokens, and the row counts what it made.
    assert.ok(row.completionTokens < maxTokens / 2, `${row.completionTokens} < ${maxTokens / 2}`);
    const key = (await api(`/api/keys/${id}`, { key: admin })).json;
    assert.equal(key.budget.spentTokens, row.promptTokens + row.completionTokens, "the reservation settled to the tokens generated");
    assert.equal(key.budget.reservedTokens, 0);
  });

  test("prices turn tokens into dollars; /api/usage groups and refuses bad filters", async () => {
    const digest = grove.engine.getModel(modelId).info.digest;
    const set = await api(`/api/prices/${digest}`, { method: "PUT", key: admin, body: { input_per_1m: 1, output_per_1m: 2 } });
    assert.equal(set.status, 200, set.text);
    const response = await chat(admin, { max_tokens: 3 });
    const rows = (await api("/api/usage?limit=1", { key: admin })).json.usage;
    const expected = (response.json.usage.prompt_tokens * 1 + response.json.usage.completion_tokens * 2) / 1e6;
    assert.ok(Math.abs(rows[0].costUsd - expected) < 1e-12, `${rows[0].costUsd} vs ${expected}`);
    assert.equal(rows[0].keyId, "key_" + rows[0].keyId.slice(4));
    assert.ok(rows[0].ttftMs > 0 && rows[0].durationMs >= rows[0].ttftMs);
    const byModel = (await api("/api/usage?by=model", { key: admin })).json;
    assert.equal(byModel.groups[0].group, digest);
    assert.ok(byModel.groups[0].requests >= 200);
    for (const query of ["by=week", "since=yesterday", "limit=0"]) {
      assert.equal((await api(`/api/usage?${query}`, { key: admin })).status, 400, query);
    }
    assert.equal((await api("/api/prices/llama", { method: "PUT", key: admin, body: { input_per_1m: 1, output_per_1m: 1 } })).status, 400);
    assert.equal((await api(`/api/prices/${digest}`, { method: "PUT", key: admin, body: { input_per_1m: -1, output_per_1m: 1 } })).status, 400);
  });
});

describe("secrets", () => {
  test("no created secret appears in the captured logs or in service.db", async () => {
    assert.ok(secrets.length >= 8);
    assert.ok(logLines.length > 100, "the server logged its requests");
    const logs = logLines.join("");
    const db = openSqliteDatabase(join(home, "service.db"));
    let dump = "";
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
      for (const { name } of tables) dump += JSON.stringify(db.prepare(`SELECT * FROM "${name}"`).all());
    } finally {
      db.close();
    }
    const files = (await readdir(home)).filter((file) => file.startsWith("service.db"));
    const raw = (await Promise.all(files.map((file) => readFile(join(home, file))))).map((bytes) => bytes.toString("latin1")).join("");
    assert.ok(dump.includes("grove-sk-"), "the dump holds the display prefixes, so the scan reads real data");
    for (const secret of secrets) {
      const random = secret.slice("grove-sk-".length);
      for (const [where, text] of [["logs", logs], ["database dump", dump], ["database files", raw]] as const) {
        assert.equal(text.includes(random), false, `a secret appears in the ${where}`);
      }
    }
  });
});
