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

/**
 * The types made for an importance matrix (`--imatrix`), with their `llama_ftype` values. The
 * i-quants and Q2_K_S; llama.cpp refuses those in {@link REQUIRES_IMATRIX} without a matrix
 * and quantizes the others less well without one.
 */
export const IMATRIX_QUANTIZE_TYPES = Object.freeze({
  IQ4_XS: 30,
  IQ4_NL: 25,
  IQ3_M: 27,
  IQ3_XXS: 23,
  IQ2_M: 29,
  IQ2_S: 28,
  IQ2_XS: 20,
  IQ2_XXS: 19,
  Q2_K_S: 21,
  IQ1_M: 31,
  IQ1_S: 24,
} as const);

/** A type of the ladder, e.g. `Q4_K_M`. */
export type LadderType = keyof typeof QUANTIZE_TYPES;

/** A quantization type name, e.g. `Q4_K_M` or `IQ2_XS`. */
export type QuantizeType = LadderType | keyof typeof IMATRIX_QUANTIZE_TYPES;

/** The ladder's type names, highest precision first. */
export const QUANTIZE_TYPE_NAMES = Object.keys(QUANTIZE_TYPES) as LadderType[];

/** The importance-matrix type names. */
export const IMATRIX_QUANTIZE_TYPE_NAMES = Object.keys(IMATRIX_QUANTIZE_TYPES) as QuantizeType[];

/** Types llama.cpp will not make without an importance matrix (llama-quantize's list). */
export const REQUIRES_IMATRIX: ReadonlySet<QuantizeType> = new Set<QuantizeType>(["IQ1_S", "IQ1_M", "IQ2_S", "IQ2_XXS", "IQ2_XS", "Q2_K_S"]);

/** The `llama_ftype` of a type. */
export function ftypeOf(type: QuantizeType): number {
  return type in QUANTIZE_TYPES ? QUANTIZE_TYPES[type as LadderType] : IMATRIX_QUANTIZE_TYPES[type as keyof typeof IMATRIX_QUANTIZE_TYPES];
}

/**
 * Parses a type name, case-insensitively (`q4_k_m` → `Q4_K_M`).
 * @throws InvalidRequestError listing the valid names
 */
export function parseQuantizeType(name: string): QuantizeType {
  const upper = name.trim().toUpperCase();
  if (Object.hasOwn(QUANTIZE_TYPES, upper) || Object.hasOwn(IMATRIX_QUANTIZE_TYPES, upper)) return upper as QuantizeType;
  throw new InvalidRequestError(
    `Unknown quantization type '${name}'; valid types: ${QUANTIZE_TYPE_NAMES.join(", ")}, and with --imatrix: ${IMATRIX_QUANTIZE_TYPE_NAMES.join(", ")}`,
    { param: "type" },
  );
}
