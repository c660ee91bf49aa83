import type { Engine } from "../../engine/engine.js";
import type { ModelCatalog } from "../../serving/model-catalog.js";
import type { ModelPool } from "../../serving/model-pool.js";
import type { HubClient } from "../../store/hub/hub-client.js";
import type { ModelStore } from "../../store/model-store.js";

/** What the Ollama-compatible routes need. */
export interface OllamaServices {
  readonly engine: Engine;
  readonly catalog: ModelCatalog;
  /** The store behind `/api/pull` and the facts of `/api/tags` and `/api/show`; without it `/api/pull` answers 409. */
  readonly store?: ModelStore;
  /** The hub `/api/pull` downloads from; without it `/api/pull` answers 409. */
  readonly hub?: HubClient;
  /** The loaded store models' memory and keep-alive, for `/api/ps` (absent with one `--model FILE`). */
  readonly pool?: ModelPool;
}
