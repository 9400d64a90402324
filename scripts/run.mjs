#!/usr/bin/env node
// The two entry points of the README: `npm run demo` and `npm test`.
// Both work on a fresh machine with only Node 20 and npm: they fetch the pinned pnpm,
// install the workspace, and (for tests) make sure the real servers are installed.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const PNPM = "10.34.9";

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { cwd: root, stdio: "inherit", ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

function pnpm() {
  try {
    const version = execFileSync("pnpm", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    if (version.startsWith("10.")) return ["pnpm", []];
  } catch {
    // not installed: fall through
  }
  // corepack's signature check fails on Node 20's bundled corepack; npx fetches the pinned pnpm instead.
  return ["npx", ["--yes", `pnpm@${PNPM}`]];
}

function must(status, what) {
  if (status !== 0) {
    console.error(`[superspreader] ${what} failed (exit ${status})`);
    process.exit(status);
  }
}

const [command, ...rest] = process.argv.slice(2);
const [pnpmCmd, pnpmArgs] = pnpm();
const frozen = existsSync(join(root, "pnpm-lock.yaml")) ? ["--frozen-lockfile"] : [];

if (command === "demo") {
  must(run(pnpmCmd, [...pnpmArgs, "install", ...frozen, "--reporter=silent"]), "pnpm install");
  process.exit(run(pnpmCmd, [...pnpmArgs, "--silent", "--filter", "@superspreader/example-demo", "start", ...rest]));
} else if (command === "test") {
  must(run("bash", [join(root, "scripts/ensure-servers.sh")]), "installing the test servers");
  must(run(pnpmCmd, [...pnpmArgs, "install", ...frozen, "--reporter=silent"]), "pnpm install");
  must(
    run(pnpmCmd, [...pnpmArgs, "-r", "--filter", "./packages/**", "--filter", "./examples/**", "--filter", "./e2e", "--filter", "./bench", "--filter", "./release", "typecheck"]),
    "type-checking",
  );
  // Every package must build to ESM + CJS with types and pass publint and arethetypeswrong.
  must(run(pnpmCmd, [...pnpmArgs, "-r", "--filter", "./packages/**", "build"]), "building");
  must(run(pnpmCmd, [...pnpmArgs, "-r", "--filter", "./packages/**", "lint:package"]), "package lint (publint, attw)");
  mkdirSync(join(root, ".tmp"), { recursive: true });
  const report = join(root, ".tmp", "vitest.json");
  const status = run(pnpmCmd, [
    ...pnpmArgs, "exec", "vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...rest,
  ]);
  if (existsSync(report)) {
    const r = JSON.parse(readFileSync(report, "utf8"));
    const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  }
  process.exit(status);
} else {
  console.error("usage: node scripts/run.mjs demo [demo flags] | test [vitest filters]");
  process.exit(2);
}
