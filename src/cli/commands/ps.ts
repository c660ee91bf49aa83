import type { Command } from "commander";
import { ModelNotFoundError, UpstreamError } from "../../core/errors.js";
import { ServerClient } from "../server-client.js";
import { formatBytes, renderTable } from "../format.js";

interface ServerFlags {
  host?: string;
  json?: boolean;
}

/** One model of Ollama's `/api/ps`, as Grove answers it. */
interface PsModel {
  name: string;
  model: string;
  size: number;
  digest: string;
  expires_at: string;
  size_vram: number;
  context_length: number;
  details?: Record<string, unknown>;
}

/** One model of Grove's `/api/loaded` (the fields `ps` reads). */
interface LoadedReport {
  digest: string;
  slotsBusy?: number;
  slotsTotal?: number;
  queued?: number;
}

/** A row of `grove ps --json`: Ollama's `/api/ps` entry and the model's slots. */
export interface PsRow extends PsModel {
  slots_busy: number | null;
  slots_total: number | null;
  queued: number | null;
}

const SERVER_FLAG = "--host <host>";
const SERVER_FLAG_HELP = "the server: host, host:port or URL (env GROVE_HOST; port GROVE_PORT, default 11435)";

/**
 * `grove ps` and `grove stop`, Ollama's commands, against a running `grove serve` (see
 * `ServerClient`): what is loaded — name, digest, memory, processor, context, slots busy, until
 * when it stays — and unloading one now (`keep_alive: 0` without a prompt, as `ollama stop` sends).
 *
 * @example
 * grove ps
 * grove stop tiny:f16
 */
export function registerPsCommands(program: Command): void {
  program
    .command("ps")
    .description("list the models a running server has loaded: memory, slots busy, and until when they stay (keep_alive)")
    .option(SERVER_FLAG, SERVER_FLAG_HELP)
    .option("--json", "print the models as JSON")
    .action(async (flags: ServerFlags) => {
      const rows = await listRunning(new ServerClient({ ...(flags.host === undefined ? {} : { host: flags.host }) }));
      if (flags.json) return void process.stdout.write(`${JSON.stringify({ models: rows })}\n`);
      process.stdout.write(`${formatPs(rows, Date.now())}\n`);
    });

  program
    .command("stop")
    .description("unload a model from a running server now (it loads again on its next request)")
    .argument("<model>", "the model's name, digest or alias")
    .option(SERVER_FLAG, SERVER_FLAG_HELP)
    .action(async (model: string, flags: ServerFlags) => {
      const client = new ServerClient({ ...(flags.host === undefined ? {} : { host: flags.host }) });
      try {
        await client.post("/api/generate", { model, keep_alive: 0 });
      } catch (error) {
        if (error instanceof UpstreamError && error.status === 404) throw new ModelNotFoundError(model, { cause: error });
        throw error;
      }
    });
}

/** Ollama's `/api/ps` with each model's slots from `/api/loaded` (left out when the key may not read it). */
export async function listRunning(client: ServerClient): Promise<PsRow[]> {
  const { models } = await client.get<{ models: PsModel[] }>("/api/ps");
  let reports: LoadedReport[] = [];
  try {
    reports = (await client.get<{ models: LoadedReport[] }>("/api/loaded")).models;
  } catch (error) {
    // `/api/loaded` needs an admin key where keys are in use; `ps` still shows the rest.
    if (!(error instanceof UpstreamError && (error.status === 401 || error.status === 403))) throw error;
  }
  return models.map((model) => {
    const report = reports.find((candidate) => candidate.digest.replace(/^sha256:/, "") === model.digest);
    return { ...model, slots_busy: report?.slotsBusy ?? null, slots_total: report?.slotsTotal ?? null, queued: report?.queued ?? null };
  });
}

/** The table of `grove ps`, with Ollama's columns and SLOTS (busy/total). */
export function formatPs(rows: readonly PsRow[], now: number): string {
  const table = rows.map((row) => [
    row.name,
    row.digest.slice(0, 12),
    formatBytes(row.size),
    processorOf(row),
    String(row.context_length),
    row.slots_total === null ? "-" : `${row.slots_busy ?? 0}/${row.slots_total}`,
    untilOf(row.expires_at, now),
  ]);
  return renderTable(["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "SLOTS", "UNTIL"], table, [false, false, true]);
}

/** Ollama's PROCESSOR column: where the model's memory is. */
function processorOf(row: PsModel): string {
  if (row.size_vram === 0) return "100% CPU";
  if (row.size_vram === row.size) return "100% GPU";
  if (row.size_vram > row.size || row.size === 0) return "Unknown";
  const cpu = Math.round(((row.size - row.size_vram) / row.size) * 100);
  return `${cpu}%/${100 - cpu}% CPU/GPU`;
}

/** Ollama's UNTIL column: `Forever`, `Stopping...` once past, else `4 minutes from now`. */
export function untilOf(expiresAt: string, now: number): string {
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at) || new Date(at).getUTCFullYear() >= 9999) return "Forever";
  const seconds = Math.round((at - now) / 1000);
  if (seconds <= 0) return "Stopping...";
  const units: [number, string][] = [[86_400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
  for (const [size, unit] of units) {
    const count = Math.floor(seconds / size);
    if (count >= 1) return `${count === 1 ? (unit === "hour" ? "An" : "A") : count} ${unit}${count === 1 ? "" : "s"} from now`;
  }
  return "Stopping...";
}
