import { InvalidRequestError } from "../../core/errors.js";

/**
 * The quantization types Grove offers, mapped to their `llama_ftype` values in this llama.cpp's
 * `include/llama.h` (`LLAMA_FTYPE_MOSTLY_*`). Highest precision first.
 */
export const QUANTIZE_TYPES = Object.freeze({
  F16: 1,
  Q8_0: 7,
  Q6_K: 18,
  Q5_K_M: 17,
  Q5_0: 8,
  Q4_K_M: 15,
  Q4_K_S: 14,
  Q4_0: 2,
  Q3_K_M: 12,
  Q2_K: 10,
} as const);

/** A quantization type name, e.g. `Q4_K_M`. */
export type QuantizeType = keyof typeof QUANTIZE_TYPES;

/** Every type name, highest precision first. */
export const QUANTIZE_TYPE_NAMES = Object.keys(QUANTIZE_TYPES) as QuantizeType[];

/**
 * Parses a type name, case-insensitively (`q4_k_m` → `Q4_K_M`).
 * @throws InvalidRequestError listing the valid names
 */
export function parseQuantizeType(name: string): QuantizeType {
  const upper = name.trim().toUpperCase();
  if (Object.hasOwn(QUANTIZE_TYPES, upper)) return upper as QuantizeType;
  throw new InvalidRequestError(`Unknown quantization type '${name}'; valid types: ${QUANTIZE_TYPE_NAMES.join(", ")}`, { param: "type" });
}
