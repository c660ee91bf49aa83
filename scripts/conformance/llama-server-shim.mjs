// Computes the command that stands in for llama-server when llama.cpp's server tests start it:
// `grove serve` with llama-server's flags mapped (target grove, the default), or the reference
// llama-server itself with the suite's downloads replaced by the same generated models (target
// llama-server). Prints that command NUL-separated on stdout for `llama-server-shim`, which execs
// it, so the process the suite signals and waits for is the server itself.
//
// What became of each flag goes to stderr (the suite's captured log) and, when
// GROVE_CONFORMANCE_NOTES names a file, as one JSON line per server start, with the test that
// started it, for the runner's report.
//
// Settings: settings.mjs (GROVE_CONFORMANCE_TARGET, _GROVE, _LLAMA_SERVER, _SERVE_HELP, _HOMES,
// _NOTES, _MODELS, GROVE_LLAMA_CPP_DIR).
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { ensureSubstitute, substituteFor } from "./model-map.mjs";
import { flagValue, groveFlagsFromHelp, modelRequest, parseLlamaServerArgs, planGroveServe, planLlamaServer } from "./llama-server-flags.mjs";
import { conformanceSettings } from "./settings.mjs";

/** `grove serve --help`, from the cached file when one is named. */
function groveServeHelp({ groveCommand, serveHelpFile }) {
  if (serveHelpFile) return readFileSync(serveHelpFile, "utf8");
  const [program, ...prefix] = groveCommand;
  const result = spawnSync(program, [...prefix, "serve", "--help"], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`${groveCommand.join(" ")} serve --help failed: ${result.stderr || result.error?.message}`);
  return result.stdout;
}

/**
 * The local file for the model llama-server was asked for, with the substitute when it is one.
 *
 * @returns {{ path: string, substitute?: import("./model-map.mjs").Substitute }}
 */
function resolveModel(request, settings, notes) {
  if (request?.file !== undefined) return { path: resolve(request.file) };
  const remote = request?.repo ?? request?.url;
  const { substitute, matched } = substituteFor(request?.repo ?? "", request?.hfFile ?? basename(request?.url ?? ""));
  // A download without a substitute of its own is served by the default one, on both servers
  // alike; router mode (no model at all) only reaches here for Grove, which has none.
  notes.push(remote === undefined
    ? { flag: "(no model: router mode)", status: "unsupported", detail: `Grove has no router mode: it serves the generated ${substitute.name}` }
    : { flag: "--hf-repo", value: [remote, request?.hfFile].filter(Boolean).join(" "), status: matched ? "mapped" : "substituted",
      detail: `served by the generated ${substitute.name}${matched ? "" : " (no substitute of its own)"}` });
  return { path: ensureSubstitute(substitute, settings), substitute };
}

function groveStart(argv, settings, notes) {
  const groveFlags = groveFlagsFromHelp(groveServeHelp(settings));
  const flags = parseLlamaServerArgs(argv);
  const request = modelRequest(flags);
  const { path: modelPath, substitute } = resolveModel(request, settings, notes);
  // The real file's metadata settings (bge's pooling) become flags, as for llama-server.
  const withImplied = parseLlamaServerArgs([...argv, ...impliedMissing(flags, substitute?.impliedFlags ?? [])]);
  const plan = planGroveServe(withImplied, groveFlags, (path) => resolve(path));
  notes.push(...plan.notes);

  mkdirSync(settings.homesDir, { recursive: true });
  const dir = mkdtempSync(join(settings.homesDir, "grove-"));
  let served = modelPath;
  const alias = flagValue(flags, "--alias");
  if (alias !== undefined && !groveFlags.has("--alias")) {
    // Grove names a file it serves alone after the file; llama-server names the model after its
    // first alias in alphabetical order.
    const names = alias.split(",").map((name) => name.trim()).filter(Boolean).sort();
    served = join(dir, `${names[0]}.gguf`);
    symlinkSync(modelPath, served);
    notes.push({
      flag: "--alias", value: alias, status: names.length > 1 ? "unsupported" : "mapped",
      detail: names.length > 1 ? `Grove serves one name, ${names[0]} (the file's name); no aliases list` : `the served file is named ${names[0]}.gguf`,
    });
  }
  const [program, ...prefix] = settings.groveCommand;
  return [program, ...prefix, "serve", "--home", join(dir, "home"), "--model", served,
    // llama-server stops at once on SIGTERM; the suite kills what is still running 5 s later.
    "--shutdown-grace", "0",
    // llama-server answers any model name with the one model it serves; the suite sends "test".
    ...(groveFlags.has("--accept-any-model") ? ["--accept-any-model"] : []),
    ...plan.args, ...(plan.noUi ? ["--web-dir", "none"] : [])];
}

function impliedMissing(flags, implied) {
  const missing = [];
  for (let index = 0; index < implied.length; index += 2) {
    if (flagValue(flags, implied[index]) === undefined) missing.push(implied[index], implied[index + 1]);
  }
  return missing;
}

function llamaServerStart(argv, settings, notes) {
  const request = modelRequest(parseLlamaServerArgs(argv));
  if (request === undefined || request.file !== undefined) return [settings.llamaServer, ...argv];
  const model = resolveModel(request, settings, notes);
  return [settings.llamaServer, ...planLlamaServer(argv, model.path, model.substitute.impliedFlags)];
}

function main() {
  const argv = process.argv.slice(2);
  const settings = conformanceSettings();
  const { target } = settings;
  const notes = [];
  let command;
  try {
    if (target === "grove") command = groveStart(argv, settings, notes);
    else if (target === "llama-server") command = llamaServerStart(argv, settings, notes);
    else throw new Error(`GROVE_CONFORMANCE_TARGET must be grove or llama-server, not ${target}`);
  } catch (error) {
    process.stderr.write(`llama-server-shim: ${error.message}\n`);
    process.exit(1);
  }
  for (const note of notes) {
    if (note.status !== "mapped" || target !== "grove") {
      process.stderr.write(`llama-server-shim: ${note.flag}${note.value === undefined ? "" : ` ${note.value}`}: ${note.status}, ${note.detail}\n`);
    }
  }
  process.stderr.write(`llama-server-shim: ${command.join(" ")}\n`);
  if (settings.notesFile) {
    const line = { test: settings.currentTest, target, notes };
    appendFileSync(settings.notesFile, `${JSON.stringify(line)}\n`);
  }
  process.stdout.write(command.map((word) => `${word}\0`).join(""));
}

main();
