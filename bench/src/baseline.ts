/**
 * "Before" for before/after benchmarks measured in the same run: the sources of core, store-redis and
 * adapter-bullmq at an earlier commit, extracted with `git archive` next to each package (inside its
 * node_modules, which git ignores and where the package's own dependencies resolve), with the imports
 * between them pointed at each other. Nothing of it is committed; it is rebuilt when missing.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const PACKAGES = { core: "core", "store-redis": "store-redis", "adapter-bullmq": "adapter-bullmq" } as const;
type Package = keyof typeof PACKAGES;

/** Where the baseline copy of `pkg`'s sources lives. */
function dirOf(pkg: Package, commit: string): string {
  return join(root, "packages", PACKAGES[pkg], "node_modules", `.baseline-${commit.slice(0, 12)}`);
}

function extract(commit: string): void {
  for (const pkg of Object.keys(PACKAGES) as Package[]) {
    const dir = dirOf(pkg, commit);
    if (existsSync(join(dir, "src", "index.ts"))) continue;
    mkdirSync(dir, { recursive: true });
    const tar = execFileSync("git", ["-C", root, "archive", commit, `packages/${PACKAGES[pkg]}/src`]);
    execFileSync("tar", ["-x", "-C", dir, "--strip-components=2"], { input: tar });
  }
  // Point "@superspreader/<pkg>" imports at the other baseline copies.
  for (const pkg of Object.keys(PACKAGES) as Package[]) {
    const src = join(dirOf(pkg, commit), "src");
    for (const file of readdirSync(src).filter((f) => f.endsWith(".ts"))) {
      const path = join(src, file);
      let text = readFileSync(path, "utf8");
      for (const other of Object.keys(PACKAGES) as Package[]) {
        const target = relative(src, join(dirOf(other, commit), "src", "index.js"));
        text = text.replaceAll(`"@superspreader/${other}"`, JSON.stringify(target.startsWith(".") ? target : `./${target}`));
      }
      writeFileSync(path, text);
    }
  }
}

/** The commit whose sources `loadBaseline` uses, from `BENCH_BASELINE` (a commit or ref), by default the release before issue #8. */
export const BASELINE_COMMIT = process.env.BENCH_BASELINE ?? "3fa87a7";

/** Imports a package's baseline entry (its `src/index.ts`) at `commit`. */
export async function loadBaseline<T>(pkg: Package, commit = BASELINE_COMMIT): Promise<T> {
  const full = execFileSync("git", ["-C", root, "rev-parse", commit]).toString().trim();
  extract(full);
  return (await import(pathToFileURL(join(dirOf(pkg, full), "src", "index.ts")).href)) as T;
}
