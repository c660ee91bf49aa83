import { useState } from "preact/hooks";
import type { CreatedKey } from "./operations-api.js";

export interface NewSecretProps {
  readonly created: CreatedKey;
  readonly onDismiss: () => void;
}

/** The secret of a key just made: the server keeps only its hash, so this is the one chance to copy it. */
export function NewSecret({ created, onDismiss }: NewSecretProps) {
  const [copied, setCopied] = useState<"yes" | "failed">();
  const copy = () => {
    navigator.clipboard.writeText(created.secret).then(() => setCopied("yes"), () => setCopied("failed"));
  };
  return (
    <div class="panel new-secret" role="region" aria-labelledby="new-secret-heading">
      <h3 id="new-secret-heading">Secret of key {created.key.name || created.key.prefix}</h3>
      <p><strong>Copy it now: it will not be shown again.</strong> Grove stores only its hash.</p>
      <p class="secret-row">
        <label>Secret
          <input class="secret" readOnly value={created.secret} onFocus={(event) => event.currentTarget.select()} />
        </label>
        <button type="button" onClick={copy}>Copy</button>
        <span role="status">{copied === "yes" ? "Copied" : copied === "failed" ? "Copying failed: select the secret and copy it" : ""}</span>
      </p>
      <button type="button" onClick={onDismiss}>Done</button>
    </div>
  );
}
