import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { benchModel } from "../bench/cost/bench-model.js";
import { evaluateModel } from "../bench/quality/evaluate.js";
import { ResultStore } from "../results/result-store.js";
import { quantizeFork } from "../forge/quantize/quantize-fork.js";
import type { RunningGrove } from "../services.js";
import { ModelStore } from "../store/model-store.js";
import { createTestModel, startTestGrove, type TestModel } from "../test-support/grove-fixture.js";
import { launchBrowser, openPage, screenshotBothSizes, type VIEWPORTS } from "../test-support/web-fixture.js";

// The Leaderboard page of the bundled web app in Debian's headless Chromium, against the real
// server serving a store of a generated model (tiny:base, F16) and two quantized forks (tiny:q8,
// tiny:q4). Every result is real and made by Grove's own code, as `grove eval` and `grove bench`
// make them: perplexity of all three and KL divergence of the forks against tiny:base (through
// llama.cpp's logits), and the serving cost of all three (a `grove serve` child process driven
// over HTTP). At test-tiny size that takes a few seconds. The page's numbers are checked against
// the server's own answers (`/api/leaderboard`, `/api/front`, `/api/plan`).

const FORKS = ["tiny:base", "tiny:q8", "tiny:q4"] as const;

let model: TestModel;
let grove: RunningGrove;
let browser: Browser;

