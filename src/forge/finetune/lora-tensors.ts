import { EngineError } from "../../core/errors.js";
import type { ValidatedTensor } from "../../gguf/gguf-tensor-layout.js";
import { SeededRandom } from "../generate/seeded-random.js";
import type { Ggml, Shape } from "./ggml-graph-types.js";
import { fillDropoutMask, initializeLoraA, LORA_TARGET_TENSORS, readLoraAdapter, type LoraPair, type LoraSettings, type LoraTarget } from "./lora.js";

const GGML_TYPE_F32 = 0;

/**
 * Seed of A's initialisation and of the dropout masks: fixed, so a recipe rebuilds the same
 * adapter (the masks of step s of epoch e are the same on every run, resumed or not).
 */
const LORA_SEED = 0;

/** One adapted projection's tensors in the training graph. */
export interface LoraBranch {
  a: unknown;
  b: unknown;
  /** The dropout mask of this target's input, shared by every block; absent without dropout. */
  mask?: unknown;
  inputs: number;
  outputs: number;
}

/** The LoRA tensors of a training graph and what the trainer does with them. */
export interface LoraTensors {
  /** By base tensor name (`blk.N.attn_q.weight`). */
  pairs: Map<string, LoraBranch>;
  /** After allocation: A from PEFT's init (or the checkpoint), B zero (or the checkpoint); marks both as the graph's only parameters. */
  initialize(checkpoint: string | undefined): Promise<void>;
  /** Writes step `step` of `epoch`'s dropout masks; `step` undefined (validation): all ones. */
  drawMasks(epoch: number, step: number | undefined): void;
  /** The trained A and B values, for the adapter file. */
  read(): LoraPair[];
}

/**
 * Creates (unallocated, in `context`) an F32 A [n_in, r] and B [r, n_out] for each targeted
 * projection of each block, and one dropout mask [n_in, n_ctx] per target. Simplification of
 * PEFT's dropout: PEFT draws an independent mask for each adapted module; here the blocks share
 * one mask per target per step (q, k, v, o, gate, up and down still differ), which keeps the
 * masks at a few MB for a 1B model.
 */
export function createLoraTensors(g: Ggml, context: unknown, lora: LoraSettings, shape: Shape, tensors: Map<string, ValidatedTensor>, contextSize: number): LoraTensors {
  const pairs = new Map<string, LoraBranch>();
  const masks = new Map<LoraTarget, { tensor: unknown; values: Float32Array }>();
  for (const target of lora.targets) {
    for (let block = 0; block < shape.blocks; block++) {
      const name = `blk.${block}.${LORA_TARGET_TENSORS[target]}.weight`;
      const base = tensors.get(name);
      if (base === undefined || base.shape.length !== 2) throw new EngineError(`LoRA target '${target}' needs ${name}, a matrix; the model has none`);
      const [inputs, outputs] = base.shape as [number, number];
      let mask = masks.get(target);
      if (mask === undefined && lora.dropout > 0) {
        const tensor = g.ggml_new_tensor_2d!(context, GGML_TYPE_F32, inputs, contextSize);
        g.ggml_set_name!(tensor, `lora_dropout.${target}`);
        g.ggml_set_input!(tensor);
        mask = { tensor, values: new Float32Array(inputs * contextSize) };
        masks.set(target, mask);
      }
      const a = g.ggml_new_tensor_2d!(context, GGML_TYPE_F32, inputs, lora.rank);
      const b = g.ggml_new_tensor_2d!(context, GGML_TYPE_F32, lora.rank, outputs);
      g.ggml_set_name!(a, `${name}.lora_a`);
      g.ggml_set_name!(b, `${name}.lora_b`);
      pairs.set(name, { a, b, inputs, outputs, ...(mask === undefined ? {} : { mask: mask.tensor }) });
    }
  }
  return {
    pairs,
    async initialize(checkpoint) {
      const saved = checkpoint === undefined ? undefined : await readLoraAdapter(checkpoint, lora.rank);
      for (const [name, branch] of pairs) {
        const stored = saved?.get(name);
        if (saved !== undefined && stored === undefined) throw new EngineError(`The adapter checkpoint ${checkpoint} has no ${name} pair`);
        const a = stored?.a ?? new Float32Array(branch.inputs * lora.rank);
        if (stored === undefined) initializeLoraA(a, branch.inputs, LORA_SEED, `${name}.lora_a`);
        const b = stored?.b ?? new Float32Array(lora.rank * branch.outputs);
        g.ggml_backend_tensor_set!(branch.a, a, 0, a.byteLength);
        g.ggml_backend_tensor_set!(branch.b, b, 0, b.byteLength);
        g.ggml_set_param!(branch.a);
        g.ggml_set_param!(branch.b);
      }
    },
    drawMasks(epoch, step) {
      if (masks.size === 0) return;
      const random = step === undefined ? undefined : new SeededRandom(LORA_SEED, `dropout ${epoch} ${step}`);
      for (const mask of masks.values()) {
        if (random === undefined) mask.values.fill(1);
        else fillDropoutMask(mask.values, lora.dropout, random);
        g.ggml_backend_tensor_set!(mask.tensor, mask.values, 0, mask.values.byteLength);
      }
    },
    read() {
      return [...pairs].map(([name, branch]) => {
        const a = new Float32Array(branch.inputs * lora.rank);
        const b = new Float32Array(lora.rank * branch.outputs);
        g.ggml_backend_tensor_get!(branch.a, a, 0, a.byteLength);
        g.ggml_backend_tensor_get!(branch.b, b, 0, b.byteLength);
        return { name, inputs: branch.inputs, outputs: branch.outputs, a, b };
      });
    },
  };
}
