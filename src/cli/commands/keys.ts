import type { Command } from "commander";
import { NotFoundError } from "../../core/errors.js";
import { issueKey, KEY_ID_PATTERN, keyView, listKeyViews, type KeyView } from "../../gateway/issue-key.js";
import { parseKeyOptions } from "../../gateway/key-options.js";
import { renderTable } from "../format.js";
import { DATABASE_FLAG, HOME_FLAG, HOME_FLAG_HELP, SERVICE_DATABASE_FLAG_HELP, withServiceStore } from "../store-access.js";

interface CreateFlags {
  name?: string;
  models?: string;
  expires?: string;
  admin?: boolean;
  rpm?: string;
  tpm?: string;
  concurrency?: string;
  budgetTokens?: string;
  budgetUsd?: string;
  period?: string;
  json?: boolean;
  home?: string;
  database?: string;
}

function describeLimits(view: KeyView): string {
  const { rpm, tpm, concurrency, budgetTokens, budgetUsd, period } = view.limits;
  const parts: string[] = [];
  if (rpm !== undefined) parts.push(`${rpm} rpm`);
  if (tpm !== undefined) parts.push(`${tpm} tpm`);
  if (concurrency !== undefined) parts.push(`${concurrency} at once`);
  if (budgetTokens !== undefined) parts.push(`${view.budget?.spentTokens ?? 0}/${budgetTokens} tokens per ${period ?? "month"}`);
  if (budgetUsd !== undefined) parts.push(`$${(view.budget?.spentUsd ?? 0).toFixed(4)}/$${budgetUsd} per ${period ?? "month"}`);
  return parts.length === 0 ? "-" : parts.join(", ");
}

/**
 * Registers `grove keys create|list|revoke`: API keys for `grove serve`. Once any key exists,
 * every `/v1` and `/api` request needs one; `--admin` keys may also use the admin routes.
 *
 * @example
 * grove keys create --name ci --models grove-small --expires 30d --rpm 60 --budget-tokens 100000 --period day
 * grove keys list --json
 * grove keys revoke key_0123456789abcdef
 */
export function registerKeysCommand(program: Command): void {
  const keys = program.command("keys").description("create, list and revoke API keys (stored hashed in <home>/service.db, or the --database PostgreSQL)");
  keys
    .command("create")
    .description("create a key and print its secret (shown once, never stored)")
    .option("--name <name>", "a label for people")
    .option("--models <list>", "comma-separated model names or aliases the key may use (default: all)")
    .option("--expires <when>", "a duration (90m, 12h, 30d, 2w) or an ISO date (default: never)")
    .option("--admin", "may also use the admin routes (/api/keys, /api/usage, store, forge)")
    .option("--rpm <n>", "requests per minute")
    .option("--tpm <n>", "tokens per minute (prompt + max_tokens reserved, settled to the real count)")
    .option("--concurrency <n>", "requests in flight at once")
    .option("--budget-tokens <n>", "tokens per period")
    .option("--budget-usd <x>", "US dollars per period (at the prices of grove price set)")
    .option("--period <day|month>", "the budget's period (default month)")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, SERVICE_DATABASE_FLAG_HELP)
    .option("--json", "print the key and its secret as JSON")
    .action(async (flags: CreateFlags) => {
      const now = new Date();
      const options = parseKeyOptions(
        {
          name: flags.name,
          models: flags.models,
          expires: flags.expires,
          admin: flags.admin === true,
          rpm: flags.rpm,
          tpm: flags.tpm,
          concurrency: flags.concurrency,
          budgetTokens: flags.budgetTokens,
          budgetUsd: flags.budgetUsd,
          period: flags.period,
        },
        now,
        "flag",
      );
      const issued = await withServiceStore(flags, async (store) => {
        const { key, secret } = await issueKey(store, options, now);
        return { key: await keyView(store, key, now), secret };
      });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(issued, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `Created ${issued.key.id}${issued.key.name ? ` (${issued.key.name})` : ""}${issued.key.admin ? ", admin" : ""}. ` +
          "Its secret, shown this once (Grove keeps only a hash):\n" +
          `${issued.secret}\n`,
      );
    });
  keys
    .command("list")
    .description("list keys: id, name, prefix, status, scope, expiry, limits and this period's spend (never a secret)")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, SERVICE_DATABASE_FLAG_HELP)
    .option("--json", "print the keys as JSON")
    .action(async (flags: { home?: string; database?: string; json?: boolean }) => {
      const views = await withServiceStore(flags, (store) => listKeyViews(store, new Date()));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(views, null, 2)}\n`);
        return;
      }
      if (views.length === 0) {
        process.stdout.write("No keys: the API is open to whoever reaches it (bind stays on loopback). Create one with grove keys create.\n");
        return;
      }
      const rows = views.map((view) => [
        view.id,
        view.name || "-",
        `${view.prefix}…`,
        view.status,
        view.admin ? "yes" : "no",
        view.models?.join(",") ?? "all",
        view.expiresAt?.slice(0, 16).replace("T", " ") ?? "never",
        describeLimits(view),
      ]);
      process.stdout.write(`${renderTable(["ID", "NAME", "PREFIX", "STATUS", "ADMIN", "MODELS", "EXPIRES", "LIMITS"], rows)}\n`);
    });
  keys
    .command("revoke <id>")
    .description("revoke a key: requests with it get 403 from now on")
    .option(HOME_FLAG, HOME_FLAG_HELP)
    .option(DATABASE_FLAG, SERVICE_DATABASE_FLAG_HELP)
    .action(async (id: string, flags: { home?: string; database?: string }) => {
      await withServiceStore(flags, async (store) => {
        const key = KEY_ID_PATTERN.test(id) ? await store.getKey(id) : undefined;
        if (!key) throw new NotFoundError(`No key with id '${id.slice(0, 40)}' (see grove keys list)`);
        await store.revokeKey(id, new Date());
      });
      process.stdout.write(`Revoked ${id}\n`);
    });
}
