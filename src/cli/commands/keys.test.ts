import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generateModel } from "../../forge/generate/generate-model.js";
import { SqliteServiceStore } from "../../gateway/sqlite-service-store.js";
import { runCli, runCliInProcess } from "../../test-support/run-cli.js";

// `grove keys`, `grove usage` and `grove price` as users run them, on a temp home.

let home: string;
before(async () => {
  home = await mkdtemp(join(tmpdir(), "grove-keys-cli-"));
});
after(async () => {
  await rm(home, { recursive: true, force: true });
});

describe("grove keys / usage / price", () => {
  test("create prints the secret once; list never shows it; revoke marks it", async () => {
    const created = await runCli("keys", "create", "--name", "ci", "--models", "a,b", "--expires", "30d", "--rpm", "60", "--budget-tokens", "1000", "--period", "day", "--json", "--home", home);
    assert.equal(created.code, 0, created.stderr);
    const { key, secret } = JSON.parse(created.stdout);
    assert.match(secret, /^grove-sk-[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(key.models, ["a", "b"]);
    assert.deepEqual(key.limits, { rpm: 60, budgetTokens: 1000, period: "day" });
    const human = await runCli("keys", "create", "--admin", "--home", home);
    assert.equal(human.code, 0);
    const humanSecret = /grove-sk-\S+/.exec(human.stdout)![0];

    const listed = await runCli("keys", "list", "--home", home);
    assert.match(listed.stdout, new RegExp(key.id));
    assert.match(listed.stdout, /0\/1000 tokens per day/);
    const listedJson = await runCli("keys", "list", "--json", "--home", home);
    const keys = JSON.parse(listedJson.stdout);
    assert.equal(keys.length, 2);
    for (const text of [listed.stdout, listedJson.stdout]) {
      assert.equal(text.includes(secret.slice(9)) || text.includes(humanSecret.slice(9)), false);
    }

    const revoked = await runCli("keys", "revoke", key.id, "--home", home);
    assert.equal(revoked.code, 0);
    assert.equal(JSON.parse((await runCli("keys", "list", "--json", "--home", home)).stdout)[0].status, "revoked");
    const raw = await readFile(join(home, "service.db"));
    assert.equal(raw.includes(secret), false);
  });

  test("usage with no requests yet, as a table, JSON and CSV", async () => {
    const json = await runCli("usage", "--by", "model", "--json", "--home", home);
    assert.deepEqual(JSON.parse(json.stdout), { by: "model", groups: [] });
    const split = await runCli("usage", "--by", "hour", "--split", "model", "--json", "--home", home);
    assert.deepEqual(JSON.parse(split.stdout), { by: "hour", split: "model", groups: [] });
    const csv = await runCli("usage", "--since", "7d", "--csv", "--home", home);
    assert.equal(csv.stdout.trim(), "created_at,request_id,key_id,model,model_digest,endpoint,prompt_tokens,completion_tokens,cost_usd,ttft_ms,duration_ms,status,cancelled");
  });

  test("usage --by model shows each model's store name, the digest only for a model the store does not name (issue 23)", async () => {
    const usageHome = await mkdtemp(join(tmpdir(), "grove-usage-names-"));
    try {
      const model = await generateModel({ preset: "test-tiny", seed: 4, dtype: "f16", outPath: join(usageHome, "tiny.gguf") });
      assert.equal((await runCli("import", model.path, "--name", "tiny:named", "--home", usageHome)).code, 0);
      const unnamed = `sha256:${"e".repeat(64)}`;
      const service = await SqliteServiceStore.open(usageHome);
      try {
        const row = { endpoint: "/v1/chat/completions", promptTokens: 5, completionTokens: 2, costUsd: 0, durationMs: 10, status: 200, cancelled: false, createdAt: new Date().toISOString() };
        await service.settle(undefined, { ...row, requestId: "r1", modelDigest: model.digest, model: "alias-x" });
        await service.settle(undefined, { ...row, requestId: "r2", modelDigest: model.digest, model: "tiny:named" });
        await service.settle(undefined, { ...row, requestId: "r3", modelDigest: unnamed, model: "upstream-y" });
      } finally {
        await service.close();
      }
      const table = await runCli("usage", "--by", "model", "--home", usageHome);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /\ntiny:named +- +2 +10 +4 /);
      assert.match(table.stdout, new RegExp(`\\n${unnamed} +- +1 `));
      const json = JSON.parse((await runCli("usage", "--by", "model", "--json", "--home", usageHome)).stdout) as { groups: { group: string; name?: string; requests: number }[] };
      assert.deepEqual(json.groups.map((group) => [group.group, group.name, group.requests]).sort(), [[model.digest, "tiny:named", 2], [unnamed, undefined, 1]].sort());
      const split = JSON.parse((await runCli("usage", "--by", "day", "--split", "model", "--json", "--home", usageHome)).stdout) as { groups: { splitName?: string }[] };
      assert.deepEqual(split.groups.map((group) => group.splitName).sort(), ["tiny:named", undefined].sort());
    } finally {
      await rm(usageHome, { recursive: true, force: true });
    }
  });

  const bad: [string[], RegExp][] = [
    [["keys", "revoke", "key_0123456789abcdef"], /No key with id 'key_0123456789abcdef'/],
    [["keys", "revoke", "not-a-key"], /No key with id/],
    [["keys", "create", "--expires", "soon"], /--expires must be a duration/],
    [["keys", "create", "--budget-tokens", "-5"], /--budget-tokens must be a whole number above 0/],
    [["keys", "create", "--budget-usd", "0"], /--budget-usd must be a number above 0/],
    [["keys", "create", "--concurrency", "two"], /--concurrency must be a whole number/],
    [["keys", "create", "--period", "month"], /--period needs --budget-tokens or --budget-usd/],
    [["usage", "--by", "week"], /--by must be one of model, key, day/],
    [["usage", "--since", "last tuesday"], /--since must be a duration ago/],
    [["usage", "--split", "model"], /--split splits the groups of --by again/],
    [["usage", "--by", "day", "--split", "day"], /--split must be one of model, key/],
    [["usage", "--csv", "--json"], /Choose one of --csv and --json/],
    [["price", "set", "no-such-model", "--input-per-1m", "1", "--output-per-1m", "1"], /no-such-model/],
    [["price", "set", "x", "--input-per-1m", "-1", "--output-per-1m", "1"], /--input-per-1m must be US dollars per million tokens/],
    [["price", "set", "x", "--input-per-1m", "1"], /--output-per-1m must be/],
  ];
  for (const [args, message] of bad) {
    test(`grove ${args.join(" ")} fails clearly`, async () => {
      const result = await runCliInProcess(...args, "--home", home);
      assert.equal(result.code, 1);
      assert.match(result.stderr, message);
    });
  }
});
