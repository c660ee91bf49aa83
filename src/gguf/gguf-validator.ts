import { checkArchitecture, type ArchitectureShape } from "./gguf-architecture-checks.js";
import { llamaFileTypeName } from "./gguf-file-type.js";
import { readGgufHeader, type GgufHeader } from "./gguf-header-reader.js";
import { GgufMetadataReader } from "./gguf-metadata-reader.js";
import { ggufTensorLayout, type GgufTensorLayout, type ValidatedTensor } from "./gguf-tensor-layout.js";

/**
 * What a validated file holds: the hyperparameters checked against llama.cpp's
 * expectations (`ArchitectureShape`: architecture, context, embedding, layers, heads, feed
 * forward, vocabulary and tokenizer) plus facts about the file itself.
 */
export interface GgufSummary extends ArchitectureShape {
  /** `general.name`, when the file has one. */
  name?: string;
  /** Number of tensors. */
  tensorCount: number;
  /** Total elements over all tensors. */
  parameterCount: number;
  /** File size in bytes. */
  fileSize: number;
  /**
   * The quantization label: `general.file_type`'s llama.cpp name (e.g. `Q4_K_M`), else the tensor
   * type holding the most parameters, e.g. `F16` or `Q8_0`.
   */
  fileType?: string;
  /** `tokenizer.chat_template`, when present. */
  chatTemplate?: string;
  /**
   * `adapter.type` (e.g. `lora`) when the file is an adapter (`general.type = adapter`): it has
   * no hyperparameters or vocabulary of its own (those fields are 0) and loads only onto a base.
   */
  adapterType?: string;
}

export type { ValidatedTensor } from "./gguf-tensor-layout.js";

/** What {@link validateGgufHeader} found: the summary and where each tensor lies. */
export interface GgufValidation {
  summary: GgufSummary;
  layout: GgufTensorLayout;
}

/**
 * Checks a GGUF file for everything that would make llama.cpp refuse it or abort the process
 * (GGML_ASSERT): header structure with every count and length bounded by the bytes left and by
 * GGUF_HEADER_LIMITS, metadata types, tensor infos, offsets and sizes against the file, and for
 * `llama` models the hyperparameters, tensor shapes and vocabulary (an adapter, `general.type =
 * adapter`, needs only `general.architecture` and `adapter.type`). Reads only the header,
 * through its own bounded reader (never node-llama-cpp), so it takes milliseconds even for large
 * or hostile files.
 *
 * @throws InvalidModelFileError naming the file and the first problem found
 */
export async function validateGgufFile(path: string): Promise<GgufSummary> {
  return validateGgufHeader(await readGgufHeader(path)).summary;
}

/**
 * The checks of {@link validateGgufFile} on a header already read, for callers that also want
 * the metadata or the tensor layout (`grove inspect`).
 *
 * @throws InvalidModelFileError naming the file and the first problem found
 */
export function validateGgufHeader(header: GgufHeader): GgufValidation {
  const layout = ggufTensorLayout(header);
  const metadata = GgufMetadataReader.fromHeader(header);
  const generalType = metadata.entry("general.type");
  if (generalType?.type === GGUF_STRING && generalType.value === "adapter") {
    // llama.cpp reads only these keys of an adapter; its tensors are checked against a base
    // when it is imported (store/adapter-check.ts).
    const architecture = metadata.string("general.architecture", true);
    if (architecture.length === 0) metadata.fail("general.architecture is empty");
    const adapterType = metadata.string("adapter.type", true);
    const shape: ArchitectureShape = { ...EMPTY_SHAPE, architecture };
    return { summary: { ...summarize(metadata, shape, layout.tensors, header.fileSize), adapterType }, layout };
  }
  const shape = checkArchitecture(metadata, layout.tensors);
  return { summary: summarize(metadata, shape, layout.tensors, header.fileSize), layout };
}

const GGUF_STRING = 8;
const GGUF_UINT32 = 4;

const EMPTY_SHAPE: ArchitectureShape = {
  architecture: "",
  contextLength: 0,
  embeddingLength: 0,
  blockCount: 0,
  headCount: 0,
  headCountKv: 0,
  feedForwardLength: 0,
  vocabularySize: 0,
  tokenizerModel: "",
};

function summarize(
  metadata: GgufMetadataReader,
  shape: ArchitectureShape,
  tensors: Map<string, ValidatedTensor>,
  fileSize: number,
): GgufSummary {
  const elementsByType = new Map<string, number>();
  let parameterCount = 0;
  for (const tensor of tensors.values()) {
    const elements = tensor.shape.reduce((product, dim) => product * dim, 1);
    parameterCount += elements;
    elementsByType.set(tensor.type, (elementsByType.get(tensor.type) ?? 0) + elements);
  }
  // general.file_type names the recipe (Q4_K_M keeps some tensors at Q6_K, Q4_K_S fewer); only
  // without it, or with a number llama.cpp does not define, is the label guessed from the tensor
  // type holding the most parameters, as llama.cpp's loader guesses.
  const declared = metadata.entry("general.file_type");
  let fileType = declared?.type === GGUF_UINT32 ? llamaFileTypeName(Number(declared.value)) : undefined;
  if (fileType === undefined) {
    for (const [type, elements] of elementsByType) {
      if (fileType === undefined || elements > (elementsByType.get(fileType) ?? 0)) fileType = type;
    }
  }
  const summary: GgufSummary = {
    architecture: shape.architecture,
    contextLength: shape.contextLength,
    embeddingLength: shape.embeddingLength,
    blockCount: shape.blockCount,
    headCount: shape.headCount,
    headCountKv: shape.headCountKv,
    feedForwardLength: shape.feedForwardLength,
    vocabularySize: shape.vocabularySize,
    tensorCount: tensors.size,
    parameterCount,
    fileSize,
    tokenizerModel: shape.tokenizerModel,
  };
  const name = metadata.string("general.name");
  if (name !== undefined) summary.name = name;
  if (fileType !== undefined) summary.fileType = fileType;
  const chatTemplate = metadata.string("tokenizer.chat_template");
  if (chatTemplate !== undefined) summary.chatTemplate = chatTemplate;
  return summary;
}
