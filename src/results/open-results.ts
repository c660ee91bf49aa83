import type { GroveConfig } from "../config/config.js";
import type { Logger } from "../logging/logger.js";
import { ResultStore } from "./result-store.js";

/**
 * The results the configuration names: the shared PostgreSQL database when `database`
 * (`--database`, GROVE_DATABASE_URL) is set, so that replicas see each other's measurements as
 * they share the registry; else `<home>/results.db` (as `openServiceStore` does for the
 * gateway). Called by the composition roots only: the server once at startup (`services.ts`),
 * each CLI command once (`withResults` in `cli/commands/store-commands.ts`), the demo build
 * scripts once per run; everything else is handed the store.
 * @throws ConfigError for a bad or unreachable database
 */
export async function openResults(config: Pick<GroveConfig, "home" | "database">, logger?: Logger): Promise<ResultStore> {
  return ResultStore.open(config.home, {
    database: config.database,
    onDatabaseError: (error) => logger?.warn({ err: error }, "a PostgreSQL results connection failed; the pool opens another"),
  });
}
