import type { JSX } from "preact";
import { useState } from "preact/hooks";

/**
 * The projections a LoRA adapter can target and LoRA's defaults, as the server has them:
 * src/forge/finetune/finetune-job.ts (LORA_TARGETS, LORA_DEFAULTS).
 */
export const LORA_TARGETS = ["q", "k", "v", "o", "gate", "up", "down"] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];
const LORA_DEFAULTS = { rank: "8", alpha: "16", dropout: "0.05" };

/** What the fine-tune request's `lora` carries. */
export interface LoraSettings {
  rank: number;
  alpha: number;
  dropout: number;
  targets: LoraTarget[];
}

/** Reads a number field: undefined when blank, else checked against `valid` with `message`. */
export function readNumber(text: string, valid: (value: number) => boolean, message: string): number | undefined {
  if (text.trim() === "") return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || !valid(value)) throw new Error(message);
  return value;
}

/**
 * The fine-tune form's LoRA part: a checkbox that reveals rank, alpha, dropout and the target
 * projections, all filled with the server's defaults. `read()` gives the settings (undefined
 * when LoRA is off) or throws naming the field at fault.
 */
export function useLoraFields(): { fields: JSX.Element; read(): LoraSettings | undefined } {
  const [enabled, setEnabled] = useState(false);
  const [rank, setRank] = useState(LORA_DEFAULTS.rank);
  const [alpha, setAlpha] = useState(LORA_DEFAULTS.alpha);
  const [dropout, setDropout] = useState(LORA_DEFAULTS.dropout);
  const [targets, setTargets] = useState<readonly LoraTarget[]>(LORA_TARGETS);
  const read = (): LoraSettings | undefined => {
    if (!enabled) return undefined;
    const settings = {
      rank: readNumber(rank, (value) => Number.isInteger(value) && value >= 1 && value <= 256, "LoRA rank must be a whole number from 1 to 256"),
      alpha: readNumber(alpha, (value) => value > 0 && value <= 4096, "LoRA alpha must be a number above 0 and at most 4096"),
      dropout: readNumber(dropout, (value) => value >= 0 && value < 1, "LoRA dropout must be a number from 0 up to (not including) 1"),
    };
    if (targets.length === 0) throw new Error("Choose at least one projection for LoRA to adapt");
    return {
      rank: settings.rank ?? Number(LORA_DEFAULTS.rank),
      alpha: settings.alpha ?? Number(LORA_DEFAULTS.alpha),
      dropout: settings.dropout ?? Number(LORA_DEFAULTS.dropout),
      targets: LORA_TARGETS.filter((target) => targets.includes(target)),
    };
  };
  const toggle = (target: LoraTarget, on: boolean) => setTargets((current) => (on ? [...current, target] : current.filter((entry) => entry !== target)));
  const fields = (
    <div class="lora">
      <label class="check">
        <input type="checkbox" checked={enabled} onChange={(event) => setEnabled(event.currentTarget.checked)} />
        LoRA: train small adapters, the base model frozen
      </label>
      {enabled && (
        <div class="inline-fields">
          <label class="field">LoRA rank
            <input inputMode="numeric" value={rank} onInput={(event) => setRank(event.currentTarget.value)} />
          </label>
          <label class="field">LoRA alpha
            <input inputMode="decimal" value={alpha} onInput={(event) => setAlpha(event.currentTarget.value)} />
          </label>
          <label class="field">LoRA dropout
            <input inputMode="decimal" value={dropout} onInput={(event) => setDropout(event.currentTarget.value)} />
          </label>
          <fieldset class="targets">
            <legend>Target projections (attention q k v o, MLP gate up down)</legend>
            {LORA_TARGETS.map((target) => (
              <label key={target} class="check">
                <input type="checkbox" checked={targets.includes(target)} onChange={(event) => toggle(target, event.currentTarget.checked)} />
                {target}
              </label>
            ))}
          </fieldset>
        </div>
      )}
    </div>
  );
  return { fields, read };
}
