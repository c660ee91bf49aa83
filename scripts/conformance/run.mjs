#!/usr/bin/env node
// Runs llama.cpp's own server test suite (tools/server/tests in the llama.cpp source node-llama-cpp
// bundles) against Grove through llama-server-shim, then against the reference llama-server under
// the same conditions (the same generated models in place of the suite's downloads), and reports
// per file what passed, failed, errored and was skipped on each, and the tests llama-server passes
// that Grove fails. `npm run conformance:llama-server -- --help` for the options.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { parseJunit } from "./junit.mjs";
import { ensureSubstitute, substitutePath, SUBSTITUTES } from "./model-map.mjs";
import { buildReport, replaceGeneratedBlock } from "./report.mjs";
import { conformanceSettings, REPOSITORY_ROOT } from "./settings.mjs";

const HERE = join(REPOSITORY_ROOT, "scripts", "conformance");
const DEFAULT_FILES = ["test_basic", "test_completion", "test_chat_completion", "test_tokenize", "test_embedding",
  "test_security", "test_ctx_shift", "test_template", "test_tool_call", "test_infill", "test_compat_anthropic",
  "test_compat_oai_responses"];
const TARGETS = ["grove", "llama-server"];
const PYTHON_MODULES = { pytest: "python3-pytest", requests: "python3-requests", filelock: "python3-filelock", wget: "python3-wget" };

const USAGE = `Usage: npm run conformance:llama-server -- [options]

Runs llama.cpp's server tests (pytest, one file at a time, one worker) against Grove, then against
the reference llama-server when it is built (scripts/build-llama-server.sh), and writes a report.

Options:
  --files <list>         test files, comma-separated, without .py (default: ${DEFAULT_FILES.join(",")})
  --targets <list>       grove, llama-server or both (default: both; llama-server only when built)
  --grove <command>      the Grove command (env GROVE_CONFORMANCE_GROVE; default: node <repo>/bin/grove.js)
  --llama-server <file>  the reference binary (env GROVE_CONFORMANCE_LLAMA_SERVER; default: <llama.cpp>/build/bin/llama-server)
  --llama-cpp <dir>      llama.cpp checkout, cloned from node-llama-cpp's bundle when missing
                         (env GROVE_LLAMA_CPP_DIR; default: ~/.cache/grove/llama.cpp)
  -k <expression>        pytest's -k: run only the matching tests
  --slow                 include the tests the suite marks slow (they need 1-8B instruct models)
  --file-timeout <s>     stop one file's run after this many seconds (default: 1800)
  --work <dir>           JUnit XML, logs and notes (default: test-artifacts/conformance)
  --report <file>        markdown report, its generated block replaced (default: docs/conformance.md); 'none' for stdout only
  --report-only          rebuild the report from the last run's files in --work, running nothing
  -h, --help             this text

Needs Debian's python3-pytest, python3-requests, python3-filelock and python3-wget. Without the
Python openai package, the tests that use it are skipped and counted apart.`;

