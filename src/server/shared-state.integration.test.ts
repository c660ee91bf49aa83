import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { loadConfig } from "../config/config.js";
import { openPostgresDatabase } from "../store/postgres-database.js";
import { startGrove, type RunningGrove } from "../services.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";
import { startPostgres, type TestPostgres } from "../test-support/postgres-server.js";
import { callApi, type ApiInit } from "../test-support/post-json.js";
import { startRedis, type TestRedis } from "../test-support/redis-server.js";
import { runCli, spawnCli } from "../test-support/run-cli.js";

// Two Grove replicas (two real servers on port 0, each with its own home, as on two machines)
// share one throwaway PostgreSQL (keys, budgets, usage) and one Redis (rate-limit counters),
// the set-up of a load-balanced deployment. Missing server binaries fail with the Debian
// package to install (see test-support).

let model: TestModel;
let postgres: TestPostgres;
let redis: TestRedis;
let database: string;
let replicas: [RunningGrove, RunningGrove];
let modelId: string;
const ADMIN = "grove-test-admin-secret";
/** Every key secret handed out, for the scan of the database at the end. */
const secrets: string[] = [ADMIN];

const messages = [{ role: "user" as const, content: "Say something." }];

async function api(grove: RunningGrove, path: string, init: ApiInit = {}) {
  return callApi(grove.url, path, init);
}

async function createKey(grove: RunningGrove, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const created = await api(grove, "/api/keys", { key: ADMIN, body });
  assert.equal(created.status, 201, created.text);
  secrets.push(created.json.secret);
  return { id: created.json.key.id, secret: created.json.secret };
}

const chat = (grove: RunningGrove, key: string, extra: Record<string, unknown> = {}) =>
  api(grove, "/v1/chat/completions", { key, body: { model: modelId, messages, max_tokens: 4, temperature: 0, ...extra } });

const replica = (index: number) => replicas[index % 2]!;

before(async () => {
  [model, postgres, redis] = await Promise.all([createTestModel(), startPostgres(), startRedis()]);
  database = await postgres.createDatabase("replicas");
  const shared = { database, redis: redis.url, apiKey: ADMIN, parallel: 4, contextSize: 1024, queueLimit: 400 };
  // Started together: both migrate the schema at once, as replicas rolling out would.
  replicas = (await Promise.all(["a", "b"].map((name) => startTestGrove(model, { ...shared, home: join(model.directory, `home-${name}`) })))) as [
    RunningGrove,
    RunningGrove,
  ];
  modelId = replicas[0].engine.models[0]!.info.id;
});

after(async () => {
  await Promise.all((replicas ?? []).map((grove) => grove?.close()));
  await Promise.all([postgres?.stop(), redis?.stop()]);
  await model?.cleanup();
});

