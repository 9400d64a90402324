#!/usr/bin/env node
// `npm run pack`: installable tarballs of every public package, before anything is on a
// registry. Builds the packages, packs each with pnpm (which turns `workspace:^` into the
// real range, e.g. ^0.1.0), and checks that every internal dependency of every tarball is
// satisfied by another tarball of the same folder. See README "Installing from tarballs".
//
//   npm run pack                       # build, then packs/*.tgz
//   node scripts/pack.mjs --out DIR    # somewhere else
//   node scripts/pack.mjs --if-stale   # build only packages whose dist/ is older than their sources
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { manifestOf, tarEntries } from "./registry.mjs";

export const ROOT = join(fileURLToPath(new URL(".", import.meta.url)), "..");
const PNPM = "10.34.9";

/** How to run the repository's pnpm: the installed one if it is 10.x, else the pinned one through npx. */
export function pnpmCommand() {
  try {
    const version = execFileSync("pnpm", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    if (version.startsWith("10.")) return ["pnpm", []];
  } catch {
    // not installed: fall through
  }
  return ["npx", ["--yes", `pnpm@${PNPM}`]];
}

/** The public workspace packages under packages/: { dir, name, version }. */
export function publicPackages() {
  const dir = join(ROOT, "packages");
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((path) => existsSync(join(path, "package.json")))
    .map((path) => ({ path, manifest: JSON.parse(readFileSync(join(path, "package.json"), "utf8")) }))
    .filter(({ manifest }) => !manifest.private)
    .map(({ path, manifest }) => ({ dir: path, name: manifest.name, version: manifest.version }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((entry) => newestMtime(join(path, entry))));
}

function oldestMtime(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.min(Infinity, ...readdirSync(path).map((entry) => oldestMtime(join(path, entry))));
}

/**
 * The files a manifest points consumers at (exports, main, module, types, bin), relative to
 * the package. The workspace-only `@superspreader/source` condition (./src) is left out.
 */
export function entryFiles(manifest) {
  const files = new Set();
  const add = (path) => {
    if (typeof path === "string" && path !== "./package.json") files.add(path.replace(/^\.\//, ""));
  };
  const walk = (value, condition) => {
    if (typeof value === "string") {
      if (condition !== "@superspreader/source") add(value);
    } else if (value && typeof value === "object") {
      for (const [key, inner] of Object.entries(value)) walk(inner, key);
    }
  };
  walk(manifest.exports, null);
  for (const field of ["main", "module", "types"]) add(manifest[field]);
  if (typeof manifest.bin === "string") add(manifest.bin);
  else for (const path of Object.values(manifest.bin ?? {})) add(path);
  return [...files].sort();
}

/**
 * True when dist/ is older than anything its build reads (make's rule), or lacks a file the
 * manifest points at (a build that failed or was cut short halfway leaves some out).
 */
export function isStale(pkg) {
  const dist = join(pkg.dir, "dist");
  if (!existsSync(dist) || readdirSync(dist).length === 0) return true;
  const manifest = JSON.parse(readFileSync(join(pkg.dir, "package.json"), "utf8"));
  if (entryFiles(manifest).some((file) => !existsSync(join(pkg.dir, file)))) return true;
  const inputs = ["src", "package.json", "tsup.config.ts", "tsconfig.json"].map((f) => join(pkg.dir, f));
  inputs.push(join(ROOT, "tsup.base.ts"), join(ROOT, "tsconfig.base.json"));
  return Math.max(...inputs.map(newestMtime)) > oldestMtime(dist);
}

/** `^1.2.3`, `~1.2.3`, `1.2.3` or `>=1.2.3` against an exact version (the ranges pnpm writes for workspace:). */
export function satisfies(version, range) {
  const m = /^(\^|~|>=)?(\d+)\.(\d+)\.(\d+)$/.exec(range.trim());
  const v = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!m || !v) return false;
  const [want, have] = [m.slice(2).map(Number), v.slice(1).map(Number)];
  const cmp = have[0] - want[0] || have[1] - want[1] || have[2] - want[2];
  if (cmp < 0) return false;
  if (m[1] === ">=") return true;
  if (!m[1]) return cmp === 0;
  if (m[1] === "~") return have[0] === want[0] && have[1] === want[1];
  // Caret: the left-most non-zero part is fixed (^0.1.0 allows 0.1.x, not 0.2.0).
  if (want[0] !== 0) return have[0] === want[0];
  if (want[1] !== 0) return have[0] === 0 && have[1] === want[1];
  return have[0] === 0 && have[1] === 0 && have[2] === want[2];
}

/** Problems of a set of packed manifests: leftover workspace: ranges, internal ranges no tarball satisfies. */
export function checkManifests(manifests) {
  const packed = new Map(manifests.map((m) => [m.name, m.version]));
  const problems = [];
  for (const m of manifests) {
    for (const field of ["dependencies", "peerDependencies", "optionalDependencies", "devDependencies"]) {
      for (const [dep, range] of Object.entries(m[field] ?? {})) {
        if (String(range).startsWith("workspace:")) problems.push(`${m.name}: ${field}.${dep} is still "${range}"`);
        if (field === "devDependencies" || !dep.startsWith("@superspreader/")) continue;
        const have = packed.get(dep);
        if (have === undefined) problems.push(`${m.name}: ${field}.${dep}@${range} is not among the tarballs`);
        else if (!satisfies(have, range)) problems.push(`${m.name}: ${field}.${dep}@${range} is not satisfied by the packed ${have}`);
      }
    }
  }
  return problems;
}

/** Runs pnpm in `cwd`; rejects with its output when it fails. Asynchronous, so a test runner calling it stays responsive. */
function runPnpm(args, cwd) {
  const [pnpm, pnpmArgs] = pnpmCommand();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(pnpm, [...pnpmArgs, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.once("error", reject);
    child.once("close", (code) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`[superspreader] pnpm ${args.join(" ")} failed in ${relative(ROOT, cwd) || "."} (exit ${code}):\n${output}`));
    });
  });
}

