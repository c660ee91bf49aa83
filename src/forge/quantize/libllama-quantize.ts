import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { EngineError } from "../../core/errors.js";
import { QUANTIZE_TYPES, type QuantizeType } from "./quantize-types.js";

// The only module that loads koffi and libllama. Its calls are synchronous and a GGML_ASSERT
// aborts the process: call it from the quantize worker (a child process), never in-process.

const require = createRequire(import.meta.url);

/** Size of `llama_model_quantize_params` in the shipped llama.cpp (15 fields, ending in `max_buf_size`). */
export const QUANTIZE_PARAMS_SIZE = 64;

/** The directory holding node-llama-cpp's prebuilt CPU libraries (libllama, libggml*). */
export function libllamaDirectory(): string {
  // The package exports only its index (dist/index.js); the binaries lie beside dist/.
  const index = require.resolve("@node-llama-cpp/linux-x64");
  return join(dirname(index), "..", "bins", "linux-x64");
}

interface QuantizeParams {
  nthread: number;
  ftype: number;
  [field: string]: unknown;
}

interface Libllama {
  defaultParams: () => QuantizeParams;
  quantize: (input: string, output: string, params: QuantizeParams) => number;
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
  loaded = { defaultParams, quantize };
  return loaded;
}

/**
 * Quantizes `input` to `output` with `llama_model_quantize` in this process (blocking).
 * @throws EngineError when llama.cpp returns non-zero
 */
export async function quantizeWithLibllama(input: string, output: string, type: QuantizeType, threads: number): Promise<void> {
  const lib = await loadLibllama();
  const params = lib.defaultParams();
  params.ftype = QUANTIZE_TYPES[type];
  params.nthread = threads;
  const status = lib.quantize(input, output, params);
  if (status !== 0) throw new EngineError(`llama_model_quantize failed (status ${status}) quantizing to ${type}`);
}
