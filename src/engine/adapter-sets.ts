import { EngineError } from "../core/errors.js";
import { loadAdapter, type NativeContext, type NativeModel } from "../native/native-model.js";
import { adapterSetKey, type AdapterUse } from "./decode-protocol.js";

/**
 * The LoRA adapters loaded on a decode thread's model, and the one set its context applies now.
 * llama.cpp applies one adapter set to a whole `llama_decode` (`llama_set_adapters_lora` on the
 * context), so the loop decodes the slots of one set per step ({@link nextAdapterTurn}), as
 * llama-server batches only slots whose `lora` config is equal (`can_batch_with`). Each adapter
 * file is loaded once (`llama_adapter_lora_init`) however many generations use it; its memory is
 * the size of its tensors, on top of the base's shared weights, KV cache and compute buffers.
 */
export class AdapterSets {
  readonly #model: NativeModel;
  readonly #loaded = new Map<string, unknown>();
  /** Adapters asked to be freed while a generation still used them: freed by {@link collect}. */
  readonly #dropping = new Set<string>();
  /** The set the context applies now (its {@link adapterSetKey}); undefined: unknown, set it before the next decode. */
  #applied: string | undefined = "";

  constructor(model: NativeModel) {
    this.#model = model;
  }

  /** Loads an adapter file under `key` (again: nothing to do). @throws EngineError when llama.cpp refuses the file */
  load(key: string, path: string): void {
    this.#dropping.delete(key);
    if (!this.#loaded.has(key)) this.#loaded.set(key, loadAdapter(this.#model, path));
  }

  /** The keys of a set that are not loaded (or are being dropped), for a clear failure before a job starts. */
  missing(set: readonly AdapterUse[]): string[] {
    return set.filter((adapter) => !this.#loaded.has(adapter.key) || this.#dropping.has(adapter.key)).map((adapter) => adapter.key);
  }

  /** Frees an adapter now, or once `inUse(key)` turns false ({@link collect}). */
  drop(key: string, inUse: (key: string) => boolean): void {
    if (!this.#loaded.has(key)) return;
    this.#dropping.add(key);
    this.collect(inUse);
  }

  /** Frees the adapters waiting to be dropped that no generation uses any more. */
  collect(inUse: (key: string) => boolean): void {
    for (const key of [...this.#dropping]) {
      if (inUse(key)) continue;
      this.#dropping.delete(key);
      const handle = this.#loaded.get(key);
      this.#loaded.delete(key);
      // The context must not keep a freed adapter in its set: it would be read by the next decode.
      if (this.#applied !== "") this.#applied = undefined;
      this.#model.lib.fn.llama_adapter_lora_free!(handle);
    }
  }

  /** Makes the context apply `set` (only when it differs from the set it applies now). */
  apply(context: NativeContext, set: readonly AdapterUse[]): void {
    const key = adapterSetKey(set);
    if (key === this.#applied) return;
    const used = set.filter((adapter) => adapter.scale !== 0);
    const handles = used.map((adapter) => {
      const handle = this.#loaded.get(adapter.key);
      if (handle === undefined) throw new EngineError("A LoRA adapter of this generation is not loaded");
      return handle;
    });
    context.setAdapters(handles, used.map((adapter) => adapter.scale));
    this.#applied = key;
  }

  /** Every loaded adapter's key. */
  get keys(): string[] {
    return [...this.#loaded.keys()];
  }
}

/**
 * Which adapter set decodes next. A set keeps its turn while it has work, for at least `turnMs`
 * (each change of set makes llama.cpp re-reserve its compute graph: measured 1.7 ms on the `small`
 * model, more than its decode step); then the first of the other sets with work (by name) after
 * it, wrapping around — so with k sets waiting each gets one turn in k and none starves, however
 * many slots the others hold. One set alone always has the turn.
 */
export class AdapterTurns {
  readonly #turnMs: number;
  #current: string | undefined;
  #since = 0;

  constructor(turnMs: number) {
    this.#turnMs = turnMs;
  }

  /** The set to decode in this step, among `sets` (the sets of the jobs with work); `now` in ms. */
  next(sets: Iterable<string>, now: number): string | undefined {
    const sorted = [...new Set(sets)].sort();
    if (sorted.length === 0) return undefined;
    const current = this.#current;
    if (current !== undefined && sorted.includes(current) && (sorted.length === 1 || now - this.#since < this.#turnMs)) return current;
    const next = current === undefined ? sorted[0]! : (sorted.find((set) => set > current) ?? sorted[0]!);
    if (next !== current) this.#since = now;
    this.#current = next;
    return next;
  }
}
