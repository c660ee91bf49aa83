import { join } from "node:path";
import { EngineError } from "../../core/errors.js";
import { libllamaDirectory } from "../../native/libllama.js";
import type { ImportanceMatrix } from "./imatrix.js";
import { ftypeOf, type QuantizeType } from "./quantize-types.js";

// Quantization through the shipped libllama (koffi). Its calls are synchronous and a GGML_ASSERT
// aborts the process: call it from the quantize worker (a child process), never in-process.

/** Size of `llama_model_quantize_params` in the shipped llama.cpp (15 fields, ending in `max_buf_size`). */
export const QUANTIZE_PARAMS_SIZE = 64;

interface QuantizeParams {
  nthread: number;
  ftype: number;
  [field: string]: unknown;
}

interface Libllama {
  defaultParams: () => QuantizeParams;
  quantize: (input: string, output: string, params: QuantizeParams) => number;
  // biome-ignore lint/suspicious/noExplicitAny: koffi is untyped
  koffi: any;
}

let loaded: Libllama | undefined;

/**
 * Loads libllama through koffi once, declaring `llama_model_quantize_params` as in this
 * llama.cpp's `include/llama.h`.
 * @throws EngineError when the library is missing or the struct size differs (another llama.cpp)
 */
export async function loadLibllama(): Promise<Libllama> {
  if (loaded !== undefined) return loaded;
  const koffi = (await import("koffi")).default;
  const params = koffi.struct("llama_model_quantize_params", {
    nthread: "int32_t",
    ftype: "int32_t", // enum llama_ftype
    output_tensor_type: "int32_t", // enum ggml_type
    token_embedding_type: "int32_t", // enum ggml_type
    allow_requantize: "bool",
    quantize_output_tensor: "bool",
    only_copy: "bool",
    pure: "bool",
    keep_split: "bool",
    dry_run: "bool",
    imatrix: "void *",
    kv_overrides: "void *",
    tt_overrides: "void *",
    prune_layers: "void *",
    max_buf_size: "size_t",
  });
  const size = koffi.sizeof(params);
  if (size !== QUANTIZE_PARAMS_SIZE) {
    throw new EngineError(
      `llama_model_quantize_params is ${size} bytes as declared, expected ${QUANTIZE_PARAMS_SIZE}: the struct layout does not match this llama.cpp version`,
    );
  }
  const path = join(libllamaDirectory(), "libllama.v0.4.0.so");
  let library;
  try {
    library = koffi.load(path);
  } catch (error) {
    throw new EngineError(`Cannot load ${path}: ${(error as Error).message}`, { cause: error });
  }
  const defaultParams = library.func("llama_model_quantize_params llama_model_quantize_default_params(void)") as () => QuantizeParams;
  const quantize = library.func(
    "uint32_t llama_model_quantize(const char *fname_inp, const char *fname_out, const llama_model_quantize_params *params)",
  ) as (input: string, output: string, params: QuantizeParams) => number;
  koffi.struct("llama_model_imatrix_data", { name: "void *", data: "void *", size: "size_t" });
  loaded = { defaultParams, quantize, koffi };
  return loaded;
}

/**
 * Quantizes `input` to `output` with `llama_model_quantize` in this process (blocking).
 * @throws EngineError when llama.cpp returns non-zero
 */
export async function quantizeWithLibllama(input: string, output: string, type: QuantizeType, threads: number, imatrix?: ImportanceMatrix): Promise<void> {
  const lib = await loadLibllama();
  const params = lib.defaultParams();
  params.ftype = ftypeOf(type);
  params.nthread = threads;
  // Native copies of the matrix and overrides; the references keep them alive through the call.
  const native = imatrix === undefined ? undefined : nativeImatrix(lib.koffi, imatrix);
  if (native !== undefined) {
    params.imatrix = native.entries;
    params.kv_overrides = native.overrides;
  }
  const status = lib.quantize(input, output, params);
  void native?.keepAlive;
  if (status !== 0) throw new EngineError(`llama_model_quantize failed (status ${status}) quantizing to ${type}`);
}

/** `sizeof(struct llama_model_kv_override)`: int tag, char key[128], an 8-aligned 128-byte union. */
const KV_OVERRIDE_SIZE = 264;
const KV_OVERRIDE_VALUE_OFFSET = 136;
const KV_OVERRIDE_TYPE_INT = 0;
const KV_OVERRIDE_TYPE_STR = 3;

/**
 * The importance matrix as `llama_model_imatrix_data[]` (null-terminated) and the metadata
 * llama-quantize records with it (`quantize.imatrix.file`, `.dataset`, `.entries_count`,
 * `.chunks_count`, in its order) as `llama_model_kv_override[]` — so the output matches
 * `llama-quantize --imatrix` byte for byte when given the same file name.
 */
// biome-ignore lint/suspicious/noExplicitAny: koffi is untyped
function nativeImatrix(koffi: any, matrix: ImportanceMatrix): { entries: unknown; overrides: unknown; keepAlive: unknown[] } {
  const keepAlive: unknown[] = [];
  const records: { name: unknown; data: unknown; size: number }[] = [];
  for (const [name, values] of matrix.entries) {
    const nameBytes = Buffer.from(`${name}\0`, "utf8");
    const namePointer = koffi.alloc("uint8_t", nameBytes.length);
    koffi.encode(namePointer, koffi.array("uint8_t", nameBytes.length), nameBytes);
    const dataPointer = koffi.alloc("float", values.length);
    koffi.encode(dataPointer, "float", values, values.length);
    keepAlive.push(namePointer, dataPointer);
    records.push({ name: namePointer, data: dataPointer, size: values.length });
  }
  records.push({ name: null, data: null, size: 0 });
  const entries = koffi.alloc("llama_model_imatrix_data", records.length);
  koffi.encode(entries, koffi.array("llama_model_imatrix_data", records.length), records);

  const overrides: { key: string; int?: number; text?: string }[] = [{ key: "quantize.imatrix.file", text: matrix.file }];
  if (matrix.datasets.length > 0) overrides.push({ key: "quantize.imatrix.dataset", text: matrix.datasets[0]! });
  overrides.push({ key: "quantize.imatrix.entries_count", int: matrix.entries.size });
  if (matrix.chunkCount > 0) overrides.push({ key: "quantize.imatrix.chunks_count", int: matrix.chunkCount });
  const block = Buffer.alloc(KV_OVERRIDE_SIZE * (overrides.length + 1)); // the zeroed last entry ends the list
  overrides.forEach((override, index) => {
    const at = index * KV_OVERRIDE_SIZE;
    block.writeInt32LE(override.text === undefined ? KV_OVERRIDE_TYPE_INT : KV_OVERRIDE_TYPE_STR, at);
    block.write(override.key, at + 4, 127, "utf8");
    if (override.text === undefined) block.writeBigInt64LE(BigInt(override.int ?? 0), at + KV_OVERRIDE_VALUE_OFFSET);
    else block.write(override.text.slice(0, 127), at + KV_OVERRIDE_VALUE_OFFSET, 127, "utf8"); // strncpy(…, 127)
  });
  const overridePointer = koffi.alloc("uint8_t", block.length);
  koffi.encode(overridePointer, koffi.array("uint8_t", block.length), block);
  keepAlive.push(entries, overridePointer);
  return { entries, overrides: overridePointer, keepAlive };
}
