/** A bundle directory on disk as a BundleSource (Node). */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { BundleSource } from "../bundle.js";

export function directorySource(root: string): BundleSource {
  return {
    async read(path: string): Promise<Uint8Array | null> {
      try {
        return new Uint8Array(await readFile(join(root, path)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw error;
      }
    },
  };
}