describe("two replicas on one PostgreSQL + Redis", () => {
  test("a key created through replica A works on replica B; revoked on B, it is refused on A", async () => {
    const [a, b] = replicas;
    const { id, secret } = await createKey(a, { name: "shared" });
    assert.equal((await chat(b, secret)).status, 200);
    assert.deepEqual((await api(b, "/api/keys", { key: ADMIN })).json.keys.map((key: any) => key.id).includes(id), true);
    assert.equal((await api(b, `/api/keys/${id}/revoke`, { method: "POST", key: ADMIN })).status, 200);
    const refused = await chat(a, secret);
    assert.equal(refused.status, 403);
    assert.match(refused.json.error.message, /revoked/);
    assert.equal((await chat(a, "grove-sk-not-a-key")).status, 401, "keys exist on every replica, so a key is required");
  });

  test("budget race: 200 concurrent requests split across replicas never spend more than the budget; settled spend = usage", async () => {
    const promptTokens = replicas[0].engine.getModel(modelId).applyChatTemplate(messages).length;
    const maxTokens = 8;
    const budget = 12 * (promptTokens + maxTokens);
    const { id, secret } = await createKey(replicas[0], { budget_tokens: budget, period: "day" });
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, index) => chat(replica(index), secret, { max_tokens: maxTokens, ignore_eos: true })),
    );
    const ok = responses.filter((response) => response.status === 200);
    const refused = responses.filter((response) => response.status === 429);
    assert.equal(ok.length + refused.length, 200, `statuses: ${[...new Set(responses.map((response) => response.status))]}`);
    assert.ok(refused.length > 0 && ok.length >= 12, `${ok.length} admitted, ${refused.length} refused`);
    for (const response of refused) assert.equal(response.json.error.code, "insufficient_quota");
    const servedBy = [0, 1].map((side) => responses.filter((response, index) => index % 2 === side && response.status === 200).length);
    assert.ok(servedBy.every((count) => count > 0), `both replicas admitted requests: ${servedBy}`);
    const used = ok.reduce((sum, response) => sum + response.json.usage.total_tokens, 0);
    assert.ok(used <= budget, `admitted spend ${used} within the budget ${budget}`);
    for (const grove of replicas) {
      const key = (await api(grove, `/api/keys/${id}`, { key: ADMIN })).json;
      assert.equal(key.budget.reservedTokens, 0, "every reservation settled");
      assert.equal(key.budget.spentTokens, used, "spent = tokens the clients were told they used");
    }
    const rows = (await api(replicas[1], `/api/usage?key=${id}&limit=1000`, { key: ADMIN })).json.usage;
    assert.equal(rows.length, 200, "one usage row per request, from both replicas, refused ones included");
    assert.equal(rows.filter((row: any) => row.status === 429).length, refused.length);
    assert.equal(rows.reduce((sum: number, row: any) => sum + row.promptTokens + row.completionTokens, 0), used);
  });

  test("requests per minute are counted once across replicas", async () => {
    // Fixed one-minute windows: start well inside one, so that the count cannot reset mid-test.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 45_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 100));
    const { secret } = await createKey(replicas[0], { rpm: 4 });
    const responses = await Promise.all(Array.from({ length: 10 }, (_, index) => chat(replica(index), secret)));
    assert.equal(responses.filter((response) => response.status === 200).length, 4, `statuses: ${responses.map((response) => response.status)}`);
    const refused = responses.filter((response) => response.status === 429);
    assert.equal(refused.length, 6);
    for (const response of refused) {
      assert.equal(response.json.error.code, "rate_limit_exceeded");
      assert.ok(Number(response.headers.get("retry-after")) >= 1);
    }
  });

  test("a concurrency slot held on replica A is held on replica B", async () => {
    const [a, b] = replicas;
    const { secret } = await createKey(a, { concurrency: 1 });
    const client = new OpenAI({ baseURL: `${a.url}/v1`, apiKey: secret, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: modelId,
      messages,
      // The whole context: the tiny model decodes thousands of tokens a second, and the slot must
      // still be held while replica B is asked (a few milliseconds later).
      max_tokens: 960,
      stream: true,
      ignore_eos: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next(); // A is generating: the slot is taken.
    const refused = await chat(b, secret);
    assert.equal(refused.status, 429, refused.text);
    assert.match(refused.json.error.message, /1 concurrent requests/);
    while (!(await iterator.next()).done);
    // The slot is released as the server settles the stream, just after the client's last chunk.
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200; attempt++) {
      status = (await chat(b, secret)).status;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(status, 200);
  });

  test("grove keys/usage --database see what the replicas wrote", async () => {
    const created = await runCli("keys", "create", "--name", "from-cli", "--json", "--database", database, "--home", join(model.directory, "home-cli"));
    assert.equal(created.code, 0, created.stderr);
    const { secret, key } = JSON.parse(created.stdout);
    secrets.push(secret);
    assert.equal((await chat(replicas[1], secret)).status, 200, "a key made by the CLI works on a replica");
    const usage = await runCli("usage", "--key", key.id, "--json", "--database", database, "--home", join(model.directory, "home-cli"));
    assert.equal(usage.code, 0, usage.stderr);
    assert.equal(JSON.parse(usage.stdout).usage.length, 1);
  });

  test("no key secret is stored in clear: a scan of every table of the shared database", async () => {
    const db = await openPostgresDatabase(database);
    try {
      const { rows } = await db.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'");
      assert.ok(rows.length >= 5);
      let dump = "";
      for (const { table_name } of rows) {
        dump += (await db.query<{ text: string }>(`SELECT coalesce(json_agg(t)::text, '') AS text FROM "${table_name}" t`)).rows[0]!.text;
      }
      assert.ok(dump.includes("key_"), "the dump holds the keys' rows");
      for (const secret of secrets) assert.ok(!dump.includes(secret) && !dump.includes(secret.slice(9, 40)), "a secret in clear");
    } finally {
      await db.close();
    }
  });
});

describe("startup errors", () => {
  test("an unreachable database or Redis, or a bad URL, stops startup with a message naming the setting", async () => {
    const home = join(model.directory, "home-bad");
    const config = (flags: Record<string, unknown>) =>
      loadConfig({ env: {}, flags: { home, model: model.path, port: 0, threads: 1, logLevel: "silent", ...flags } });
    await assert.rejects(startGrove(config({ database: "postgres://grove:hunter2@127.0.0.1:1/grove" })), (error: Error) => {
      assert.match(error.message, /Cannot connect to PostgreSQL at postgres:\/\/grove:\*\*\*@127\.0\.0\.1:1\/grove \(set with --database \(GROVE_DATABASE_URL\)\)/);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
    await assert.rejects(startGrove(config({ database, redis: "redis://127.0.0.1:1" })), { code: "config_invalid", message: /Cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/ });
    assert.throws(() => config({ database: "mysql://root:hunter2@db/grove" }), (error: Error) => {
      assert.match(error.message, /Invalid value "mysql:\/\/…" for database .*--database or GROVE_DATABASE_URL.*postgres:\/\//);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
    assert.throws(() => loadConfig({ env: { GROVE_REDIS_URL: "localhost:6379" } }), { message: /for redis \(from environment variable GROVE_REDIS_URL.*redis:\/\// });
  });

  test("grove serve exits non-zero with the reason when the database is unreachable", async () => {
    const run = spawnCli(["serve", "--model", model.path, "--port", "0", "--home", join(model.directory, "home-cli-serve")], {
      GROVE_DATABASE_URL: "postgres://grove@127.0.0.1:1/grove",
    });
    const result = await run.result;
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Cannot connect to PostgreSQL at postgres:\/\/grove@127\.0\.0\.1:1\/grove/);
  });
});
