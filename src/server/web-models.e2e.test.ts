import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Locator, Page } from "playwright-core";
import { generateModel } from "../forge/generate/generate-model.js";
import { mergeFork } from "../forge/merge/merge-fork.js";
import { quantizeFork } from "../forge/quantize/quantize-fork.js";
import type { RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";
import { launchBrowser, openPage, saveScreenshot, screenshotBothSizes } from "../test-support/web-fixture.js";

// The Models page of the bundled web app in Debian's headless Chromium, against the real server
// serving a store of a generated model (tiny:base, F16), its Q8_0 fork (tiny:q8) and its merge
// with a second model (tiny:other → tiny:merged): the fork tree, a model's card, and forge jobs
// started from the card and followed live.

let model: TestModel;
let grove: RunningGrove;
let browser: Browser;

before(async () => {
  model = await createTestModel();
  const store = await ModelStore.open(join(model.directory, "home"));
  await store.importFile(model.path, { name: "tiny:base" });
  await quantizeFork(store, { model: "tiny:base", type: "Q8_0", name: "tiny:q8", threads: 1 });
  const other = join(model.directory, "other.gguf");
  await generateModel({ preset: "test-tiny", seed: 8, dtype: "f16", outPath: other });
  await store.importFile(other, { name: "tiny:other" });
  await mergeFork(store, { models: ["tiny:base", "tiny:other"], method: "linear", name: "tiny:merged" });
  await store.close();
  grove = await startTestGrove(model, { model: "tiny:base", contextSize: 512 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await grove?.close();
  await model?.cleanup();
});

async function api<T>(path: string): Promise<T> {
  const response = await fetch(`${grove.url}${path}`);
  assert.equal(response.status, 200, `GET ${path}`);
  return (await response.json()) as T;
}

const modelNames = async (): Promise<string[]> => (await api<{ models: { names: string[] }[] }>("/api/models")).models.flatMap((entry) => entry.names).sort();
const jobCount = async (): Promise<number> => (await api<{ jobs: unknown[] }>("/api/forge/jobs")).jobs.length;

/** The drawn fork graph (the SVG group named by its caption). */
const forkGraph = (page: Page): Locator => page.getByRole("group", { name: /each edge is labelled|its box is outlined/ });

/** The text of a metadata row of the card. */
async function fact(page: Page, term: string): Promise<string> {
  return (await page.locator(".facts > div", { has: page.locator("dt", { hasText: new RegExp(`^${term}$`) }) }).locator("dd").first().textContent()) ?? "";
}

describe("web models", () => {
  test("the tree shows the fork's edge with its relation and each model's quantization; a node opens the card from the keyboard", async () => {
    const page = await openPage(browser, `${grove.url}/models`);
    const graph = forkGraph(page);
    const fork = graph.getByRole("link", { name: /^tiny:q8, Q8_0, [\d.]+ [KM]iB, [\d.]+[KM]? parameters, quantized from tiny:base$/ });
    await fork.waitFor();
    const edge = graph.locator(".fork-edge", { has: page.locator("text", { hasText: /^quantized$/ }) });
    assert.equal(await edge.count(), 1, "one edge, labelled with its relation");
    assert.equal(await graph.getByText("F16", { exact: true }).count(), 3, "the two roots' boxes and their merge's show F16");
    assert.equal(await graph.getByText("Q8_0", { exact: true }).count(), 1, "the fork's box shows Q8_0");
    // A merge is one box with an edge from each parent; the second is drawn dashed.
    assert.equal(await graph.getByRole("link", { name: /^tiny:merged, F16, .*, merge from tiny:base, merge from tiny:other$/ }).count(), 1);
    assert.equal(await graph.locator('.fork-edge[data-relation="merge"]').count(), 2);
    assert.equal(await graph.locator('.fork-edge.extra[data-relation="merge"]').count(), 1);
    // The table beside it says the same in words.
    const row = page.getByRole("row", { name: /tiny:q8/ });
    assert.match((await row.textContent()) ?? "", /quantized from tiny:base.*Q8_0/);

    const base = graph.getByRole("link", { name: /^tiny:base, F16, / });
    await base.focus();
    assert.ok(await base.evaluate((element) => element === element.ownerDocument.activeElement), "the node takes the keyboard focus");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { level: 1, name: "tiny:base" }).waitFor();
    assert.equal(new URL(page.url()).pathname, "/models/tiny%3Abase");
    assert.equal(await fact(page, "Quantization"), "F16");
    assert.equal(await fact(page, "Architecture"), "llama");
    assert.match(await fact(page, "Context length"), /^[\d,]+ tokens$/);
    assert.match(await page.locator(".recipe").textContent() ?? "", /A root model/);
    // From the card's lineage to the fork's card: its recipe names the relation, parent and type.
    await page.locator(".lineage").getByRole("link", { name: "tiny:q8" }).click();
    await page.getByRole("heading", { level: 1, name: "tiny:q8" }).waitFor();
    const recipe = (await page.locator(".recipe").textContent()) ?? "";
    assert.match(recipe, /quantized from tiny:base/);
    assert.match(recipe, /llama\.cpp llama_model_quantize/);
    assert.match(recipe, /typeQ8_0/);
    assert.equal(await forkGraph(page).locator('a[aria-current="page"]').getAttribute("aria-label").then((label) => label?.split(",")[0]), "tiny:q8", "the card's tree marks the model");
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test("bad actions are refused with the server's or the form's message and change nothing", async () => {
    const [names, jobs] = [await modelNames(), await jobCount()];
    const page = await openPage(browser, `${grove.url}/models/tiny%3Abase`);
    const quantize = page.getByRole("form", { name: "Quantize" });
    await quantize.getByLabel("New name (optional)").fill("Tiny:Q4!");
    await quantize.getByRole("button", { name: "Quantize" }).click();
    const quantizeAlert = quantize.getByRole("alert");
    await quantizeAlert.waitFor();
    assert.match((await quantizeAlert.textContent()) ?? "", /^Invalid model name "Tiny:Q4!": the tag "q4!" holds a character outside/, "the server's message");

    const finetune = page.getByRole("form", { name: "Fine-tune" });
    await finetune.getByLabel(/Training records/).fill('{"text": "fine"}\n{"text": oops}');
    await finetune.getByRole("button", { name: "Fine-tune" }).click();
    const finetuneAlert = finetune.getByRole("alert");
    await finetuneAlert.waitFor();
    assert.match((await finetuneAlert.textContent()) ?? "", /^Line 2 is not JSON/);
    await finetune.getByLabel(/Training records/).fill('{"text": "fine"}\n{"prompt": "no"}');
    await finetune.getByRole("button", { name: "Fine-tune" }).click();
    await page.getByText(/^Line 2 must be an object with a "text" string or a "messages" array$/).waitFor();
    await finetune.getByLabel(/Training records/).fill('{"text": "fine"}');
    await finetune.getByLabel("Epochs").fill("0");
    await finetune.getByRole("button", { name: "Fine-tune" }).click();
    await page.getByText(/^Epochs must be a whole number from 1 to 10000$/).waitFor();
    await finetune.getByLabel("Epochs").fill("1");
    assert.equal(await finetune.getByLabel("LoRA rank").count(), 0, "LoRA's fields show once it is chosen");
    await finetune.getByLabel(/^LoRA: train small adapters/).check();
    await finetune.getByLabel("LoRA rank").fill("0");
    await finetune.getByRole("button", { name: "Fine-tune" }).click();
    await page.getByText(/^LoRA rank must be a whole number from 1 to 256$/).waitFor();
    await finetune.getByLabel("LoRA rank").fill("8");
    for (const target of ["q", "k", "v", "o", "gate", "up", "down"]) await finetune.getByRole("group", { name: /^Target projections/ }).getByLabel(target, { exact: true }).uncheck();
    await finetune.getByRole("button", { name: "Fine-tune" }).click();
    await page.getByText(/^Choose at least one projection for LoRA to adapt$/).waitFor();

    assert.equal(await page.locator(".job-progress").count(), 0, "no job was followed");
    assert.deepEqual(await modelNames(), names, "no model was added");
    assert.equal(await jobCount(), jobs, "no job was started");
    // The browser logs the refused request itself; nothing else went wrong.
    assert.deepEqual(page.problems, ["console: Failed to load resource: the server responded with a status of 400 (Bad Request)"]);
    await page.close();
  });

  test("a quantize job started from the card runs to the end live; its new model is linked and joins the tree", async () => {
    const page = await openPage(browser, `${grove.url}/models/tiny%3Abase`);
    const quantize = page.getByRole("form", { name: "Quantize" });
    await quantize.getByLabel("Type").selectOption("Q4_0");
    await quantize.getByLabel("New name (optional)").fill("tiny:q4");
    await quantize.getByRole("button", { name: "Quantize" }).click();
    const job = page.locator(".job-progress");
    await job.getByText("succeeded", { exact: true }).waitFor({ timeout: 120_000 });
    assert.equal(await job.getByRole("progressbar").evaluate((bar) => (bar as unknown as { value: number }).value), 1, "the bar is full");
    assert.match((await job.textContent()) ?? "", /100% · done — Created tiny:q4/);
    assert.equal(await job.getByRole("button", { name: "Cancel" }).count(), 0, "nothing left to cancel");
    await forkGraph(page).getByRole("link", { name: /^tiny:q4, Q4_0, .*quantized from tiny:base$/ }).waitFor();
    await page.locator(".lineage").getByRole("link", { name: "tiny:q4" }).waitFor();
    assert.match((await page.getByRole("table", { name: "Forge jobs started from this model" }).textContent()) ?? "", /quantize.*succeeded.*100%.*tiny:q4/);
    assert.ok((await modelNames()).includes("tiny:q4"), "the store has the new model");

    await saveScreenshot(page, "model-card-job", "desktop");

    await job.getByRole("link", { name: "tiny:q4" }).click();
    await page.getByRole("heading", { level: 1, name: "tiny:q4" }).waitFor();
    assert.equal(await fact(page, "Quantization"), "Q4_0");
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test("a chat fine-tune from the card sends LoRA's settings and the loss on every token when asked; the job has them", async () => {
    const page = await openPage(browser, `${grove.url}/models/tiny%3Abase`);
    const finetune = page.getByRole("form", { name: "Fine-tune" });
    const answersOnly = finetune.getByLabel(/^Loss on answers only/);
    await finetune.getByLabel(/Training records/).fill('{"text": "Trees grow."}');
    assert.equal(await answersOnly.count(), 0, "offered for chat records only");
    const records = Array.from({ length: 40 }, (_, index) => JSON.stringify({ messages: [{ role: "user", content: `Name tree ${index % 5}.` }, { role: "assistant", content: `Tree ${index % 5} is an oak.` }] }));
    await finetune.getByLabel(/Training records/).fill(records.join("\n"));
    assert.equal(await answersOnly.isChecked(), true, "the loss is on answers by default");
    await answersOnly.uncheck();
    await finetune.getByLabel("Epochs").fill("1");
    await finetune.getByLabel(/^LoRA: train small adapters/).check();
    assert.deepEqual(
      [await finetune.getByLabel("LoRA rank").inputValue(), await finetune.getByLabel("LoRA alpha").inputValue(), await finetune.getByLabel("LoRA dropout").inputValue()],
      ["8", "16", "0.05"],
      "the server's defaults",
    );
    await finetune.getByLabel("LoRA rank").fill("4");
    const targets = finetune.getByRole("group", { name: /^Target projections/ });
    for (const target of ["k", "o", "gate", "up", "down"]) await targets.getByLabel(target, { exact: true }).uncheck();
    await saveScreenshot(page, "finetune-lora-form", "desktop");
    const sent = page.waitForRequest((request) => request.url().endsWith("/api/forge/finetune") && request.method() === "POST");
    await finetune.getByRole("button", { name: "Fine-tune" }).click();
    const body = (await sent).postDataJSON() as Record<string, unknown>;
    const lora = { rank: 4, alpha: 16, dropout: 0.05, targets: ["q", "v"] };
    assert.deepEqual({ loss_on: body.loss_on, lora: body.lora, epochs: body.epochs }, { loss_on: "all", lora, epochs: 1 });
    const job = page.locator(".job-progress");
    await job.getByText("succeeded", { exact: true }).waitFor({ timeout: 120_000 });
    const jobs = (await api<{ jobs: { kind: string; parameters: Record<string, unknown> }[] }>("/api/forge/jobs")).jobs.filter((entry) => entry.kind === "finetune");
    const started = jobs.find((entry) => JSON.stringify(entry.parameters.lora) === JSON.stringify(lora));
    assert.ok(started !== undefined, "the job has the LoRA settings");
    assert.equal(started.parameters.lossOn, "all");
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test("a fine-tune started from the card shows its progress live and Cancel stops it without a new model", async () => {
    const names = await modelNames();
    const page = await openPage(browser, `${grove.url}/models/tiny%3Abase`);
    const finetune = page.getByRole("form", { name: "Fine-tune" });
    const records = Array.from({ length: 80 }, (_, index) => JSON.stringify({ text: `The grove stood at the edge of the valley, where the river turned east. Line ${index}.` }));
    await finetune.getByLabel(/Training records/).fill(records.join("\n"));
    await finetune.getByLabel("Epochs").fill("200");
    await finetune.getByLabel("Learning rate (optional)").fill("0.0001");
    await finetune.getByRole("button", { name: "Fine-tune" }).click();
    const job = page.locator(".job-progress");
    await job.getByText("running", { exact: true }).waitFor({ timeout: 60_000 });
    assert.match((await job.textContent()) ?? "", /^finetune of tiny:base/);
    await job.getByRole("button", { name: "Cancel" }).click();
    await job.getByText("cancelled", { exact: true }).waitFor({ timeout: 60_000 });
    assert.equal(await job.getByRole("button", { name: "Cancel" }).count(), 0);
    assert.deepEqual(await modelNames(), names, "no model was made");
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test("screenshots of the tree and a card at desktop and phone size, without page errors", async () => {
    const problems: string[] = [];
    const ready = (name: RegExp) => async (page: Page) => {
      await forkGraph(page).getByRole("link", { name }).waitFor();
      problems.push(...(page as Page & { problems: string[] }).problems);
    };
    await screenshotBothSizes(browser, `${grove.url}/models`, "models", ready(/^tiny:q4,/));
    await screenshotBothSizes(browser, `${grove.url}/models/tiny%3Abase`, "model-card-base", ready(/^tiny:base,/));
    assert.deepEqual(problems, []);
  });
});
