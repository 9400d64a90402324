// Types of scripts/registry.mjs, for the TypeScript that imports it (the release test).
import type { PackedManifest } from "./pack.mjs";

/** A running registry. */
export interface Registry {
  /** `http://host:port`, without a trailing slash. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serves the tarballs of `dir` as a read-only npm registry on `host:port` (port 0: a free one). */
export function startRegistry(options: { dir: string; port?: number; host?: string }): Promise<Registry>;
/** The files of an npm tarball: path (starting with `package/`) → contents. */
export function tarEntries(tarball: string): Map<string, Buffer>;
/** The package.json inside an npm tarball. */
export function manifestOf(tarball: string): PackedManifest;
