#!/usr/bin/env node
// `npm start` runs this first: when the compiled output is missing (an install that skipped
// the `prepare` script, or a fresh checkout after `npm ci --ignore-scripts`), build it.
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const built = ["cli/main.js", "web/index.html"].every((path) => existsSync(join(root, "dist", path)));
if (!built) {
  process.stderr.write("grove: building the TypeScript and the web app (dist/ is incomplete)…\n");
  const node = process.execPath;
  const bin = (path) => join(root, "node_modules", path);
  // The same steps as `npm run build`: the web app first (vite empties dist/web), then the server.
  for (const args of [
    [bin("typescript/bin/tsc"), "-p", join(root, "web", "tsconfig.json")],
    [bin("vite/bin/vite.js"), "build", join(root, "web"), "--logLevel", "warn"],
    [bin("typescript/bin/tsc"), "-p", join(root, "tsconfig.json")],
  ]) {
    const result = spawnSync(node, args, { stdio: "inherit", cwd: root });
    if (result.status !== 0) process.exit(result.status ?? 1);
  }
}
