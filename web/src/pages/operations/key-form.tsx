import { useState } from "preact/hooks";
import { sendJson } from "../../api.js";
import type { CreatedKey } from "./operations-api.js";

export interface KeyFormProps {
  /** Called with the new key and its secret. */
  readonly onCreated: (created: CreatedKey) => void;
}

/** The body of `POST /api/keys`: empty fields are left out, the server validates the rest. */
function keyBody(form: HTMLFormElement): Record<string, unknown> {
  const fields = new FormData(form);
  const text = (name: string) => String(fields.get(name) ?? "").trim();
  const body: Record<string, unknown> = { name: text("name"), admin: fields.get("admin") === "on" };
  for (const field of ["models", "rpm", "budget_tokens", "expires"]) {
    if (text(field) !== "") body[field] = text(field);
  }
  if (body["budget_tokens"] !== undefined) body["period"] = text("period");
  return body;
}

/** Creates a key: name, models it may use, requests per minute, token budget, expiry, admin. */
export function KeyForm({ onCreated }: KeyFormProps) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    setBusy(true);
    setError(undefined);
    try {
      onCreated(await sendJson<CreatedKey>("POST", "/api/keys", keyBody(form)));
      form.reset();
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="inline panel key-form" onSubmit={submit} aria-labelledby="new-key-heading">
      <h3 id="new-key-heading">New key</h3>
      <label>Name<input name="name" required maxLength={100} autocomplete="off" /></label>
      <label>Models<input name="models" placeholder="all models" aria-describedby="models-help" autocomplete="off" /></label>
      <span id="models-help" class="visually-hidden">Names or aliases, comma-separated; empty for every model</span>
      <label>Requests per minute<input name="rpm" type="number" min="1" step="1" inputMode="numeric" /></label>
      <label>Token budget<input name="budget_tokens" type="number" min="1" step="1" inputMode="numeric" /></label>
      <label>Budget period
        <select name="period"><option value="month">month</option><option value="day">day</option></select>
      </label>
      <label>Expires in<input name="expires" placeholder="never (or 30d, 2w, 2030-01-31)" autocomplete="off" /></label>
      <label class="check"><input name="admin" type="checkbox" />Admin</label>
      <button type="submit" disabled={busy}>{busy ? "Creating…" : "Create key"}</button>
      {error && <p class="error" role="alert">{error}</p>}
    </form>
  );
}