function readOptions() {
  const { values } = parseArgs({
    options: {
      files: { type: "string" }, targets: { type: "string" }, grove: { type: "string" },
      "llama-server": { type: "string" }, "llama-cpp": { type: "string" }, k: { type: "string", short: "k" },
      slow: { type: "boolean" }, "file-timeout": { type: "string" }, work: { type: "string" },
      report: { type: "string" }, "report-only": { type: "boolean" }, help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const list = (text) => text.split(/[\s,]+/).filter(Boolean).map((name) => name.replace(/\.py$/, "").replace(/^.*\//, ""));
  const targets = values.targets ? list(values.targets) : TARGETS;
  for (const target of targets) if (!TARGETS.includes(target)) fail(`--targets: unknown target ${target} (grove, llama-server)`);
  const fileTimeout = Number(values["file-timeout"] ?? 1800);
  if (!(fileTimeout > 0)) fail("--file-timeout: expected a number of seconds");
  // The shims read these; set once here so every child sees the same settings.
  if (values.grove) process.env.GROVE_CONFORMANCE_GROVE = values.grove;
  if (values["llama-server"]) process.env.GROVE_CONFORMANCE_LLAMA_SERVER = values["llama-server"];
  if (values["llama-cpp"]) process.env.GROVE_LLAMA_CPP_DIR = values["llama-cpp"];
  return {
    files: values.files ? list(values.files) : DEFAULT_FILES,
    targets, k: values.k, slow: values.slow ?? false, fileTimeout,
    work: values.work ?? join(REPOSITORY_ROOT, "test-artifacts", "conformance"),
    report: values.report ?? join(REPOSITORY_ROOT, "docs", "conformance.md"),
    reportOnly: values["report-only"] ?? false,
  };
}

function fail(message) {
  process.stderr.write(`conformance: ${message}\n`);
  process.exit(1);
}

function log(message) {
  process.stderr.write(`conformance: ${message}\n`);
}

function run(command, args, options = {}) {
  return spawnSync(command, args, { encoding: "utf8", ...options });
}

/** Clones the llama.cpp source node-llama-cpp bundles, unless the checkout is there. */
function ensureLlamaCpp({ llamaCppDir }) {
  if (existsSync(join(llamaCppDir, "tools", "server", "tests", "utils.py"))) return;
  const bundle = join(REPOSITORY_ROOT, "node_modules", "node-llama-cpp", "llama", "gitRelease.bundle");
  if (existsSync(llamaCppDir)) fail(`${llamaCppDir} exists but holds no tools/server/tests: remove it or pass --llama-cpp`);
  if (!existsSync(bundle)) fail(`missing ${bundle}: run npm ci first`);
  log(`cloning ${relative(REPOSITORY_ROOT, bundle)} into ${llamaCppDir}`);
  const result = run("git", ["clone", "--quiet", bundle, llamaCppDir], { stdio: "inherit" });
  if (result.status !== 0) fail("git clone failed");
}

/** Debian's python3 when it has the suite's modules, else the first python3 on PATH that has. */
function findPython() {
  const candidates = [process.env.PYTHON, "/usr/bin/python3", "python3"].filter(Boolean);
  const check = `import importlib.util, sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in ${JSON.stringify(Object.keys(PYTHON_MODULES))}) else 1)`;
  for (const python of candidates) if (run(python, ["-c", check]).status === 0) return python;
  fail(`no python3 with ${Object.keys(PYTHON_MODULES).join(", ")}: apt-get install -y ${Object.values(PYTHON_MODULES).join(" ")}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Runs one test file in its own process group, stopped whole at the timeout. */
function runPytest(python, args, { cwd, env, logFile, timeoutSeconds }) {
  return new Promise((resolve) => {
    const output = [];
    const child = spawn(python, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (chunk) => output.push(chunk));
    child.stderr.on("data", (chunk) => output.push(chunk));
    let timedOut = false;
    const stopGroup = (signal) => { try { process.kill(-child.pid, signal); } catch { /* already gone */ } };
    const timer = setTimeout(() => {
      timedOut = true;
      stopGroup("SIGTERM");
      setTimeout(() => stopGroup("SIGKILL"), 10_000).unref();
    }, timeoutSeconds * 1000);
    const onInterrupt = () => { stopGroup("SIGTERM"); process.exit(130); };
    process.once("SIGINT", onInterrupt);
    child.on("close", (code) => {
      clearTimeout(timer);
      process.removeListener("SIGINT", onInterrupt);
      writeFileSync(logFile, Buffer.concat(output));
      resolve({ code, timedOut });
    });
  });
}

function git(dir, ...args) {
  const result = run("git", ["-C", dir, ...args]);
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** Commit of the Grove checkout the Grove command runs, with a mark when its tree has changes. */
function groveRevision(groveCommand) {
  const script = groveCommand.find((word) => /bin\/grove(\.js)?$/.test(word));
  if (script === undefined) return groveCommand.join(" ");
  const dir = join(script, "..", "..");
  const commit = git(dir, "log", "-1", "--format=%h");
  if (commit === undefined) return dir;
  return `${commit}${git(dir, "status", "--porcelain", "--untracked-files=no") ? " + uncommitted changes" : ""} (${dir})`;
}

/**
 * Runs the files against one target. Each file's results (`<file>.xml`, `.log`, `.notes.jsonl`,
 * `.run.json`) replace that file's earlier ones only, so a rerun of one file keeps the others.
 */
async function runTarget(target, files, context) {
  const { settings, options, python, testsDir, serveHelpFile, revision } = context;
  const dir = join(options.work, target);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const env = {
    ...process.env,
    PYTHONPATH: [HERE, process.env.PYTHONPATH].filter(Boolean).join(":"),
    PYTHONDONTWRITEBYTECODE: "1",
    LLAMA_SERVER_BIN_PATH: join(HERE, "llama-server-shim"),
    PORT: String(port),
    GROVE_CONFORMANCE_TARGET: target,
    GROVE_CONFORMANCE_GROVE: settings.groveCommand.join(" "),
    GROVE_CONFORMANCE_LLAMA_SERVER: settings.llamaServer,
    GROVE_CONFORMANCE_SERVE_HELP: serveHelpFile,
    GROVE_CONFORMANCE_HOMES: join(dir, "homes"),
    GROVE_CONFORMANCE_MODELS: settings.modelsDir,
    GROVE_LLAMA_CPP_DIR: settings.llamaCppDir,
  };
  for (const file of files) {
    const path = join("unit", `${file}.py`);
    if (!existsSync(join(testsDir, path))) {
      log(`${target} ${file}: no ${path} in this llama.cpp checkout, skipped`);
      continue;
    }
    const args = ["-m", "pytest", "-p", "pytest_conformance", "-p", "no:cacheprovider", "-o", "junit_logging=all",
      `--junitxml=${join(dir, `${file}.xml`)}`, "-q", ...(options.slow ? [] : ["-m", "not slow"]),
      ...(options.k ? ["-k", options.k] : []), path];
    for (const suffix of [".xml", ".log", ".notes.jsonl", ".run.json"]) rmSync(join(dir, `${file}${suffix}`), { force: true });
    const started = Date.now();
    const { timedOut } = await runPytest(python, args, {
      cwd: testsDir, env: { ...env, GROVE_CONFORMANCE_NOTES: join(dir, `${file}.notes.jsonl`) },
      logFile: join(dir, `${file}.log`), timeoutSeconds: options.fileTimeout,
    });
    const outcomes = readOutcomes(dir, file);
    const counts = countOutcomes(outcomes ?? []);
    log(`${target} ${file}: ${outcomes === undefined ? "no JUnit XML (see the log)" : Object.entries(counts).map(([name, count]) => `${count} ${name}`).join(", ")}` +
      `${timedOut ? ", TIMED OUT" : ""} (${Math.round((Date.now() - started) / 1000)} s)`);
    const run = { date: new Date(started).toISOString().slice(0, 16).replace("T", " "), revision, selection: selection(options), timedOut };
    writeFileSync(join(dir, `${file}.run.json`), `${JSON.stringify(run)}\n`);
  }
  rmSync(join(dir, "homes"), { recursive: true, force: true });
}

function readOutcomes(dir, file) {
  const path = join(dir, `${file}.xml`);
  return existsSync(path) ? parseJunit(readFileSync(path, "utf8")) : undefined;
}

function countOutcomes(outcomes) {
  const counts = { passed: 0, failed: 0, error: 0, skipped: 0 };
  for (const { outcome } of outcomes) counts[outcome]++;
  return counts;
}

function fileDigest(path) {
  return existsSync(path) ? `sha256:${createHash("sha256").update(readFileSync(path)).digest("hex")}` : "(not generated)";
}

function readJsonFile(path, fallback) {
  return existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : fallback;
}

function readNotes(dir, file) {
  const path = join(dir, `${file}.notes.jsonl`);
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line));
}

function selection(options) {
  return [options.slow ? "slow tests included" : "-m 'not slow'", options.k ? `-k '${options.k}'` : ""].filter(Boolean).join(", ");
}

async function main() {
  const options = readOptions();
  const settings = conformanceSettings();
  ensureLlamaCpp(settings);
  const testsDir = join(settings.llamaCppDir, "tools", "server", "tests");
  mkdirSync(options.work, { recursive: true });
  const python = findPython();
  const targets = options.targets.filter((target) => {
    if (target !== "llama-server" || existsSync(settings.llamaServer)) return true;
    log(`no reference llama-server at ${settings.llamaServer} (scripts/build-llama-server.sh builds it): Grove only`);
    return false;
  });

  const serveHelpFile = join(options.work, "grove-serve-help.txt");
  if (!options.reportOnly) {
    const [program, ...prefix] = settings.groveCommand;
    const help = run(program, [...prefix, "serve", "--help"]);
    if (help.status !== 0) fail(`${settings.groveCommand.join(" ")} serve --help failed (is dist/ built? npx tsc -p tsconfig.json): ${help.stderr}`);
    writeFileSync(serveHelpFile, help.stdout);
    for (const substitute of SUBSTITUTES) ensureSubstitute(substitute, settings);
    const revisions = {
      grove: `Grove ${groveRevision(settings.groveCommand)}`,
      "llama-server": `llama-server ${settings.llamaServer}, llama.cpp ${git(settings.llamaCppDir, "log", "-1", "--format=%h")}`,
    };
    for (const target of targets) {
      await runTarget(target, options.files, { settings, options, python, testsDir, serveHelpFile, revision: revisions[target] });
    }
  }

  const results = {};
  const notes = {};
  const runs = {};
  for (const target of TARGETS) {
    const dir = join(options.work, target);
    const files = options.files.filter((file) => existsSync(join(dir, `${file}.xml`)));
    if (files.length === 0) continue;
    results[target] = Object.fromEntries(files.map((file) => [file, readOutcomes(dir, file)]));
    notes[target] = files.flatMap((file) => readNotes(dir, file));
    runs[target] = Object.fromEntries(files.map((file) => [file, readJsonFile(join(dir, `${file}.run.json`), {})]));
  }
  const pytestVersion = run(python, ["-m", "pytest", "--version"]);
  const meta = {
    date: new Date().toISOString().slice(0, 10),
    llamaCpp: git(settings.llamaCppDir, "log", "-1", "--format=%h"),
    pytest: (pytestVersion.stdout || pytestVersion.stderr).trim(),
    runs,
    substitutes: SUBSTITUTES.map((substitute) => ({ ...substitute, digest: fileDigest(substitutePath(substitute, settings.modelsDir)) })),
  };
  const markdown = buildReport({ meta, files: options.files, results, notes });
  process.stdout.write(markdown);
  if (options.report !== "none") {
    const previous = existsSync(options.report) ? readFileSync(options.report, "utf8") : "";
    writeFileSync(options.report, replaceGeneratedBlock(previous, markdown));
    log(`report written to ${relative(process.cwd(), options.report)}`);
  }
}

main().catch((error) => fail(error.stack ?? String(error)));
