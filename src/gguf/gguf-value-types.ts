// The value types of GGUF metadata, for the writer and the byte sink it writes through.

/** Metadata value types of GGUF (`enum gguf_type` in gguf.h), less ARRAY. */
export type GgufScalarType =
  | "uint8"
  | "int8"
  | "uint16"
  | "int16"
  | "uint32"
  | "int32"
  | "float32"
  | "bool"
  | "string"
  | "uint64"
  | "int64"
  | "float64";

/**
 * GGUF value type ids (`enum gguf_type`, the index) to the writer's names; 9 is ARRAY. For
 * copying metadata read by `readGgufHeader` back out through a GgufWriter.
 */
export const GGUF_VALUE_TYPE_NAMES: readonly (GgufScalarType | "array")[] = [
  "uint8",
  "int8",
  "uint16",
  "int16",
  "uint32",
  "int32",
  "float32",
  "bool",
  "string",
  "array",
  "uint64",
  "int64",
  "float64",
];

/** A metadata scalar: numbers for the numeric types (bigint also for 64-bit integers). */
export type GgufScalar = number | bigint | boolean | string;
