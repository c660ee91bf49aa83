import type { GroveConfig } from "../config/config.js";
import type { Logger } from "../logging/logger.js";
import type { RateLimiter } from "./rate-limiter.js";
import type { ServiceStore } from "./service-store.js";
import { SqliteServiceStore } from "./sqlite-service-store.js";

/**
 * The gateway's store the configuration names: PostgreSQL when `database` (`--database`,
 * GROVE_DATABASE_URL) is set, so that replicas share keys, budgets and usage; else
 * `<home>/service.db`. The home directory must exist.
 * @throws ConfigError for a bad URL or an unreachable database
 */
export async function openServiceStore(config: GroveConfig, logger?: Logger): Promise<ServiceStore> {
  if (config.database === "") return SqliteServiceStore.open(config.home);
  // Loaded only when configured: the PostgreSQL client is most of a `grove keys` command's start.
  const { PostgresServiceStore } = await import("./postgres-service-store.js");
  return PostgresServiceStore.open(config.database, {
    onError: (error) => logger?.warn({ err: error }, "a PostgreSQL connection failed; the pool opens another"),
  });
}

/** A rate limiter that must be closed with the server. */
export interface ClosableRateLimiter extends RateLimiter {
  close(): Promise<void>;
}

/**
 * The shared rate limiter when `redis` (`--redis`, GROVE_REDIS_URL) is set; `undefined` leaves
 * the gateway its in-process one. Warns when only one of database and Redis is shared, since
 * replicas then enforce budgets together but rate limits apart (or the reverse).
 * @throws ConfigError for a bad URL or an unreachable server
 */
export async function openRateLimiter(config: GroveConfig, logger?: Logger): Promise<ClosableRateLimiter | undefined> {
  if ((config.database === "") !== (config.redis === "")) {
    logger?.warn(
      { database: config.database !== "", redis: config.redis !== "" },
      config.redis === ""
        ? "budgets are shared through PostgreSQL but rate limits are counted per process: set --redis (GROVE_REDIS_URL) to share them between replicas"
        : "rate limits are shared through Redis but keys, budgets and usage stay in this home's service.db: set --database (GROVE_DATABASE_URL) to share them",
    );
  }
  if (config.redis === "") return undefined;
  const { RedisRateLimiter } = await import("./redis-rate-limiter.js");
  return RedisRateLimiter.open(config.redis, {
    onError: (error) => logger?.warn({ err: error }, "the Redis connection failed; reconnecting"),
  });
}
