import { useCallback, useMemo } from "preact/hooks";
import { AliasesSection } from "./aliases-section.js";
import { shortDigest } from "../../format.js";
import { KeysSection } from "./keys-section.js";
import { LoadedSection } from "./loaded-section.js";
import { namesByDigest, type KeysAnswer, type ModelsAnswer } from "./operations-api.js";
import { UsageSection } from "./usage-section.js";
import { useJson } from "./use-json.js";
import "./operations.css";

/**
 * What an operator watches: usage over time, keys, loaded models and aliases. Every part is an
 * admin API, so when the server has keys and none (or no admin one) was entered, the page shows
 * the server's 401/403 once instead of four failing sections.
 */
export function OperationsPage() {
  const keys = useJson<KeysAnswer>("/api/keys");
  const models = useJson<ModelsAnswer>("/v1/models");
  const names = useMemo(() => namesByDigest(models.data), [models.data]);
  const keysById = useMemo(() => new Map((keys.data?.keys ?? []).map((key) => [key.id, key])), [keys.data]);

  const modelLabel = useCallback((digest: string) => names.get(digest) ?? (digest ? shortDigest(digest) : "(no model)"), [names]);
  const keyLabel = useCallback((id: string) => {
    if (id === "-") return "no key";
    if (id === "api-key") return "--api-key";
    const key = keysById.get(id);
    return key ? `${key.name || "(no name)"} (${key.prefix}…)` : id;
  }, [keysById]);

  // Only a first load that is refused hides the page: after the first key is made (which closes an
  // open server) the secret just shown must stay, and the keys section says why its list failed.
  const denied = keys.data === undefined && (keys.status === 401 || keys.status === 403);
  return (
    <main class="page operations">
      <h1>Operations</h1>
      {denied && (
        <p class="error" role="alert">
          {keys.error}
          {keys.status === 403 && " — this page needs an admin key"}
        </p>
      )}
      {!denied && (keys.data !== undefined || keys.error !== undefined) && (
        <>
          <UsageSection modelLabel={modelLabel} keyLabel={keyLabel} />
          <KeysSection keys={keys} />
          <LoadedSection modelLabel={modelLabel} />
          <AliasesSection modelLabel={modelLabel} />
        </>
      )}
    </main>
  );
}
