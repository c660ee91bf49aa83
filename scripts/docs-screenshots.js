#!/usr/bin/env node
// `npm run docs:screenshots`: runs the web app's end-to-end tests (headless Chromium against the
// real server) and copies the desktop screenshot of each page they save into docs/screenshots/,
// where the README shows them. The tests' own artifacts (desktop and phone) stay in
// test-artifacts/web/, which git ignores.
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const root = join(import.meta.dirname, "..");
const tests = readdirSync(join(root, "dist", "server")).filter((name) => name.endsWith(".e2e.test.js")).map((name) => join("dist", "server", name));
const run = spawnSync(process.execPath, [join(root, "scripts", "run-tests.js"), ...tests], { stdio: "inherit", cwd: root });
if (run.status !== 0) process.exit(run.status ?? 1);
const artifacts = join(root, "test-artifacts", "web");
const docs = join(root, "docs", "screenshots");
mkdirSync(docs, { recursive: true });
for (const name of readdirSync(artifacts).filter((file) => file.endsWith("-desktop.png"))) {
  copyFileSync(join(artifacts, name), join(docs, name.replace("-desktop", "")));
  process.stdout.write(`docs/screenshots/${name.replace("-desktop", "")}\n`);
}
