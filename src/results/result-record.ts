import type { Digest } from "../core/digest.js";
import type { ResultKind, ResultRecord } from "../core/wire.js";

export type { ResultKind, ResultRecord } from "../core/wire.js";

/**
 * The key a result is unique under: rerunning the same measurement replaces it. A cost result's
 * machine is part of it, so that replicas on different machines sharing one database keep one
 * result each.
 */
export type ResultKey = Pick<ResultRecord, "modelDigest" | "task" | "taskDigest" | "settings" | "engineVersion" | "machine">;

/** Filters of {@link ResultStore.list}. */
export interface ResultQuery {
  modelDigests?: readonly Digest[];
  task?: string;
  kind?: ResultKind;
}

/** Where results are kept: `<home>/results.db` or the shared PostgreSQL database. */
export interface ResultBackend {
  put(result: ResultRecord): Promise<void>;
  get(key: ResultKey): Promise<ResultRecord | undefined>;
  list(query: ResultQuery): Promise<ResultRecord[]>;
  close(): Promise<void>;
}
