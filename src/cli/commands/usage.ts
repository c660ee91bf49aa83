import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../../config/config.js";
import { InvalidRequestError } from "../../core/errors.js";
import type { UsageRecord, UsageSummary } from "../../gateway/service-store.js";
import { parseUsageOptions } from "../../gateway/usage-options.js";
import { digestOfFile } from "../../store/file-digest.js";
import { renderTable } from "../format.js";
import { DATABASE_FLAG, HOME_FLAG, HOME_FLAG_HELP, SERVICE_DATABASE_FLAG_HELP, namesByDigest, withServiceStore, withStore } from "../store-access.js";

interface UsageFlags {
  key?: string;
  since?: string;
  by?: string;
  split?: string;
  limit?: string;
  csv?: boolean;
  json?: boolean;
  home?: string;
  database?: string;
}

const csvCell = (value: unknown) => {
  const text = value === undefined || value === null ? "" : String(value);
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};
const csv = (header: string[], rows: unknown[][]) => [header, ...rows].map((row) => row.map(csvCell).join(",")).join("\n");

const USAGE_COLUMNS = ["created_at", "request_id", "key_id", "model", "model_digest", "endpoint", "prompt_tokens", "completion_tokens", "cost_usd", "ttft_ms", "duration_ms", "status", "cancelled"];
const usageCells = (row: UsageRecord): unknown[] => [
  row.createdAt,
  row.requestId,
  row.keyId ?? "",
  row.model,
  row.modelDigest,
  row.endpoint,
  row.promptTokens,
  row.completionTokens,
  row.costUsd,
  row.ttftMs === undefined ? "" : row.ttftMs.toFixed(1),
  row.durationMs.toFixed(1),
  row.status,
  row.cancelled,
];
const SUMMARY_COLUMNS = ["group", "split", "requests", "prompt_tokens", "completion_tokens", "cost_usd", "cancelled", "errors", "mean_ttft_ms"];
/** A usage group with the store name of its model, when grouped or split by model. */
type NamedUsageSummary = UsageSummary & { name?: string; splitName?: string };
const summaryCells = (row: NamedUsageSummary): unknown[] => [
  row.name ?? row.group,
  row.splitName ?? row.split ?? "",
  row.requests,
  row.promptTokens,
  row.completionTokens,
  row.costUsd,
  row.cancelled,
  row.errors,
  row.meanTtftMs === null ? "" : row.meanTtftMs.toFixed(1),
];

/** The first store name of each model, by digest; empty when the home has no model registry. */
async function modelNames(flags: UsageFlags): Promise<Map<string, string>> {
  const config = loadConfig({ flags: { home: flags.home, database: flags.database } });
  if (config.database === "" && !existsSync(join(config.home, "registry.db"))) return new Map();
  const byDigest = await withStore(flags, (store) => namesByDigest(store));
  return new Map([...byDigest].filter(([, names]) => names.length > 0).map(([digest, names]) => [digest, names[0]!]));
}

function price(text: string | undefined, flag: string): number {
  const value = text === undefined ? Number.NaN : Number(text);
  if (text === undefined || text.trim() === "" || !Number.isFinite(value) || value < 0 || value > 1e6) {
    throw new InvalidRequestError(`${flag} must be US dollars per million tokens, from 0 to 1000000; got ${JSON.stringify(text ?? null)}`, { param: flag });
  }
  return value;
}

/**
 * Registers `grove usage` (metered requests, or their sums by model, key or day) and
 * `grove price set|list` (per-model prices that turn tokens into US dollars).
 *
 * @example
 * grove usage --since 7d --by model
 * grove usage --key key_0123456789abcdef --csv > usage.csv
 * grove price set grove-small --input-per-1m 0.05 --output-per-1m 0.2
 */