/**
 * Builds (all, or only stale packages) and packs every public package into `out`,
 * which is emptied of old tarballs first. Resolves to the tarballs' paths and manifests.
 */
export async function pack({ out = join(ROOT, "packs"), ifStale = false, log = console.log } = {}) {
  const packages = publicPackages();
  const toBuild = ifStale ? packages.filter(isStale) : packages;
  if (toBuild.length > 0) {
    log(`[superspreader] building ${toBuild.map((p) => p.name).join(", ")}`);
    await runPnpm(["-r", ...toBuild.flatMap((p) => ["--filter", p.name]), "build"], ROOT);
  }
  mkdirSync(out, { recursive: true });
  for (const file of readdirSync(out).filter((f) => f.endsWith(".tgz"))) rmSync(join(out, file));
  for (const pkg of packages) await runPnpm(["pack", "--pack-destination", resolve(out)], pkg.dir);
  const tarballs = readdirSync(out)
    .filter((f) => f.endsWith(".tgz"))
    .map((file) => ({ path: join(resolve(out), file), manifest: manifestOf(join(out, file)) }));
  const problems = checkManifests(tarballs.map((t) => t.manifest));
  for (const t of tarballs) {
    const entries = tarEntries(t.path);
    for (const file of entryFiles(t.manifest)) {
      if (!entries.has(`package/${file}`)) problems.push(`${t.manifest.name}: ${file} is not in the tarball (a failed build?)`);
    }
  }
  const missing = packages.filter((p) => !tarballs.some((t) => t.manifest.name === p.name));
  for (const p of missing) problems.push(`${p.name}: no tarball was written`);
  if (problems.length > 0) throw new Error(`[superspreader] the tarballs do not resolve among themselves:\n  ${problems.join("\n  ")}`);
  for (const t of tarballs) log(`  ${relative(process.cwd(), t.path)}  ${t.manifest.name}@${t.manifest.version}  ${Math.round(statSync(t.path).size / 1024)} KiB`);
  return tarballs;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { out: { type: "string" }, "if-stale": { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("usage: npm run pack [-- --out DIR] [-- --if-stale]");
    process.exit(0);
  }
  try {
    const out = values.out ?? join(ROOT, "packs");
    const tarballs = await pack({ out, ifStale: values["if-stale"] });
    console.log(`[superspreader] ${tarballs.length} tarballs in ${relative(process.cwd(), out) || "."}; their internal dependencies resolve among themselves.`);
    console.log("[superspreader] to install them in an app, see README.md, \"Installing from tarballs\" (npm install ./packs/*.tgz, or node scripts/registry.mjs).");
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
}
