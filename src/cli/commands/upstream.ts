import { mkdirSync } from "node:fs";
import type { Command } from "commander";
import { loadConfig } from "../../config/config.js";
import { NotFoundError } from "../../core/errors.js";
import { SqliteUpstreamStore } from "../../gateway/sqlite-upstream-store.js";
import { validateUpstream, type UpstreamStore } from "../../gateway/upstream-store.js";
import { renderTable } from "../format.js";
import { HOME_FLAG, HOME_FLAG_HELP } from "../store-access.js";

interface AddFlags {
  url: string;
  model?: string;
  apiKey?: string;
  fallback?: string;
  home?: string;
}

/** Opens the upstreams of `<home>/service.db` for one command (a running server re-reads them every health interval). */
async function withUpstreamStore<T>(home: string | undefined, fn: (store: UpstreamStore) => Promise<T>): Promise<T> {
  const config = loadConfig({ flags: { home } });
  mkdirSync(config.home, { recursive: true });
  const store = SqliteUpstreamStore.open(config.home);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * Registers `grove upstream add|ls|rm`: served names routed to an external OpenAI-compatible
 * engine. A running `grove serve` picks changes up at its next health check.
 *
 * @example
 * grove upstream add big --url http://gpu-box:8000/v1 --model meta-llama/Llama-3.1-70B-Instruct --fallback grove-small
 * grove upstream ls --json
 * grove upstream rm big
 */
export function registerUpstreamCommands(program: Command): void {
  const upstream = program.command("upstream").description("route model names to external OpenAI-compatible engines (vLLM, llama.cpp's server, Ollama, another Grove)");
  upstream
    .command("add <name>")
    .description("add (or replace) an upstream: requests for NAME go to URL")
    .requiredOption("--url <url>", "the engine's OpenAI-compatible base URL, including /v1 (http://host:8000/v1)")
    .option("--model <remote>", "the model name the upstream knows (default: NAME)")
    .option("--api-key <key>", "bearer key the upstream requires (stored in <home>/service.db, never logged or listed)")
    .option("--fallback <name>", "another served name (upstream or local model) used while this one is down")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .action(async (name: string, flags: AddFlags) => {
      const record = validateUpstream({
        name,
        url: flags.url,
        ...(flags.model === undefined ? {} : { remoteModel: flags.model }),
        ...(flags.apiKey === undefined || flags.apiKey === "" ? {} : { apiKey: flags.apiKey }),
        ...(flags.fallback === undefined ? {} : { fallback: flags.fallback }),
        createdAt: new Date().toISOString(),
      });
      await withUpstreamStore(flags.home, async (store) => {
        const existing = await store.getUpstream(name);
        await store.putUpstream(existing ? { ...record, createdAt: existing.createdAt } : record);
      });
      process.stdout.write(`${name} → ${record.url}${record.remoteModel ? ` (model ${record.remoteModel})` : ""}${record.fallback ? `, fallback ${record.fallback}` : ""}\n`);
    });
  upstream
    .command("ls")
    .description("list upstreams (their API keys are never printed)")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option("--json", "print JSON")
    .action(async (flags: { home?: string; json?: boolean }) => {
      const records = await withUpstreamStore(flags.home, (store) => store.listUpstreams());
      const views = records.map((record) => ({
        name: record.name,
        url: record.url,
        model: record.remoteModel ?? record.name,
        fallback: record.fallback ?? null,
        apiKey: record.apiKey !== undefined,
        createdAt: record.createdAt,
      }));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(views, null, 2)}\n`);
        return;
      }
      if (views.length === 0) {
        process.stdout.write("No upstreams. Add one with grove upstream add NAME --url http://host:port/v1\n");
        return;
      }
      const rows = views.map((view) => [view.name, view.url, view.model, view.fallback ?? "-", view.apiKey ? "set" : "-"]);
      process.stdout.write(`${renderTable(["NAME", "URL", "REMOTE MODEL", "FALLBACK", "API KEY"], rows)}\n`);
    });
  upstream
    .command("rm <name>")
    .description("remove an upstream")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .action(async (name: string, flags: { home?: string }) => {
      const removed = await withUpstreamStore(flags.home, (store) => store.removeUpstream(name));
      if (!removed) throw new NotFoundError(`No upstream named '${name}'`);
      process.stdout.write(`removed ${name}\n`);
    });
}
