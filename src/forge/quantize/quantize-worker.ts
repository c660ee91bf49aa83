// The quantize job: quantizes through libllama in the job worker process (native/job-host.ts).
// llama.cpp's per-tensor log goes to stderr (the parent reads progress from it); an assert aborts
// the process.
import { readImportanceMatrix } from "./imatrix.js";
import { quantizeWithLibllama } from "./libllama-quantize.js";
import { parseQuantizeType } from "./quantize-types.js";

export interface WorkerArgs {
  input: string;
  output: string;
  type: string;
  threads: number;
  /** An importance matrix (GGUF), already checked against the model by the parent. */
  imatrix?: string;
  /** The name recorded as `quantize.imatrix.file`. */
  imatrixName?: string;
}

/** The quantize job (run by native/job-worker.ts in a child process). */
export async function run(args: WorkerArgs): Promise<null> {
  const imatrix = args.imatrix === undefined ? undefined : { ...(await readImportanceMatrix(args.imatrix)), ...(args.imatrixName === undefined ? {} : { file: args.imatrixName }) };
  await quantizeWithLibllama(args.input, args.output, parseQuantizeType(args.type), args.threads, imatrix);
  return null;
}
