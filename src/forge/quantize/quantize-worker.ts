// The quantize worker: `node quantize-worker.js '{"input":…,"output":…,"type":…,"threads":…}'`.
// Quantizes through libllama and prints one JSON line on stdout: {"ok":true} or
// {"ok":false,"error":…}. llama.cpp's per-tensor log goes to stderr; an assert aborts the process.
import { readImportanceMatrix } from "./imatrix.js";
import { quantizeWithLibllama } from "./libllama-quantize.js";
import { parseQuantizeType } from "./quantize-types.js";

interface WorkerArgs {
  input: string;
  output: string;
  type: string;
  threads: number;
  /** An importance matrix (GGUF), already checked against the model by the parent. */
  imatrix?: string;
  /** The name recorded as `quantize.imatrix.file`. */
  imatrixName?: string;
}

try {
  const args = JSON.parse(process.argv[2] ?? "{}") as WorkerArgs;
  const imatrix = args.imatrix === undefined ? undefined : { ...(await readImportanceMatrix(args.imatrix)), ...(args.imatrixName === undefined ? {} : { file: args.imatrixName }) };
  await quantizeWithLibllama(args.input, args.output, parseQuantizeType(args.type), args.threads, imatrix);
  process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: (error as Error).message })}\n`);
  process.exitCode = 1;
}
