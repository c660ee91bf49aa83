// llama-server's command line, as llama.cpp's server tests write it (tools/server/tests/utils.py,
// ServerProcess.start), read into a plan: which model, and the `grove serve` flags that say the
// same thing. Pure: no I/O, so the mapping is testable without a server (llama-server-flags.test.mjs).
//
// A llama-server flag reaches Grove in one of four ways:
//   - the same or a renamed flag, when `grove serve --help` lists it (so a flag Grove gains later is
//     used without touching this table);
//   - a translation (`-c` is llama-server's TOTAL context, Grove's `--ctx-size` is per slot — except
//     with `--kv-unified`, where both are the one shared cache's size);
//   - ignored, where Grove needs no counterpart (it always batches continuously, always serves
//     /metrics and /v1/embeddings, always renders templates with Jinja);
//   - unsupported: recorded, never invented.

/**
 * @typedef {object} FlagSpec
 * @property {string[]} names      llama-server's spellings, long one first
 * @property {boolean} value       takes a value
 * @property {string[]} [grove]    Grove spellings to try, in order (default: the long names)
 * @property {string} [ignore]     why Grove needs no counterpart when it lists none of `grove`
 * @property {string} [special]    handled by {@link planGroveServe} itself
 */

/** @type {readonly FlagSpec[]} */
export const LLAMA_SERVER_FLAGS = Object.freeze([
  // The model and its name.
  { names: ["--model", "-m"], value: true, special: "model" },
  { names: ["--hf-repo", "-hf", "-hfr"], value: true, special: "model" },
  { names: ["--hf-file", "-hff"], value: true, special: "model" },
  { names: ["--model-url", "-mu"], value: true, special: "model" },
  { names: ["--alias", "-a"], value: true, special: "alias" },
  { names: ["--offline"], value: false, ignore: "the shim never downloads" },
  // Serving.
  { names: ["--host"], value: true },
  { names: ["--port"], value: true },
  { names: ["--api-key"], value: true },
  { names: ["--cors-origins"], value: true },
  { names: ["--threads", "-t"], value: true },
  { names: ["--threads-batch", "-tb"], value: true },
  { names: ["--ctx-size", "-c"], value: true, special: "ctx-size" },
  { names: ["--parallel", "-np"], value: true },
  { names: ["--batch-size", "-b"], value: true },
  { names: ["--ubatch-size", "-ub"], value: true },
  { names: ["--cache-type-k", "-ctk"], value: true },
  { names: ["--cache-type-v", "-ctv"], value: true },
  { names: ["--flash-attn", "-fa"], value: true },
  { names: ["--n-gpu-layers", "-ngl", "--gpu-layers"], value: true, grove: ["--gpu-layers"] },
  { names: ["--models-max"], value: true, grove: ["--max-models"] },
  { names: ["--sleep-idle-seconds"], value: true, special: "idle" },
  { names: ["--no-ui", "--no-webui"], value: false, special: "no-ui" },
  { names: ["--cont-batching", "-cb"], value: false, ignore: "Grove always batches continuously" },
  { names: ["--no-cont-batching", "-nocb"], value: false },
  { names: ["--kv-unified", "-kvu"], value: false, special: "kv-unified" },
  { names: ["--no-kv-unified", "-no-kvu"], value: false, ignore: "one KV cache per slot is Grove's default" },
  { names: ["--swa-full"], value: false },
  { names: ["--cache-ram", "-cram"], value: true },
  { names: ["--no-cache-idle-slots"], value: false },
  { names: ["--cache-reuse"], value: true },
  // Endpoints.
  { names: ["--embedding", "--embeddings"], value: false, ignore: "Grove always serves /v1/embeddings" },
  { names: ["--reranking", "--rerank"], value: false },
  { names: ["--metrics"], value: false, ignore: "Grove always serves /metrics" },
  { names: ["--props"], value: false },
  { names: ["--slots"], value: false },
  { names: ["--no-slots"], value: false },
  { names: ["--slot-save-path"], value: true },
  { names: ["--pooling"], value: true },
  // Sampling defaults.
  { names: ["--temp", "--temperature"], value: true },
  { names: ["--seed", "-s"], value: true },
  { names: ["--n-predict", "-n", "--predict"], value: true },
  // Chat templates and reasoning.
  { names: ["--jinja"], value: false, ignore: "Grove always renders chat templates with Jinja" },
  { names: ["--no-jinja"], value: false, ignore: "Grove renders templates with Jinja, and a built-in name given to --chat-template with llama.cpp's own formatter" },
  { names: ["--chat-template"], value: true },
  { names: ["--chat-template-file"], value: true, special: "path" },
  { names: ["--chat-template-kwargs"], value: true },
  { names: ["--reasoning-format"], value: true },
  { names: ["--reasoning", "-rea"], value: true },
  { names: ["--reasoning-budget"], value: true },
  // Context shift: llama-server spells it --context-shift; --ctx-shift is accepted as well.
  { names: ["--context-shift", "--ctx-shift"], value: false, grove: ["--context-shift", "--ctx-shift"] },
  { names: ["--no-context-shift", "--no-ctx-shift"], value: false, grove: ["--no-context-shift", "--no-ctx-shift"] },
  { names: ["--grp-attn-n", "-gan"], value: true },
  { names: ["--grp-attn-w", "-gaw"], value: true },
  // Features Grove's server has no counterpart for today; passed on if `grove serve` gains them.
  { names: ["--lora"], value: true },
  { names: ["--model-draft", "-md"], value: true },
  { names: ["--spec-type"], value: true },
  { names: ["--spec-draft-n-max"], value: true },
  { names: ["--spec-draft-n-min"], value: true },
  { names: ["--spec-synth-len"], value: true },
  { names: ["--spec-synth-rates"], value: true },
  { names: ["--mmproj-url", "-mmu"], value: true },
  { names: ["--mmproj", "-mm"], value: true },
  { names: ["--no-mmproj", "--no-mmproj-auto"], value: false },
  { names: ["--media-path"], value: true, special: "path" },
  { names: ["--models-dir"], value: true },
  { names: ["--models-preset"], value: true },
  { names: ["--no-models-autoload"], value: false },
  { names: ["--tags"], value: true },
  { names: ["--ui-mcp-proxy", "--webui-mcp-proxy"], value: false },
  { names: ["--tools"], value: true },
  { names: ["--tools-runtime"], value: true },
  { names: ["--mcp-servers-config"], value: true },
  { names: ["--mcp-servers-json"], value: true },
  { names: ["--backend-sampling", "--backend_sampling", "-bs"], value: false },
  // Logging: Grove's own level stays.
  { names: ["--verbose", "-v", "--log-verbose"], value: false, special: "verbose" },
  { names: ["--log-verbosity", "-lv", "--verbosity"], value: true, ignore: "logging" },
  { names: ["--log-disable"], value: false, ignore: "logging" },
  { names: ["--log-file"], value: true, ignore: "logging" },
  { names: ["--log-colors"], value: true, ignore: "logging" },
  { names: ["--log-timestamps"], value: false, ignore: "logging" },
  { names: ["--log-prefix"], value: false, ignore: "logging" },
]);

