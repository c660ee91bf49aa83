import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

// Shared by the web app's end-to-end tests (src/server/web-*.e2e.test.ts): Debian's headless
// Chromium driven by playwright-core against the real server. Screenshots go to
// test-artifacts/web/ (git-ignored) or $GROVE_TEST_ARTIFACTS/web; `npm run docs:screenshots`
// copies the desktop ones into docs/screenshots/ for the README.

export const CHROMIUM = "/usr/bin/chromium";
export const ARTIFACTS = resolve(process.env["GROVE_TEST_ARTIFACTS"] ?? "test-artifacts", "web");

export const VIEWPORTS = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
} as const;

export type ViewportName = keyof typeof VIEWPORTS;

/** Launches headless Chromium with the flags the tests use; fails naming the package when it is missing. */
export async function launchBrowser(): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-background-networking"] });
}

/**
 * Opens `url` in a fresh page of the given size. Uncaught page errors and console errors are
 * collected in `page.problems` so a test can assert the page ran cleanly.
 */
export async function openPage(browser: Browser, url: string, viewport: ViewportName = "desktop"): Promise<Page & { problems: string[] }> {
  const page = (await browser.newPage({ viewport: VIEWPORTS[viewport] })) as Page & { problems: string[] };
  page.problems = [];
  page.on("pageerror", (error) => page.problems.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") page.problems.push(`console: ${message.text()}`);
  });
  await page.goto(url);
  return page;
}

/** Saves a full-page screenshot as `<name>-<viewport>.png` under ARTIFACTS. */
export async function saveScreenshot(page: Page, name: string, viewport: ViewportName): Promise<string> {
  const path = join(ARTIFACTS, `${name}-${viewport}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Opens `url` at desktop and phone size, waits for `ready` on each, and saves both
 * screenshots (`<name>-desktop.png`, `<name>-phone.png`).
 */
export async function screenshotBothSizes(browser: Browser, url: string, name: string, ready: (page: Page) => Promise<void>): Promise<void> {
  for (const viewport of Object.keys(VIEWPORTS) as ViewportName[]) {
    const page = await openPage(browser, url, viewport);
    try {
      await ready(page);
      await saveScreenshot(page, name, viewport);
    } finally {
      await page.close();
    }
  }
}
