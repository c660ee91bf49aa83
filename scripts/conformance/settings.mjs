// Every setting of the conformance scripts, read from the environment in this one place.
// run.mjs's flags set the same variables for the shims it starts.
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The Grove checkout these scripts belong to. */
export const REPOSITORY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * The settings, each with its variable:
 * - `groveCommand` GROVE_CONFORMANCE_GROVE, split on blanks. @default node <repo>/bin/grove.js
 * - `llamaCppDir` GROVE_LLAMA_CPP_DIR: the checkout holding the suite and vocabulary files.
 *   @default ~/.cache/grove/llama.cpp
 * - `llamaServer` GROVE_CONFORMANCE_LLAMA_SERVER: the reference binary.
 *   @default <llamaCppDir>/build/bin/llama-server
 * - `modelsDir` GROVE_CONFORMANCE_MODELS: generated substitutes.
 *   @default ~/.cache/grove/conformance-models
 * - `target` GROVE_CONFORMANCE_TARGET: what the shim starts, grove or llama-server. @default grove
 * - `serveHelpFile` GROVE_CONFORMANCE_SERVE_HELP: a file holding `grove serve --help`, so each
 *   start need not run it. @default none
 * - `homesDir` GROVE_CONFORMANCE_HOMES: where each start's fresh Grove home is made.
 *   @default the system temp dir
 * - `notesFile` GROVE_CONFORMANCE_NOTES: JSON-lines file the shim appends its flag notes to.
 *   @default none
 * - `currentTest` PYTEST_CURRENT_TEST, which pytest sets and the suite passes to the server it
 *   starts: the test a note belongs to.
 */
export function conformanceSettings(env = process.env) {
  const llamaCppDir = env.GROVE_LLAMA_CPP_DIR || join(homedir(), ".cache", "grove", "llama.cpp");
  const grove = env.GROVE_CONFORMANCE_GROVE?.trim();
  return Object.freeze({
    groveCommand: grove ? grove.split(/\s+/) : [process.execPath, join(REPOSITORY_ROOT, "bin", "grove.js")],
    llamaCppDir,
    llamaServer: env.GROVE_CONFORMANCE_LLAMA_SERVER || join(llamaCppDir, "build", "bin", "llama-server"),
    modelsDir: env.GROVE_CONFORMANCE_MODELS || join(homedir(), ".cache", "grove", "conformance-models"),
    target: env.GROVE_CONFORMANCE_TARGET || "grove",
    serveHelpFile: env.GROVE_CONFORMANCE_SERVE_HELP || undefined,
    homesDir: env.GROVE_CONFORMANCE_HOMES || tmpdir(),
    notesFile: env.GROVE_CONFORMANCE_NOTES || undefined,
    currentTest: env.PYTEST_CURRENT_TEST?.replace(/ \((setup|call|teardown)\)$/, ""),
  });
}
