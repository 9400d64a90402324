// Types of scripts/pack.mjs, for the TypeScript that imports it (the release test).

/** A packed package.json, as the tarball holds it. */
export interface PackedManifest {
  readonly name: string;
  readonly version: string;
  readonly private?: boolean;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
  readonly devDependencies?: Readonly<Record<string, string>>;
  readonly [field: string]: unknown;
}

/** A tarball `pack` wrote: its absolute path and its package.json. */
export interface Tarball {
  readonly path: string;
  readonly manifest: PackedManifest;
}

/** The repository root. */
export const ROOT: string;
/** The pnpm to run: `["pnpm", []]` when pnpm 10 is installed, else `["npx", ["--yes", "pnpm@10.x"]]`. */
export function pnpmCommand(): [string, string[]];
/** The public workspace packages under packages/. */
export function publicPackages(): Array<{ dir: string; name: string; version: string }>;
/** The files a manifest points consumers at (exports, main, module, types, bin), without the workspace-only source condition. */
export function entryFiles(manifest: PackedManifest): string[];
/** True when the package's dist/ is missing, older than its sources, or lacks a file the manifest points at. */
export function isStale(pkg: { dir: string }): boolean;
/** Whether an exact version satisfies `^x.y.z`, `~x.y.z`, `>=x.y.z` or `x.y.z`. */
export function satisfies(version: string, range: string): boolean;
/** Leftover `workspace:` ranges and internal ranges no tarball satisfies; empty when the set installs. */
export function checkManifests(manifests: readonly PackedManifest[]): string[];
/** Builds (all, or with `ifStale` only stale packages) and packs every public package into `out` (default packs/). */
export function pack(options?: { out?: string; ifStale?: boolean; log?: (line: string) => void }): Promise<Tarball[]>;
