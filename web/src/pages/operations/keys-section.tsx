import { useEffect, useRef, useState } from "preact/hooks";
import { sendJson } from "../../api.js";
import { formatCount, formatDateTime, formatUsd } from "../../format.js";
import { KeyForm } from "./key-form.js";
import { NewSecret } from "./new-secret.js";
import type { CreatedKey, KeysAnswer, KeyView } from "./operations-api.js";
import type { JsonResource } from "./use-json.js";

export interface KeysSectionProps {
  /** `GET /api/keys`, loaded by the page (the usage tables name keys with it too). */
  readonly keys: JsonResource<KeysAnswer>;
}

/** The keys: a list with their limits and spend, a form to create one, and revoking. */
export function KeysSection({ keys }: KeysSectionProps) {
  const [created, setCreated] = useState<CreatedKey>();
  return (
    <section aria-labelledby="keys-heading">
      <h2 id="keys-heading">Keys</h2>
      {created ? (
        <NewSecret created={created} onDismiss={() => setCreated(undefined)} />
      ) : (
        <KeyForm onCreated={(key) => { setCreated(key); keys.reload(); }} />
      )}
      {keys.error && <p class="error" role="alert">{keys.error}</p>}
      <KeyTable keys={keys.data?.keys} onRevoked={keys.reload} />
    </section>
  );
}

function limitsOf(key: KeyView): string {
  const parts = [
    key.limits.rpm !== undefined && `${formatCount(key.limits.rpm)} req/min`,
    key.limits.tpm !== undefined && `${formatCount(key.limits.tpm)} tokens/min`,
    key.limits.concurrency !== undefined && `${key.limits.concurrency} at once`,
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(", ") : "none";
}

function budgetOf(key: KeyView): string {
  const { budgetTokens, budgetUsd, period } = key.limits;
  if (budgetTokens === undefined && budgetUsd === undefined) return "none";
  const spent = key.budget;
  const parts = [
    budgetTokens !== undefined && `${formatCount(spent?.spentTokens ?? 0)} of ${formatCount(budgetTokens)} tokens`,
    budgetUsd !== undefined && `${formatUsd(spent?.spentUsd ?? 0)} of ${formatUsd(budgetUsd)}`,
  ].filter(Boolean);
  return `${parts.join(", ")} this ${period ?? "month"}`;
}

function statusOf(key: KeyView): string {
  if (key.status === "revoked" && key.revokedAt) return `revoked ${formatDateTime(key.revokedAt)}`;
  return key.status;
}

interface KeyTableProps {
  readonly keys: KeyView[] | undefined;
  readonly onRevoked: () => void;
}

function KeyTable({ keys, onRevoked }: KeyTableProps) {
  if (keys === undefined) return null;
  if (keys.length === 0) return <p class="muted">No keys yet: the API is open to anyone who can reach it. Create an admin key first.</p>;
  return (
    <div class="table-wrap">
      <table class="data keys">
        <caption class="visually-hidden">API keys</caption>
        <thead>
          <tr>
            <th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Scope</th><th scope="col">Limits</th>
            <th scope="col">Budget and spend</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Status</th>
            <th scope="col"><span class="visually-hidden">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {keys.map((key) => <KeyRow key={key.id} apiKey={key} onRevoked={onRevoked} />)}
        </tbody>
      </table>
    </div>
  );
}

interface KeyRowProps {
  readonly apiKey: KeyView;
  readonly onRevoked: () => void;
}

/** One key; Revoke asks for a confirmation in the row before it calls the server. */
function KeyRow({ apiKey: key, onRevoked }: KeyRowProps) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string>();
  const label = key.name || key.prefix;
  // Keyboard users land on the confirmation, and back on Revoke when they cancel.
  const confirmButton = useRef<HTMLButtonElement>(null);
  const revokeButton = useRef<HTMLButtonElement>(null);
  const wasConfirming = useRef(false);
  useEffect(() => {
    if (confirming) confirmButton.current?.focus();
    else if (wasConfirming.current) revokeButton.current?.focus();
    wasConfirming.current = confirming;
  }, [confirming]);
  const revoke = async () => {
    try {
      await sendJson("POST", `/api/keys/${encodeURIComponent(key.id)}/revoke`);
      setConfirming(false);
      onRevoked();
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    }
  };
  return (
    <tr class={key.status === "active" ? undefined : "inactive"}>
      <th scope="row">{key.name || <span class="muted">(no name)</span>}</th>
      <td><code>{key.prefix}…</code></td>
      <td>{[key.admin ? "admin" : undefined, key.models?.join(", ") ?? "all models"].filter(Boolean).join("; ")}</td>
      <td>{limitsOf(key)}</td>
      <td>{budgetOf(key)}</td>
      <td>{formatDateTime(key.createdAt)}</td>
      <td>{key.expiresAt ? formatDateTime(key.expiresAt) : "never"}</td>
      <td>{statusOf(key)}</td>
      <td>
        {key.status === "active" && !confirming && (
          <button type="button" class="danger" ref={revokeButton} aria-label={`Revoke ${label}`} onClick={() => setConfirming(true)}>Revoke</button>
        )}
        {confirming && (
          <span class="confirm" role="group" aria-label={`Confirm revoking ${label}`}>
            Requests with it will be refused.{" "}
            <button type="button" class="danger" ref={confirmButton} onClick={() => void revoke()}>Yes, revoke {label}</button>{" "}
            <button type="button" onClick={() => setConfirming(false)}>Cancel</button>
          </span>
        )}
        {error && <span class="error" role="alert">{error}</span>}
      </td>
    </tr>
  );
}
