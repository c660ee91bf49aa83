import { createHash } from "node:crypto";
import { readdir, rename } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";

/**
 * Temp files name the process that writes them: `<pid>.<host>.<rest>`, where `<host>` is 8 hex
 * digits of this machine's host name (a store on a shared disk is seen by processes of several
 * machines, whose process ids mean nothing here). A file is stale exactly when its writer is gone,
 * so a crashed import, pull or quantize is cleaned up at the next start or `grove gc`, while a
 * slow one that is still running is never touched. Files written by a tool on the writer's behalf
 * (`<name>.partial.partial`) carry the same prefix and go with it.
 */
const HOST = createHash("sha256").update(hostname()).digest("hex").slice(0, 8);
const OWNED = /^(\d{1,10})\.([0-9a-f]{8})\./;

/** A temp file name owned by this process (or by `pid`, on this machine): `<pid>.<host>.<rest>`. */
export function ownedTempName(rest: string, pid = process.pid): string {
  return `${pid}.${HOST}.${rest}`;
}

/**
 * Whether a temp file's writer still runs: `alive`, `gone`, or `unknown` for a name that carries
 * no owner of this machine (written by another machine, or by a Grove before owners were named).
 */
export function tempOwnerState(name: string): "alive" | "gone" | "unknown" {
  const match = OWNED.exec(name);
  if (match === null || match[2] !== HOST) return "unknown";
  return isRunning(Number(match[1])) ? "alive" : "gone";
}

/** True when a process with this id exists (signal 0 checks without sending; EPERM means it exists under another user). */
function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The path of a resumable download's partial file (`<pid>.<host>.pull-<key>.partial`), taking
 * over one that a process now gone left for the same key, so a pull that died is resumed by the
 * next one (unless a start or `grove gc` removed the file first). A partial whose writer still
 * runs is left to it.
 */
export async function adoptPartialFile(directory: string, key: string): Promise<string> {
  const mine = join(directory, ownedTempName(`pull-${key}.partial`));
  const suffix = `.pull-${key}.partial`;
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return mine;
  }
  for (const name of names) {
    if (!name.endsWith(suffix) || tempOwnerState(name) !== "gone") continue;
    try {
      await rename(join(directory, name), mine);
      return mine;
    } catch {
      // Another process adopted it first: look on.
    }
  }
  return mine;
}
