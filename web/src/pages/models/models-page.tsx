import { useRoute } from "preact-iso";
import { ModelCard } from "./model-card.js";
import { ModelsOverview } from "./models-overview.js";
import "./models.css";

/** `/models`: the fork tree and every model; `/models/:ref` (preact-iso decodes the ref): one model's card. */
export function ModelsPage() {
  const { params } = useRoute();
  const ref = params["ref"];
  return ref ? <ModelCard key={ref} reference={ref} /> : <ModelsOverview />;
}
