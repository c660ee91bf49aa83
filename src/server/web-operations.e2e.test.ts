import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import type { Browser, Page } from "playwright-core";
import type { RunningGrove } from "../services.js";
import { createTestModel, seedTestStore, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";
import { launchBrowser, openPage, screenshotBothSizes } from "../test-support/web-fixture.js";

// The Operations page of the bundled web app in Debian's headless Chromium, against the real
// server serving a store of two generated models, after real chats through the official client
// and an alias set through the API. The server starts open (no keys); the key tests close it.

let model: TestModel;
let grove: RunningGrove;
let browser: Browser;
let adminSecret: string;

before(async () => {
  model = await createTestModel();
  await seedTestStore(model, "tiny:base", { "tiny:other": 8 });
  grove = await startTestGrove(model, { model: "tiny:base", contextSize: 512 });
  const client = new OpenAI({ baseURL: `${grove.url}/v1`, apiKey: "unused" });
  for (const content of ["Hello", "Name a colour.", "Count to three."]) {
    await client.chat.completions.create({ model: "tiny:base", messages: [{ role: "user", content }], max_tokens: 4, temperature: 0 });
  }
  const alias = await api("PUT", "/api/aliases/stable", { targets: [{ model: "tiny:base", weight: 90 }, { model: "tiny:other", weight: 10 }] });
  assert.equal(alias.status, 200, JSON.stringify(alias.body));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await grove?.close();
  await model?.cleanup();
});

async function api(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${grove.url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...(key ? { authorization: `Bearer ${key}` } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** The cells of a table row, by the row's header text. */
async function rowCells(page: Page, table: string, row: string): Promise<string[]> {
  const cells = page.getByRole("table", { name: table }).getByRole("row", { name: new RegExp(`^${row}\\b`) }).getByRole("cell");
  await cells.first().waitFor({ timeout: 30_000 });
  return cells.allTextContents();
}

/** Puts `key` in the header's API key field the way a person does; the page reloads with it. */
async function useKey(page: Page, key: string): Promise<void> {
  await page.getByRole("banner").locator("summary").click();
  await page.getByLabel("API key").fill(key);
  await Promise.all([page.waitForEvent("load"), page.getByRole("button", { name: "Use key" }).click()]);
}

describe("web operations", () => {
  test("usage chart and totals show the chats just made, with the numbers the API gives", async () => {
    const totals = (await api("GET", "/api/usage?since=24h&by=model")).body.groups as { requests: number; promptTokens: number; completionTokens: number }[];
    assert.equal(totals.length, 1);
    assert.equal(totals[0]!.requests, 3);
    const page = await openPage(browser, `${grove.url}/operations`);
    const cells = await rowCells(page, "Totals by model", "tiny:base");
    assert.deepEqual(cells.slice(0, 3), [String(totals[0]!.requests), String(totals[0]!.promptTokens), String(totals[0]!.completionTokens)]);
    assert.equal((await rowCells(page, "Totals by key", "no key"))[0], "3");
    const chart = page.getByRole("img", { name: /Stacked bar chart of tokens per hour/ });
    await chart.waitFor();
    const tokens = totals[0]!.promptTokens + totals[0]!.completionTokens;
    assert.match((await chart.getAttribute("aria-label")) ?? "", new RegExp(`by model: tiny:base ${tokens}\\b`));
    await page.getByRole("radio", { name: "Requests" }).check();
    await page.getByRole("img", { name: /requests per hour, last 24 hours, by model: tiny:base 3\b/ }).waitFor();
    await page.getByRole("combobox", { name: /^Period/ }).selectOption("7d");
    await page.getByRole("img", { name: /requests per day, last 7 days, by model: tiny:base 3\b/ }).waitFor();
    await page.getByRole("radio", { name: "Key" }).check();
    await page.getByRole("img", { name: /by key: no key 3\b/ }).waitFor();
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test("loaded models show the served model with its slots; aliases show weights and history", async () => {
    const page = await openPage(browser, `${grove.url}/operations`);
    const loaded = await rowCells(page, "Loaded models, refreshed every 3 seconds", "tiny:base");
    assert.equal(loaded[1], "loaded");
    assert.equal(loaded[2], "512");
    assert.match(loaded[3]!, /^0\/\d+$/, "slots busy/total");
    assert.match(loaded[5]!, /iB$/, "a memory estimate");
    const alias = page.getByRole("article", { name: "stable" });
    assert.deepEqual(await alias.getByRole("row", { name: /^tiny:base/ }).getByRole("cell").allTextContents(), ["90", "90.0%"]);
    assert.deepEqual(await alias.getByRole("row", { name: /^tiny:other/ }).getByRole("cell").allTextContents(), ["10", "10.0%"]);
    const history = alias.getByRole("listitem");
    assert.equal(await history.count(), 1);
    assert.match((await history.textContent()) ?? "", /set nothing → tiny:base \(90\), tiny:other \(10\) · applied/);
    await screenshotBothSizes(browser, `${grove.url}/operations`, "operations", async (shot) => {
      await shot.getByRole("article", { name: "stable" }).getByRole("listitem").waitFor();
      await shot.getByRole("table", { name: /Loaded models/ }).waitFor();
    });
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test("a key created in the page shows its secret once, is listed, and once revoked is refused", async () => {
    adminSecret = (await api("POST", "/api/keys", { name: "root", admin: true })).body.secret;
    const page = await openPage(browser, `${grove.url}/operations`);
    await useKey(page, adminSecret);
    // The first load, before the key was entered, was refused (the 401 test below covers it).
    page.problems.length = 0;
    await page.getByLabel("Name", { exact: true }).fill("ci-bot");
    await page.getByRole("textbox", { name: "Models" }).fill("tiny:base");
    await page.getByLabel("Requests per minute").fill("60");
    await page.getByLabel("Token budget").fill("5000");
    await page.getByLabel("Expires in").fill("30d");
    await page.getByRole("button", { name: "Create key" }).click();
    const secretField = page.getByRole("textbox", { name: "Secret", exact: true });
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    assert.match(secret, /^grove-sk-/);
    assert.match((await page.getByRole("region", { name: /Secret of key ci-bot/ }).textContent()) ?? "", /it will not be shown again/);
    const row = await rowCells(page, "API keys", "ci-bot");
    assert.ok(secret.startsWith(row[0]!.replace("…", "")), "the prefix listed is the secret's");
    assert.deepEqual(row.slice(1, 4), ["tiny:base", "60 req/min", "0 of 5,000 tokens this month"]);
    assert.equal(row[6], "active");
    const used = await api("POST", "/v1/chat/completions", { model: "tiny:base", messages: [{ role: "user", content: "Hi" }], max_tokens: 2 }, secret);
    assert.equal(used.status, 200, "the new key works");
    await page.getByRole("button", { name: "Done" }).click();
    assert.equal(await page.getByRole("textbox", { name: "Secret", exact: true }).count(), 0, "the secret is gone once dismissed");
    await page.getByRole("button", { name: "Revoke ci-bot" }).click();
    await page.getByRole("button", { name: "Yes, revoke ci-bot" }).click();
    await page.getByRole("row", { name: /^ci-bot/ }).getByRole("cell", { name: /^revoked / }).waitFor();
    const refused = await api("POST", "/v1/chat/completions", { model: "tiny:base", messages: [{ role: "user", content: "Hi" }], max_tokens: 2 }, secret);
    // Grove answers a revoked key with 403 naming the revocation (gateway.ts; keys.integration.test.ts), an unknown one with 401.
    assert.equal(refused.status, 403);
    assert.match(refused.body.error.message, /was revoked/);
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test("with keys and none entered the page says to enter one; with an admin key it works", async () => {
    const page = await openPage(browser, `${grove.url}/operations`);
    const alert = page.getByRole("alert");
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? "", /enter an API key at the top of the page/);
    assert.equal(await page.getByRole("heading", { name: "Usage" }).count(), 0);
    await useKey(page, adminSecret);
    await page.getByRole("heading", { name: "Usage" }).waitFor();
    assert.equal((await rowCells(page, "Totals by key", "ci-bot"))[0], "1", "the revoked key's one request");
    assert.equal(await page.getByRole("alert").count(), 0);
    // The refused first load is the browser's own "Failed to load resource" console line, nothing else.
    assert.deepEqual(page.problems.filter((problem) => !/status of 401/.test(problem)), []);
    await page.close();
  });
});