before(async () => {
  model = await createTestModel();
  const store = await ModelStore.open(join(model.directory, "home"));
  await store.importFile(model.path, { name: "tiny:base" });
  await quantizeFork(store, { model: "tiny:base", type: "Q8_0", name: "tiny:q8", threads: 1 });
  await quantizeFork(store, { model: "tiny:base", type: "Q4_0", name: "tiny:q4", threads: 1 });
  const results = await ResultStore.open(store.home);
  try {
    for (const name of FORKS) await evaluateModel(store, results, name, { task: "perplexity", contextSize: 128, threads: 1 });
    for (const name of ["tiny:q8", "tiny:q4"]) await evaluateModel(store, results, name, { task: "kl-divergence", contextSize: 128, threads: 1 });
    for (const name of FORKS) {
      await benchModel(store, results, name, { contextSize: 256, slots: 1, threads: 1, promptTokens: 32, outputTokens: 64, concurrency: [1] });
    }
  } finally {
    await results.close();
    await store.close();
  }
  grove = await startTestGrove(model, { model: "tiny:base", contextSize: 512 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await grove?.close();
  await model?.cleanup();
});

async function api<T>(path: string): Promise<{ status: number; body: T }> {
  const response = await fetch(`${grove.url}${path}`);
  return { status: response.status, body: (await response.json()) as T };
}

interface Row { names: string[]; size: number; value: number | null }
interface FrontAnswer { front: { names: string[] }[]; dominated: { names: string[]; dominatedBy: { names: string[]; qualityWithinNoise: boolean | null }[] }[] }
/** The canvas as the test reads it in the page (the server's TypeScript has no DOM types). */
interface PixelCanvas {
  width: number;
  height: number;
  getContext(kind: "2d"): { getImageData(x: number, y: number, width: number, height: number): { data: Uint8ClampedArray } } | null;
}
interface PlanAnswer { choice: { names: string[] } | null; ranked: { names: string[]; memoryBytes: number }[]; excluded: { names: string[]; reason: string }[] }

/** Opens the Leaderboard page and waits until the results table has its rows. */
async function openLeaderboard(viewport: keyof typeof VIEWPORTS = "desktop"): Promise<Page & { problems: string[] }> {
  const page = await openPage(browser, `${grove.url}/leaderboard`, viewport);
  await page.getByRole("table").getByRole("rowheader").first().waitFor({ timeout: 30_000 });
  return page;
}

/** The model names of the table's rows, top to bottom. */
function tableOrder(page: Page): Promise<string[]> {
  return page.getByRole("table").locator("tbody th a").allTextContents();
}

function columnHeader(page: Page, label: string) {
  return page.getByRole("columnheader", { name: label, exact: true });
}

describe("web leaderboard", () => {
  test("the table lists every fork with its quality and cost, sorts by a column header and filters by name", async () => {
    const perplexity = (await api<{ rows: Row[] }>("/api/leaderboard?task=perplexity")).body.rows;
    const page = await openLeaderboard();
    assert.deepEqual(new Set(await tableOrder(page)), new Set(FORKS));
    for (const label of ["Perplexity", "Bits per byte", "KL divergence", "Top-1 agreement", "Decode tokens/s", "TTFT ms", "Peak memory", "Size"]) {
      assert.equal(await columnHeader(page, label).count(), 1, `a ${label} column`);
    }
    // First order: the server's perplexity ranking, best first.
    assert.deepEqual(await tableOrder(page), perplexity.map((row) => row.names[0]));
    assert.equal(await columnHeader(page, "Perplexity").getAttribute("aria-sort"), "ascending");
    const q4 = perplexity.find((row) => row.names[0] === "tiny:q4")!;
    const q4Row = page.getByRole("row", { name: /tiny:q4/ });
    assert.ok(((await q4Row.textContent()) ?? "").includes(q4.value!.toFixed(2)), "tiny:q4's perplexity as the server has it");
    assert.equal(await q4Row.getByRole("link", { name: "tiny:q4" }).getAttribute("href"), "/models/tiny%3Aq4");

    const bySize = [...perplexity].sort((a, b) => a.size - b.size).map((row) => row.names[0]);
    assert.notDeepEqual(bySize, await tableOrder(page), "sorting by size must change this order");
    await page.getByRole("button", { name: "Size", exact: true }).click();
    assert.deepEqual(await tableOrder(page), bySize, "smallest first");
    assert.equal(await columnHeader(page, "Size").getAttribute("aria-sort"), "ascending");
    assert.equal(await columnHeader(page, "Perplexity").getAttribute("aria-sort"), "none");
    // Again, from the keyboard: the other way round.
    await page.getByRole("button", { name: "Size", exact: true }).press("Enter");
    assert.deepEqual(await tableOrder(page), [...bySize].reverse(), "largest first");
    assert.equal(await columnHeader(page, "Size").getAttribute("aria-sort"), "descending");

    await page.getByLabel("Filter by name").fill("q4");
    assert.deepEqual(await tableOrder(page), ["tiny:q4"]);
    await page.getByText("1 of 3 models shown").waitFor();
    await page.getByLabel("Filter by name").fill("");
    await page.getByLabel("Measured on").selectOption("kl-divergence");
    assert.deepEqual(new Set(await tableOrder(page)), new Set(["tiny:q8", "tiny:q4"]), "only the forks measured against their parent");
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test("the chart draws the front the server computes and names its forks; another cost gives another front", async () => {
    const page = await openLeaderboard();
    for (const cost of ["size", "decodeTokensPerSecond"] as const) {
      const { body: front } = await api<FrontAnswer>(`/api/front?task=perplexity&cost=${cost}`);
      assert.ok(front.front.length > 0, "the server has a front");
      if (cost !== "size") await page.getByLabel("Cost (x axis)").selectOption(cost);
      const axis = cost === "size" ? "File size" : "Decode tokens/s";
      const chart = page.getByRole("img", { name: new RegExp(`^Scatter chart of perplexity \\(lower is better\\) against ${axis}`) });
      await chart.waitFor({ timeout: 30_000 });
      const label = (await chart.getAttribute("aria-label")) ?? "";
      assert.ok(label.includes(`On the Pareto front: ${front.front.map((model) => model.names[0]).join(", ")}.`), label);
      const onFront = await page.getByRole("list", { name: "On the Pareto front" }).getByRole("link").allTextContents();
      assert.deepEqual(onFront, front.front.map((model) => model.names[0]), `${cost}: the front, best cost first`);
      const dominated = page.getByRole("list", { name: "Dominated" }).getByRole("listitem");
      assert.deepEqual(
        await dominated.allTextContents(),
        // A dominator whose quality is within noise of the model's is marked so (which ones depends on
        // the measured speeds when the cost is tokens/s).
        front.dominated.map((model) => `${model.names[0]} — dominated by ${model.dominatedBy.map((other) => `${other.names[0]}${other.qualityWithinNoise === true ? " (quality within noise)" : ""}`).join(", ")}`),
      );
      // The canvas has the front drawn on it: pixels of the front's colour (#1f6f43; the legend is
      // HTML, so only points and the line have it), and more painted than the axes alone.
      const drawn = await page.waitForFunction((canvas) => {
        const { data } = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height);
        let painted = 0;
        let front = 0;
        for (let index = 0; index < data.length; index += 4) {
          if (data[index + 3]! > 0) painted += 1;
          if (data[index] === 31 && data[index + 1] === 111 && data[index + 2] === 67 && data[index + 3] === 255) front += 1;
        }
        return front > 50 && painted > 2000 ? { painted, front } : false;
      }, (await chart.elementHandle()) as unknown as PixelCanvas, { timeout: 10_000 });
      const pixels = await drawn.jsonValue();
      assert.ok(pixels !== false && pixels.front > 50, `${cost}: front points drawn`);
    }
    // The table's "only on the front" filter follows the chart's front (now: decode tokens/s).
    const { body: speedFront } = await api<FrontAnswer>("/api/front?task=perplexity&cost=decodeTokensPerSecond");
    await page.getByLabel("Only on the Pareto front").check();
    assert.deepEqual(new Set(await tableOrder(page)), new Set(speedFront.front.map((model) => model.names[0])));
    assert.deepEqual(page.problems, []);
    await page.close();
  });

  test("the plan form picks a fork within the budget and says why the others do not fit; bad input shows the server's message", async () => {
    // The memory each fork needs at ctx 512 × 1 slot (estimates: no bench ran at these settings).
    const everything = (await api<PlanAnswer>("/api/plan?memory=64GiB&ctx=512&slots=1")).body.ranked.sort((a, b) => a.memoryBytes - b.memoryBytes);
    assert.equal(everything.length, 3);
    const [, middle, largest] = everything;
    const budget = `${Math.floor((middle!.memoryBytes + largest!.memoryBytes) / 2 / 1024)}KiB`;
    const expected = (await api<PlanAnswer>(`/api/plan?memory=${budget}&ctx=512&slots=1&task=perplexity`)).body;
    assert.equal(expected.ranked.length, 2, "the budget fits two forks");
    assert.deepEqual(expected.excluded.map((model) => model.names[0]), [largest!.names[0]]);

    const page = await openLeaderboard("phone");
    await page.getByLabel("Memory budget").fill(budget);
    await page.getByLabel("Context tokens").fill("512");
    await page.getByLabel("Slots").fill("1");
    await page.getByLabel("Rank by task").selectOption("perplexity");
    await page.getByRole("button", { name: "Plan" }).click();
    const pick = page.getByRole("group", { name: "Pick" });
    await pick.waitFor({ timeout: 30_000 });
    assert.match((await pick.textContent()) ?? "", new RegExp(`^${expected.choice!.names[0]} \\(`));
    assert.deepEqual(await page.getByRole("list", { name: "Also fits" }).getByRole("listitem").count(), 1);
    const leftOut = await page.getByRole("list", { name: "Left out" }).getByRole("listitem").allTextContents();
    assert.deepEqual(leftOut, expected.excluded.map((model) => `${model.names[0]}: ${model.reason}`));
    assert.match(leftOut[0]!, /does not fit: needs/);

    const bad = await api<{ error: { message: string } }>("/api/plan?memory=lots");
    assert.equal(bad.status, 400);
    await page.getByLabel("Memory budget").fill("lots");
    await page.getByRole("button", { name: "Plan" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor({ timeout: 30_000 });
    assert.equal(await alert.textContent(), bad.body.error.message);
    assert.equal(await page.getByRole("group", { name: "Pick" }).count(), 0, "the old plan is gone");
    // Chromium logs every 4xx answer; that one was asked for.
    assert.deepEqual(page.problems, ["console: Failed to load resource: the server responded with a status of 400 (Bad Request)"]);
    await page.close();
  });

  test("screenshots at desktop and phone size, with a plan; the phone page does not scroll sideways", async () => {
    await screenshotBothSizes(browser, `${grove.url}/leaderboard`, "leaderboard", async (page) => {
      await page.getByRole("img", { name: /^Scatter chart/ }).waitFor({ timeout: 30_000 });
      await page.getByRole("table").getByRole("rowheader").first().waitFor();
      await page.getByLabel("Memory budget").fill("1GiB");
      await page.getByLabel("Context tokens").fill("512");
      await page.getByLabel("Rank by task").selectOption("perplexity");
      await page.getByRole("button", { name: "Plan" }).click();
      await page.getByRole("group", { name: "Pick" }).waitFor({ timeout: 30_000 });
      const width = await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth);
      assert.ok(width <= page.viewportSize()!.width, `page width ${width}`);
    });
  });
});

describe("web leaderboard without results", () => {
  let empty: TestModel;
  let emptyGrove: RunningGrove;
  before(async () => {
    empty = await createTestModel();
    const store = await ModelStore.open(join(empty.directory, "home"));
    await store.importFile(empty.path, { name: "tiny:base" });
    await store.close();
    emptyGrove = await startTestGrove(empty, { model: "tiny:base", contextSize: 512 });
  });
  after(async () => {
    await emptyGrove?.close();
    await empty?.cleanup();
  });

  test("says there are no results yet and shows the commands that make them", async () => {
    const page = await openPage(browser, `${emptyGrove.url}/leaderboard`, "phone");
    await page.getByRole("heading", { name: "No results yet" }).waitFor({ timeout: 30_000 });
    const commands = (await page.locator(".empty pre").textContent()) ?? "";
    assert.match(commands, /grove eval MODEL --task perplexity/);
    assert.match(commands, /grove bench MODEL/);
    assert.equal(await page.getByRole("table").count(), 0);
    assert.equal(await page.getByLabel("Memory budget").count(), 1, "the plan form works without results (estimates)");
    assert.deepEqual(page.problems, []);
    await page.close();
  });
});
