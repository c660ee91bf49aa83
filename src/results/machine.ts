import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";

/**
 * The machine a speed or memory result was measured on. Results on different machines are never
 * ranked together; a result without one (stored before machines were recorded) is on an unknown
 * machine, which matches no other, not even another unknown one.
 */
export interface Machine {
  /** `os.cpus()[0].model`. */
  cpu: string;
  /** Cores the process may use. */
  cores: number;
  /** Total memory, GiB (one decimal). */
  memoryGib: number;
  /** The GPU's model, where the NVIDIA driver names one; null for none seen. */
  gpu: string | null;
  /** sha256 of cpu, cores, memory and GPU (first 16 hex digits): the key results are compared on. */
  fingerprint: string;
}

/** The fingerprint of a machine's description. */
export function machineFingerprint(machine: Omit<Machine, "fingerprint">): string {
  return createHash("sha256").update(JSON.stringify([machine.cpu, machine.cores, machine.memoryGib, machine.gpu])).digest("hex").slice(0, 16);
}

/** The machine this process runs on. */
export function currentMachine(): Machine {
  const described = {
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: availableParallelism(),
    memoryGib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    gpu: nvidiaGpu(),
  };
  return { ...described, fingerprint: machineFingerprint(described) };
}

/** `Intel Xeon … × 16 cores, 62.8 GiB, NVIDIA H100` — or `an unknown machine`. */
export function describeMachine(machine: Machine | null | undefined): string {
  if (machine == null) return "an unknown machine";
  // A stand-in (shipped results of an unrecorded machine) has nothing but its description.
  if (machine.cores === 0) return machine.cpu;
  return `${machine.cpu} × ${machine.cores} cores, ${machine.memoryGib} GiB${machine.gpu === null ? "" : `, ${machine.gpu}`}`;
}

/** True when two results were measured on the same known machine. */
export function sameMachine(a: Machine | null | undefined, b: Machine | null | undefined): boolean {
  return a != null && b != null && a.fingerprint === b.fingerprint;
}

function nvidiaGpu(): string | null {
  // The driver's own files: no process to start, nothing when there is no NVIDIA GPU.
  try {
    const [first] = readdirSync("/proc/driver/nvidia/gpus");
    if (first === undefined) return null;
    const model = /^Model:\s*(.+)$/m.exec(readFileSync(`/proc/driver/nvidia/gpus/${first}/information`, "utf8"))?.[1]?.trim();
    return model ?? null;
  } catch {
    return null;
  }
}
