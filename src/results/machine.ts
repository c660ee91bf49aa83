import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import type { Machine } from "../core/wire.js";

export type { Machine } from "../core/wire.js";


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
