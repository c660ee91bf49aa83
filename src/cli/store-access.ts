import { mkdirSync } from "node:fs";
import { loadConfig } from "../config/config.js";
import type { Digest } from "../core/digest.js";
import { openServiceStore } from "../gateway/open-service-store.js";
import type { ServiceStore } from "../gateway/service-store.js";
import { openResults } from "../results/open-results.js";
import type { ResultStore } from "../results/result-store.js";
import { ModelStore } from "../store/model-store.js";
import type { LineageEdge } from "../store/registry.js";

// How a command reaches the store: the --home and --database flags, opened and closed around one piece of work.

/** The flags that name the store: `--home` and `--database`. */
export interface HomeFlags {
  home?: string;
  /** A shared registry's PostgreSQL URL (`--database`). */
  database?: string;
}

/** The `--home` option every store command takes. */
export const HOME_FLAG = "--home <dir>";

/** Its help text. */
export const HOME_FLAG_HELP = "store directory (env GROVE_HOME; default ~/.grove)";

/** The option naming a registry shared by replicas in PostgreSQL (blobs stay under --home). */
export const DATABASE_FLAG = "--database <url>";

/** Its help text. */
export const REGISTRY_DATABASE_FLAG_HELP = "PostgreSQL URL of the registry shared by replicas; files stay under --home (env GROVE_DATABASE_URL; default <home>/registry.db)";

/**
 * Opens the store at `home` (else `GROVE_HOME`, else `~/.grove`, through the config layer), runs
 * `fn` and closes it, also when `fn` throws. The registry is the shared PostgreSQL one when
 * `--database` (or GROVE_DATABASE_URL) is set.
 */
export async function withStore<T>(home: string | HomeFlags | undefined, fn: (store: ModelStore) => Promise<T>): Promise<T> {
  const flags: HomeFlags = typeof home === "object" ? home : { home };
  const config = loadConfig({ flags: { home: flags.home, database: flags.database } });
  const store = await ModelStore.open(config.home, { database: config.database });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * {@link withStore} with the store's results too: `<home>/results.db`, or the shared PostgreSQL
 * database with `--database`, opened once for the command and closed with the store.
 */
export async function withResults<T>(home: string | HomeFlags | undefined, fn: (store: ModelStore, results: ResultStore) => Promise<T>): Promise<T> {
  const flags: HomeFlags = typeof home === "object" ? home : { home };
  const config = loadConfig({ flags: { home: flags.home, database: flags.database } });
  return withStore(flags, async (store) => {
    const results = await openResults({ home: store.home, database: config.database });
    try {
      return await fn(store, results);
    } finally {
      await results.close();
    }
  });
}

/** Every model's names, by digest. */
export async function namesByDigest(store: ModelStore): Promise<Map<Digest, string[]>> {
  return new Map((await store.list()).map((model) => [model.digest, model.names]));
}

/** A lineage edge seen from one end, with the names of the model at the other end. */
export interface EdgeView {
  /** The model at the other end of the edge: the parent in `parents`, the fork in `children`. */
  digest: Digest;
  names: string[];
  relation: LineageEdge["relation"];
  recipe: LineageEdge["recipe"];
}

/** The help text of `--database` on the key, usage and price commands. */
export const SERVICE_DATABASE_FLAG_HELP = "PostgreSQL URL of the replicas' shared keys and usage (env GROVE_DATABASE_URL; default <home>/service.db)";

/** Where a key, usage or price command finds the service store. */
export interface ServiceStoreFlags {
  home?: string;
  database?: string;
}

/**
 * Opens the service store for one command: PostgreSQL with `--database` (GROVE_DATABASE_URL),
 * else `<home>/service.db` (the server may have it open too: WAL + busy timeout).
 */
export async function withServiceStore<T>(flags: ServiceStoreFlags, fn: (store: ServiceStore) => Promise<T>): Promise<T> {
  const config = loadConfig({ flags: { home: flags.home, database: flags.database } });
  mkdirSync(config.home, { recursive: true });
  const store = await openServiceStore(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
