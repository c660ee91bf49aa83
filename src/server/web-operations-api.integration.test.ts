import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { RunningGrove } from "../services.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";

// `GET /api/usage?by=hour|day&split=model|key`, the usage-over-time groups the web app's
// Operations chart draws, against the real server (port 0, a generated model) after real chats.

let model: TestModel;
let grove: RunningGrove;

before(async () => {
  model = await createTestModel();
  grove = await startTestGrove(model, { contextSize: 512 });
});

after(async () => {
  await grove?.close();
  await model?.cleanup();
});

async function get(path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${grove.url}${path}`);
  return { status: response.status, body: await response.json() };
}

async function chat(): Promise<{ prompt_tokens: number; completion_tokens: number }> {
  const response = await fetch(`${grove.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: grove.engine.models[0]!.info.id, messages: [{ role: "user", content: "Hi" }], max_tokens: 3, temperature: 0 }),
  });
  assert.equal(response.status, 200);
  return ((await response.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
}

describe("usage over time", () => {
  test("by=hour&split=model sums this hour's requests per model; by=day&split=key per key", async () => {
    const usages = [await chat(), await chat()];
    const hour = new Date().toISOString().slice(0, 13);
    const byHour = await get("/api/usage?since=1h&by=hour&split=model");
    assert.equal(byHour.status, 200, JSON.stringify(byHour.body));
    assert.equal(byHour.body.by, "hour");
    assert.equal(byHour.body.split, "model");
    // The two chats may straddle an hour boundary; the sums over the groups cannot.
    const groups = byHour.body.groups as { group: string; split: string; requests: number; promptTokens: number; completionTokens: number }[];
    assert.ok(groups.every((group) => /^\d{4}-\d{2}-\d{2}T\d{2}$/.test(group.group) && group.group <= hour), JSON.stringify(groups));
    assert.deepEqual([...new Set(groups.map((group) => group.split))], [grove.engine.models[0]!.info.digest]);
    assert.equal(groups.reduce((sum, group) => sum + group.requests, 0), 2);
    assert.equal(groups.reduce((sum, group) => sum + group.promptTokens, 0), usages[0]!.prompt_tokens + usages[1]!.prompt_tokens);
    assert.equal(groups.reduce((sum, group) => sum + group.completionTokens, 0), usages[0]!.completion_tokens + usages[1]!.completion_tokens);
    const byDay = await get("/api/usage?since=1d&by=day&split=key");
    assert.deepEqual(byDay.body.groups.map((group: { split: string }) => group.split), byDay.body.groups.map(() => "-"), "no key: the open server's requests");
    const plain = await get("/api/usage?by=hour");
    assert.equal(plain.body.split, undefined);
    assert.ok(plain.body.groups.every((group: { split?: string }) => group.split === undefined));
  });

  const bad: [string, string, RegExp][] = [
    ["/api/usage?by=hour&split=day", "split", /split must be one of model, key; got "day"/],
    ["/api/usage?split=model", "split", /split splits the groups of by again: give by as well/],
    ["/api/usage?by=key&split=key", "split", /other than key/],
    ["/api/usage?by=minute", "by", /by must be one of model, key, day, hour/],
  ];
  for (const [path, param, message] of bad) {
    test(`${path} is a 400 naming the problem`, async () => {
      const answer = await get(path);
      assert.equal(answer.status, 400);
      assert.match(answer.body.error.message, message);
      assert.equal(answer.body.error.param, param);
    });
  }
});
