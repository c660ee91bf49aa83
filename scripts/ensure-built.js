#!/usr/bin/env node
// `npm start` runs this first: when the compiled output is missing (an install that skipped
// the `prepare` script, or a fresh checkout after `npm ci --ignore-scripts`), build it.
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
if (!existsSync(join(root, "dist", "cli", "main.js"))) {
  process.stderr.write("grove: compiling TypeScript (dist/ is missing)…\n");
  const result = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.json")], {
    stdio: "inherit",
  });
  process.exit(result.status ?? 1);
}
