/** The shapes of the admin API answers the Operations page reads (see src/server/routes/). */

/** One group of `GET /api/usage?by=…[&split=…]`. */
export interface UsageGroup {
  /** Model digest, key id (`-`: no key), UTC day `YYYY-MM-DD` or UTC hour `YYYY-MM-DDTHH`. */
  group: string;
  /** With `split`: the model digest or key id within the group. */
  split?: string;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  errors: number;
}

export interface UsageGroups {
  groups: UsageGroup[];
}

export interface PricesAnswer {
  prices: { modelDigest: string }[];
}

/** `GET /v1/models`: the served names, each with the digest it serves. */
export interface ModelsAnswer {
  data: { id: string; digest?: string; alias?: unknown }[];
}

export interface BudgetState {
  periodStart: string;
  spentTokens: number;
  reservedTokens: number;
  spentUsd: number;
  reservedUsd: number;
}

/** A key of `GET /api/keys` (never its secret). */
export interface KeyView {
  id: string;
  name: string;
  prefix: string;
  admin: boolean;
  models?: string[];
  expiresAt?: string;
  createdAt: string;
  revokedAt?: string;
  status: "active" | "revoked" | "expired";
  limits: { rpm?: number; tpm?: number; concurrency?: number; budgetTokens?: number; budgetUsd?: number; period?: "day" | "month" };
  budget?: BudgetState;
}

export interface KeysAnswer {
  keys: KeyView[];
}

/** `POST /api/keys`: the key and its secret, shown this once. */
export interface CreatedKey {
  key: KeyView;
  secret: string;
}

/** A model of `GET /api/loaded`. */
export interface LoadedModel {
  id: string;
  digest: string;
  state: string;
  /** null on a server of one `--model FILE` (no pool, no estimate). */
  estimateBytes: number | null;
  contextSize: number | null;
  slotsBusy: number;
  slotsTotal: number;
  queued: number;
  idleSeconds?: number;
}

export interface LoadedAnswer {
  budgetBytes: number;
  usedBytes?: number;
  models: LoadedModel[];
}

export interface AliasTarget {
  digest: string;
  weight: number;
  names: string[];
  share: number;
}

export interface AliasView {
  name: string;
  targets: AliasTarget[];
}

export interface AliasesAnswer {
  aliases: AliasView[];
}

export interface AliasScore {
  task: string;
  metric: string;
  current: number | null;
  candidate: number | null;
  regression: number | null;
  /** Standard error of the difference; absent in older entries. */
  standardError?: number | null;
  /** `regressed`, `improved`, `within noise` (never called either), `ok`, `no score`; absent in older entries. */
  verdict?: "regressed" | "improved" | "within noise" | "ok" | "no score";
}

/** One entry of `GET /api/aliases/:name/history`. */
export interface AliasEvent {
  id: number;
  at: string;
  action: "set" | "remove" | "migrate" | "rollback";
  from: { digest: string; weight: number }[];
  to: { digest: string; weight: number }[];
  tasks: string[];
  scores: AliasScore[];
  decision: "applied" | "refused";
  reason: string;
}

export interface HistoryAnswer {
  history: AliasEvent[];
}

/** Served model names by digest (the first name each digest is served under; aliases skipped). */
export function namesByDigest(models: ModelsAnswer | undefined): Map<string, string> {
  const names = new Map<string, string>();
  for (const model of models?.data ?? []) {
    if (model.digest && model.alias === undefined && !names.has(model.digest)) names.set(model.digest, model.id);
  }
  return names;
}