export function registerUsageCommands(program: Command): void {
  program
    .command("usage")
    .description("metered requests (newest first) or, with --by, their sums per model, key, UTC day or UTC hour")
    .option("--key <id>", "only this key's requests")
    .option("--since <when>", "a duration ago (7d, 12h) or an ISO date")
    .option("--by <group>", "sum by model, key, day or hour")
    .option("--split <group>", "with --by, split each group again by model or key (e.g. --by day --split model)")
    .option("--limit <n>", "most rows without --by (default 1000)")
    .option("--csv", "print CSV")
    .option("--json", "print JSON")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, SERVICE_DATABASE_FLAG_HELP)
    .action(async (flags: UsageFlags) => {
      if (flags.csv && flags.json) throw new InvalidRequestError("Choose one of --csv and --json", { param: "--csv" });
      const { query, by, split } = parseUsageOptions({ key: flags.key, since: flags.since, by: flags.by, split: flags.split, limit: flags.limit }, new Date(), "flag");
      const listing: { usage?: UsageRecord[]; by?: string; split?: string; groups?: NamedUsageSummary[] } = await withServiceStore(flags, async (store) =>
        by === undefined ? { usage: await store.listUsage(query) } : { by, ...(split === undefined ? {} : { split }), groups: await store.summarizeUsage(query, by, split) },
      );
      // Models are grouped by digest (one model, whatever name or alias the client sent): shown by
      // their store name, the digest only for a model the store does not name.
      if (listing.groups !== undefined && (by === "model" || split === "model")) {
        const names = await modelNames(flags);
        listing.groups = listing.groups.map((group) => ({
          ...group,
          ...(by === "model" && names.has(group.group) ? { name: names.get(group.group)! } : {}),
          ...(split === "model" && group.split !== undefined && names.has(group.split) ? { splitName: names.get(group.split)! } : {}),
        }));
      }
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(listing, null, 2)}\n`);
        return;
      }
      const grouped = listing.groups !== undefined;
      const [header, rows] = listing.groups !== undefined ? [SUMMARY_COLUMNS, listing.groups.map(summaryCells)] : [USAGE_COLUMNS, (listing.usage ?? []).map(usageCells)];
      if (flags.csv) {
        process.stdout.write(`${csv(header, rows)}\n`);
        return;
      }
      const text = rows.map((row) => row.map((cell) => (cell === undefined || cell === null || cell === "" ? "-" : String(cell))));
      process.stdout.write(`${renderTable(header.map((title) => title.toUpperCase()), text, header.map((_, index) => grouped && index > 0))}\n`);
    });

  const prices = program.command("price").description("per-model prices (US dollars per million tokens) for usage costs and --budget-usd");
  prices
    .command("set <model>")
    .description("set a model's price: MODEL is a store name, digest, or GGUF file")
    .option("--input-per-1m <usd>", "price of a million prompt tokens")
    .option("--output-per-1m <usd>", "price of a million completion tokens")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, SERVICE_DATABASE_FLAG_HELP)
    .action(async (ref: string, flags: { inputPer1m?: string; outputPer1m?: string; home?: string; database?: string }) => {
      const inputPer1m = price(flags.inputPer1m, "--input-per-1m");
      const outputPer1m = price(flags.outputPer1m, "--output-per-1m");
      const digest = existsSync(ref) && /\.gguf$/i.test(ref) ? await digestOfFile(ref) : await withStore(flags.home, async (store) => (await store.resolve(ref)).digest);
      await withServiceStore(flags, (store) => store.setPrice({ modelDigest: digest, inputPer1m, outputPer1m, updatedAt: new Date().toISOString() }));
      process.stdout.write(`${digest}: $${inputPer1m} per 1M prompt tokens, $${outputPer1m} per 1M completion tokens\n`);
    });
  prices
    .command("list")
    .description("list the prices set")
    .option("--json", "print JSON")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, SERVICE_DATABASE_FLAG_HELP)
    .action(async (flags: { json?: boolean; home?: string; database?: string }) => {
      const list = await withServiceStore(flags, (store) => store.listPrices());
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      const rows = list.map((entry) => [entry.modelDigest, String(entry.inputPer1m), String(entry.outputPer1m), entry.updatedAt]);
      process.stdout.write(`${renderTable(["MODEL", "INPUT/1M", "OUTPUT/1M", "UPDATED"], rows)}\n`);
    });
}
