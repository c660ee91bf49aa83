import type { GgufScalar, GgufScalarType } from "./gguf-value-types.js";

/** A growable little-endian byte buffer for GGUF headers, with GGUF's string and scalar encodings. */
export class ByteSink {
  #buffer = Buffer.alloc(1 << 16);
  #length = 0;

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  /** Reserves `bytes` and returns where they start; may replace `#buffer`, so call it first. */
  #reserve(bytes: number): number {
    if (this.#length + bytes > this.#buffer.length) {
      const grown = Buffer.alloc(Math.max(this.#buffer.length * 2, this.#length + bytes));
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    const at = this.#length;
    this.#length += bytes;
    return at;
  }

  /** Appends a little-endian uint32. */
  uint32(value: number): void {
    const at = this.#reserve(4);
    this.#buffer.writeUInt32LE(value, at);
  }

  /** Appends a little-endian uint64. */
  uint64(value: bigint): void {
    const at = this.#reserve(8);
    this.#buffer.writeBigUInt64LE(value, at);
  }

  /** Appends a GGUF string: uint64 byte length, then UTF-8 bytes. */
  string(value: string): void {
    const length = Buffer.byteLength(value, "utf8");
    this.uint64(BigInt(length));
    const at = this.#reserve(length);
    this.#buffer.write(value, at, length, "utf8");
  }

  /** Appends `count` zero bytes (padding). */
  zeros(count: number): void {
    const at = this.#reserve(count);
    this.#buffer.fill(0, at, at + count);
  }

  /** Appends one metadata value of `type`. */
  scalar(type: GgufScalarType, value: GgufScalar): void {
    if (type === "string") return this.string(String(value));
    const size = SCALAR_SIZES[type];
    const at = this.#reserve(size);
    const buffer = this.#buffer;
    switch (type) {
      case "uint8":
        buffer.writeUInt8(Number(value), at);
        break;
      case "int8":
        buffer.writeInt8(Number(value), at);
        break;
      case "uint16":
        buffer.writeUInt16LE(Number(value), at);
        break;
      case "int16":
        buffer.writeInt16LE(Number(value), at);
        break;
      case "uint32":
        buffer.writeUInt32LE(Number(value), at);
        break;
      case "int32":
        buffer.writeInt32LE(Number(value), at);
        break;
      case "float32":
        buffer.writeFloatLE(Number(value), at);
        break;
      case "bool":
        buffer.writeUInt8(value ? 1 : 0, at);
        break;
      case "uint64":
        buffer.writeBigUInt64LE(BigInt(value as number | bigint), at);
        break;
      case "int64":
        buffer.writeBigInt64LE(BigInt(value as number | bigint), at);
        break;
      case "float64":
        buffer.writeDoubleLE(Number(value), at);
        break;
    }
  }

  /** The bytes written (a view, not a copy). */
  toBuffer(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }
}

const SCALAR_SIZES: Record<Exclude<GgufScalarType, "string">, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  bool: 1,
  uint64: 8,
  int64: 8,
  float64: 8,
};
