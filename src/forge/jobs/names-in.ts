import { readdir } from "node:fs/promises";

/** The entries of a store's folder; none when the folder does not exist yet (nothing was ever saved). */
export async function namesIn(directory: string): Promise<string[]> {
  try {
    return await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}
