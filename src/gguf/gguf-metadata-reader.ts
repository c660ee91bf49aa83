import { InvalidModelFileError } from "../core/errors.js";
import { ggufValueTypeName, readGgufHeader, type GgufHeader, type TypedMetadataEntry } from "./gguf-header-reader.js";

export { GGUF_VALUE_TYPE_NAMES, type TypedMetadataEntry } from "./gguf-header-reader.js";

const UINT32 = 4;
const INT32 = 5;
const FLOAT32 = 6;
const STRING = 8;
const ARRAY = 9;

/**
 * Typed access to GGUF metadata with the type rules llama.cpp applies (a uint32 field must be
 * stored as u32, and so on); every violation becomes an InvalidModelFileError naming the file.
 */
export class GgufMetadataReader {
  readonly #file: string;
  readonly #entries: ReadonlyMap<string, TypedMetadataEntry>;

  /**
   * @param file the name used in error messages
   * @param entries the metadata, as {@link readGgufHeader} returns it
   */
  constructor(file: string, entries: ReadonlyMap<string, TypedMetadataEntry>) {
    this.#file = file;
    this.#entries = entries;
  }

  /** The metadata of a header that {@link readGgufHeader} read. */
  static fromHeader(header: GgufHeader): GgufMetadataReader {
    return new GgufMetadataReader(header.file, header.metadata);
  }

  /**
   * Reads the metadata of a GGUF file (header only). Checks only the header's structure
   * (see {@link readGgufHeader}): use validateGgufFile before handing a file to llama.cpp.
   *
   * @throws InvalidModelFileError when the header cannot be parsed
   */
  static async open(path: string): Promise<GgufMetadataReader> {
    return GgufMetadataReader.fromHeader(await readGgufHeader(path));
  }

  /** Every key with its typed entry, in file order. */
  entries(): [string, TypedMetadataEntry][] {
    return [...this.#entries];
  }

  /** Throws an InvalidModelFileError with the file name in front of `message`. */
  fail(message: string): never {
    throw new InvalidModelFileError(`${this.#file}: ${message}`);
  }

  /** True when the key is present. */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** The raw entry, or undefined. */
  entry(key: string): TypedMetadataEntry | undefined {
    return this.#entries.get(key);
  }

  #expect(key: string, type: number, required: boolean): TypedMetadataEntry | undefined {
    const entry = this.entry(key);
    if (!entry) {
      if (required) this.fail(`metadata key '${key}' is missing`);
      return undefined;
    }
    if (entry.type !== type) this.fail(`metadata key '${key}' has type ${ggufValueTypeName(entry.type)}, expected ${ggufValueTypeName(type)}`);
    return entry;
  }

  /** A u32 value; `required` makes absence an error. */
  uint32(key: string, required: true): number;
  uint32(key: string, required?: false): number | undefined;
  uint32(key: string, required = false): number | undefined {
    const entry = this.#expect(key, UINT32, required);
    return entry === undefined ? undefined : Number(entry.value);
  }

  /** A f32 value. */
  float32(key: string, required: true): number;
  float32(key: string, required?: false): number | undefined;
  float32(key: string, required = false): number | undefined {
    const entry = this.#expect(key, FLOAT32, required);
    return entry === undefined ? undefined : Number(entry.value);
  }

  /** A string value. */
  string(key: string, required: true): string;
  string(key: string, required?: false): string | undefined;
  string(key: string, required = false): string | undefined {
    const entry = this.#expect(key, STRING, required);
    return entry === undefined ? undefined : String(entry.value);
  }

  /** An array whose items have `itemType`. */
  array(key: string, itemType: number, required: true): unknown[];
  array(key: string, itemType: number, required?: false): unknown[] | undefined;
  array(key: string, itemType: number, required = false): unknown[] | undefined {
    const entry = this.#expect(key, ARRAY, required);
    if (entry === undefined) return undefined;
    if (entry.subType !== itemType) {
      this.fail(`metadata key '${key}' is an array of ${ggufValueTypeName(entry.subType)}, expected an array of ${ggufValueTypeName(itemType)}`);
    }
    return entry.value as unknown[];
  }

  /** An array of strings. */
  stringArray(key: string, required = false): string[] | undefined {
    return required ? (this.array(key, STRING, true) as string[]) : (this.array(key, STRING) as string[] | undefined);
  }

  /** An array of i32. */
  int32Array(key: string): number[] | undefined {
    return this.array(key, INT32) as number[] | undefined;
  }

  /**
   * A per-layer u32 hyperparameter as llama.cpp's `get_key_or_arr` reads it: one u32 for every
   * layer, or an array of exactly `layers` u32 (or i32) values. Returns one value per layer.
   */
  uint32PerLayer(key: string, layers: number, required: boolean): number[] | undefined {
    const entry = this.entry(key);
    if (!entry) {
      if (required) this.fail(`metadata key '${key}' is missing`);
      return undefined;
    }
    if (entry.type === ARRAY) {
      if (entry.subType !== UINT32 && entry.subType !== INT32) {
        this.fail(`metadata key '${key}' is an array of ${ggufValueTypeName(entry.subType)}, expected u32 values`);
      }
      const values = (entry.value as unknown[]).map(Number);
      if (values.length !== layers) this.fail(`metadata key '${key}' has ${values.length} values for ${layers} layers`);
      return values;
    }
    return new Array<number>(layers).fill(this.uint32(key, true));
  }
}
