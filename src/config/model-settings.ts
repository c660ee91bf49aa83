/** Serving settings of one model, as `--model-settings` gives them; an absent field takes the global flag. */
export interface ModelSetting {
  /** The store name (or digest) the setting is for, as written. */
  readonly name: string;
  /** Context tokens per slot for this model (the global `--ctx-size` when absent). */
  readonly contextSize?: number;
  /** Parallel slots for this model (the global `--parallel` when absent). */
  readonly slots?: number;
}

/** The keys of one entry and the range each accepts (the same as `--ctx-size` and `--parallel`). */
const KEYS = {
  ctx: { field: "contextSize", min: 64, max: 1_048_576 },
  slots: { field: "slots", min: 1, max: 64 },
} as const;

/**
 * Parses `--model-settings` / `GROVE_MODEL_SETTINGS`: entries `NAME=KEY:VALUE,KEY:VALUE`
 * separated by `;`, keys `ctx` (context tokens per slot) and `slots`. The name is everything
 * before the first `=`, so tags with `:` work. Empty text means no per-model settings.
 *
 * @example parseModelSettings("demo-s-chat:f16=ctx:1024,slots:8;other:q4=ctx:8192,slots:2")
 * @throws Error with a message naming the bad entry (config.ts adds the flag and variable)
 */
export function parseModelSettings(text: string): ModelSetting[] {
  const settings: ModelSetting[] = [];
  for (const raw of text.split(";")) {
    const entry = raw.trim();
    if (entry === "") continue;
    const equals = entry.indexOf("=");
    const name = equals < 0 ? "" : entry.slice(0, equals).trim();
    if (name === "") throw new Error(`entry '${entry}' must be NAME=ctx:N,slots:N`);
    if (settings.some((setting) => setting.name === name)) throw new Error(`'${name}' is given twice`);
    const setting: { name: string; contextSize?: number; slots?: number } = { name };
    for (const pair of entry.slice(equals + 1).split(",")) {
      const [key = "", value = "", ...rest] = pair.trim().split(":");
      const spec = KEYS[key.trim() as keyof typeof KEYS];
      if (spec === undefined) throw new Error(`unknown key '${key.trim()}' for '${name}' (known: ${Object.keys(KEYS).join(", ")})`);
      const number = Number(value.trim());
      if (rest.length > 0 || !/^\d+$/.test(value.trim()) || number < spec.min || number > spec.max) {
        throw new Error(`${key.trim()} of '${name}' must be an integer from ${spec.min} to ${spec.max}, got '${pair.trim().slice(key.length + 1)}'`);
      }
      setting[spec.field] = number;
    }
    settings.push(Object.freeze(setting));
  }
  return settings;
}