const BY_NAME = new Map(LLAMA_SERVER_FLAGS.flatMap((spec) => spec.names.map((name) => [name, spec])));

/**
 * Reads llama-server's argv into flags in order. An unknown flag takes the next word as its value
 * when that word is not itself a flag (a negative number is a value).
 *
 * @param {string[]} argv
 * @returns {{ name: string, value: string | undefined, spec: FlagSpec | undefined }[]}
 */
export function parseLlamaServerArgs(argv) {
  const flags = [];
  for (let index = 0; index < argv.length; index++) {
    let name = argv[index];
    let value;
    const equals = name.startsWith("--") ? name.indexOf("=") : -1;
    if (equals > 0) {
      value = name.slice(equals + 1);
      name = name.slice(0, equals);
    }
    const spec = BY_NAME.get(name);
    const next = argv[index + 1];
    const takesValue = spec ? spec.value : next !== undefined && (!next.startsWith("-") || /^-\d/.test(next));
    if (value === undefined && takesValue) {
      if (next === undefined) throw new Error(`${name} needs a value`);
      value = next;
      index++;
    }
    flags.push({ name, value, spec });
  }
  return flags;
}

/** The long flags `grove serve --help` lists. */
export function groveFlagsFromHelp(helpText) {
  return new Set([...helpText.matchAll(/^\s*(?:-\w,\s*)?(--[a-z0-9][a-z0-9-]*)/gm)].map((match) => match[1]));
}

/**
 * @typedef {object} ModelRequest
 * @property {string} [file]  `--model`
 * @property {string} [repo]  `--hf-repo`
 * @property {string} [hfFile] `--hf-file`
 * @property {string} [url]   `--model-url`
 */

/**
 * @typedef {object} FlagNote
 * @property {string} flag
 * @property {string} [value]
 * @property {"mapped" | "ignored" | "unsupported"} status
 * @property {string} detail
 */

/** The model llama-server was asked to load, or undefined for router mode (no model). */
export function modelRequest(flags) {
  /** @type {ModelRequest} */
  const request = {};
  for (const { spec, value } of flags) {
    if (spec?.special !== "model") continue;
    if (spec.names[0] === "--model") request.file = value;
    if (spec.names[0] === "--hf-repo") request.repo = value;
    if (spec.names[0] === "--hf-file") request.hfFile = value;
    if (spec.names[0] === "--model-url") request.url = value;
  }
  return Object.keys(request).length === 0 ? undefined : request;
}

