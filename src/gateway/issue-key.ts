import { generateSecret } from "./api-key.js";
import type { KeyOptions } from "./key-options.js";
import type { BudgetState, KeyRecord, ServiceStore } from "./service-store.js";

/** A key just created, with its secret: the only time the secret exists outside the client. */
export interface IssuedKey {
  readonly key: KeyRecord;
  readonly secret: string;
}

/** Generates a secret, stores its hash with the key's settings, and returns both. */
export async function issueKey(store: ServiceStore, options: KeyOptions, now: Date): Promise<IssuedKey> {
  const { secret, hash, prefix } = generateSecret();
  const key = await store.createKey(
    {
      name: options.name,
      secretHash: hash,
      prefix,
      admin: options.admin,
      ...(options.models === undefined ? {} : { models: options.models }),
      ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
      limits: options.limits,
    },
    now,
  );
  return { key, secret };
}

/** Whether a key works now. */
export type KeyStatus = "active" | "revoked" | "expired";

/** A key as `grove keys list` and `GET /api/keys` show it: its record, status and current budget. */
export interface KeyView extends KeyRecord {
  readonly status: KeyStatus;
  /** The current period's spend, for keys with a budget. */
  readonly budget?: BudgetState;
}

/** The status of a key at `now`. */
export function keyStatus(key: KeyRecord, now: Date): KeyStatus {
  if (key.revokedAt !== undefined) return "revoked";
  if (key.expiresAt !== undefined && new Date(key.expiresAt) <= now) return "expired";
  return "active";
}

/** Every key with its status and budget. */
export async function listKeyViews(store: ServiceStore, now: Date): Promise<KeyView[]> {
  const keys = await store.listKeys();
  return Promise.all(keys.map((key) => keyView(store, key, now)));
}

/** One key with its status and budget. */
export async function keyView(store: ServiceStore, key: KeyRecord, now: Date): Promise<KeyView> {
  const budgeted = key.limits.budgetTokens !== undefined || key.limits.budgetUsd !== undefined;
  return {
    ...key,
    status: keyStatus(key, now),
    ...(budgeted ? { budget: await store.budgetState(key.id, key.limits, now) } : {}),
  };
}

/** Key ids as Grove makes them: `key_` and 16 hex digits. */
export const KEY_ID_PATTERN = /^key_[0-9a-f]{16}$/;