/** Last value of a flag, by its first (long) name. */
export function flagValue(flags, longName) {
  return flags.findLast((flag) => flag.spec?.names[0] === longName)?.value;
}

/**
 * The `grove serve` flags for llama-server's (model, home and web app aside, which the caller
 * adds), and a note for every flag saying what became of it.
 *
 * @param {ReturnType<typeof parseLlamaServerArgs>} flags
 * @param {Set<string>} groveFlags what `grove serve --help` lists
 * @param {(path: string) => string} resolvePath makes a path the suite gives relative to its
 *   working directory absolute
 * @returns {{ args: string[], notes: FlagNote[], noUi: boolean }}
 */
export function planGroveServe(flags, groveFlags, resolvePath = (path) => path) {
  const args = [];
  const notes = [];
  let noUi = false;
  const parallel = Number(flagValue(flags, "--parallel") ?? 4);
  // With one shared cache, Grove's --ctx-size is its size too: the total passes unchanged (the last
  // of --kv-unified / --no-kv-unified wins, as in llama-server's parser).
  const unifiedFlag = flags.findLast((flag) => flag.spec?.names[0] === "--kv-unified" || flag.spec?.names[0] === "--no-kv-unified");
  const unified = unifiedFlag?.spec?.names[0] === "--kv-unified" && groveFlags.has("--kv-unified");
  const note = (flag, status, detail) => notes.push({ flag: flag.name, value: flag.value, status, detail });
  const pass = (flag, groveName, value = flag.value) => {
    args.push(groveName, ...(value === undefined ? [] : [value]));
    note(flag, "mapped", value === undefined ? groveName : `${groveName} ${value}`);
  };
  for (const flag of flags) {
    const { spec } = flag;
    if (spec?.special === "model") continue;
    if (spec?.special === "alias") {
      if (groveFlags.has("--alias")) pass(flag, "--alias");
      continue; // otherwise the caller names the model file after the alias
    }
    if (spec?.special === "ctx-size") {
      const total = Number(flag.value);
      if (total > 0) pass(flag, "--ctx-size", String(unified ? total : Math.floor(total / parallel)));
      else note(flag, "ignored", "0 = the model's own context: Grove's default per slot stays");
      continue;
    }
    if (spec?.special === "kv-unified") {
      if (unified) pass(flag, "--kv-unified");
      else if (groveFlags.has("--kv-unified")) note(flag, "ignored", "a later --no-kv-unified undoes it");
      else note(flag, "unsupported", "grove serve has no --kv-unified");
      continue;
    }
    if (spec?.special === "idle") {
      pass(flag, "--idle-unload", `${flag.value}s`);
      continue;
    }
    if (spec?.special === "verbose") {
      // llama-server's --verbose logs everything and adds __verbose to answers; Grove does both at debug level.
      pass(flag, "--log-level", "debug");
      continue;
    }
    if (spec?.special === "no-ui") {
      noUi = true;
      note(flag, "mapped", "--web-dir none");
      continue;
    }
    const candidates = spec?.grove ?? (spec ? spec.names.filter((name) => name.startsWith("--")) : [flag.name]);
    const groveName = candidates.find((name) => groveFlags.has(name));
    if (groveName !== undefined) {
      pass(flag, groveName, spec?.special === "path" && flag.value !== undefined ? resolvePath(flag.value) : flag.value);
    } else if (spec?.ignore !== undefined) {
      note(flag, "ignored", spec.ignore);
    } else {
      note(flag, "unsupported", `grove serve has no ${candidates.join(" / ")}`);
    }
  }
  return { args, notes, noUi };
}

/**
 * llama-server's own argv with the download flags replaced by a local file, for running the
 * reference server under the same conditions as Grove.
 *
 * @param {string[]} argv
 * @param {string | undefined} modelFile the substitute; undefined keeps argv's model (or none)
 * @param {string[]} impliedFlags added unless argv already gives the flag
 */
export function planLlamaServer(argv, modelFile, impliedFlags = []) {
  const flags = parseLlamaServerArgs(argv);
  const args = [];
  for (const { name, value, spec } of flags) {
    if (modelFile !== undefined && spec?.special === "model") continue;
    args.push(name, ...(value === undefined ? [] : [value]));
  }
  if (modelFile !== undefined) args.push("--model", modelFile);
  for (let index = 0; index < impliedFlags.length; index += 2) {
    const spec = BY_NAME.get(impliedFlags[index]);
    if (!flags.some((flag) => flag.spec === spec)) args.push(impliedFlags[index], impliedFlags[index + 1]);
  }
  return args;
}
