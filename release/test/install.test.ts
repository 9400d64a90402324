// A newcomer's install, before anything is on a registry: `npm run pack`'s tarballs go into
// apps in a temporary folder outside the workspace, installed by plain npm (tarball paths) and
// by pnpm 10 and npm through scripts/registry.mjs (ordinary semver ranges, no overrides). Each
// app type-checks and compiles the README quickstart against the installed types, runs a
// PGlite + in-memory backfill and the quickstart on the test servers' PostgreSQL, Redis and
// BullMQ, and reads the result with the installed `superspreader` CLI.
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, plainTexts, redisDatabase, run, wrongRows } from "../../examples/quickstart/test/harness.js";
import type { TestDatabase, TestRedis } from "../../examples/quickstart/test/harness.js";
import { ROOT, pack, pnpmCommand } from "../../scripts/pack.mjs";
import type { Tarball } from "../../scripts/pack.mjs";
import { startRegistry } from "../../scripts/registry.mjs";
import type { Registry } from "../../scripts/registry.mjs";

const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));
const QUICKSTART = join(ROOT, "examples/quickstart");
/** Redis databases of these tests (the quickstart's own test uses 1; see redisDatabase). */
const REDIS_DB = { npm: 2, pnpm: 3 } as const;

/** The version the workspace pins for `name`, so the apps install what the pnpm store and npm cache already hold. */
function pinned(name: string): string {
  for (const file of ["examples/quickstart/package.json", "examples/demo/package.json", "package.json"]) {
    const manifest = JSON.parse(readFileSync(join(ROOT, file), "utf8")) as Record<string, Record<string, string> | undefined>;
    const version = manifest.dependencies?.[name] ?? manifest.devDependencies?.[name];
    if (version) return version;
  }
  throw new Error(`no workspace pin for ${name}`);
}
const THIRD_PARTY = ["bullmq", "ioredis", "drizzle-orm", "pg", "@electric-sql/pglite", "typescript", "@types/node", "@types/pg"];

/**
 * The environment of an app's commands: this one without what npm, pnpm and vitest put in it
 * for the workspace (npm_config_*, the test runner's markers), which would steer the app's
 * npm and pnpm toward the workspace's settings or make its vitest think it is nested.
 */
function appEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const key of Object.keys(process.env)) {
    if (/^(npm_|pnpm_|vitest)/i.test(key) || ["NODE_OPTIONS", "NODE_ENV", "TEST", "INIT_CWD"].includes(key)) env[key] = undefined;
  }
  // Plain output: the assertions read it, and no terminal is watching.
  for (const key of ["FORCE_COLOR", "COLORTERM"]) env[key] = undefined;
  return { ...env, NO_COLOR: "1", npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false", ...extra };
}

let work: string;
let tarballs: Tarball[];
let registry: Registry;

/** `^version` of every packed @superspreader package, by name. */
const ranges = (names: readonly string[]) =>
  Object.fromEntries(
    names.map((name) => {
      const tarball = tarballs.find((t) => t.manifest.name === name);
      if (!tarball) throw new Error(`${name} was not packed`);
      return [name, `^${tarball.manifest.version}`];
    }),
  );

/** The sha512 integrity (SRI) of the packed tarball of `name`, as lockfiles record it. */
function integrityOf(name: string): string {
  const tarball = tarballs.find((t) => t.manifest.name === name);
  if (!tarball) throw new Error(`${name} was not packed`);
  return `sha512-${createHash("sha512").update(readFileSync(tarball.path)).digest("base64")}`;
}

/** A new app folder outside the workspace, holding the README quickstart and the embedded program. */
function createApp(name: string, manifest: Record<string, unknown>, npmrc?: string): string {
  const dir = join(work, name);
  mkdirSync(join(dir, "src"), { recursive: true });
  for (const file of ["main.ts", "schema.ts", "crypto.ts", "seed.ts"]) cpSync(join(QUICKSTART, "src", file), join(dir, "src", file));
  cpSync(join(FIXTURES, "embedded.ts"), join(dir, "src/embedded.ts"));
  cpSync(join(FIXTURES, "tsconfig.app.json"), join(dir, "tsconfig.json"));
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ name, private: true, type: "module", ...manifest }, null, 2)}\n`);
  if (npmrc !== undefined) writeFileSync(join(dir, ".npmrc"), npmrc);
  return dir;
}

const node = (dir: string, args: string[], env: Record<string, string> = {}, timeoutMs = 120_000) =>
  run(process.execPath, args, { cwd: dir, env: appEnv(env), timeoutMs });
const lastLine = (output: string) => output.trim().split("\n").pop() ?? "";

/** Type-checks and compiles the app's TypeScript with its own typescript, against the installed packages' types. */
async function compile(dir: string): Promise<void> {
  await node(dir, [join(dir, "node_modules/typescript/bin/tsc"), "-p", "."]);
}

/** The PGlite + in-memory backfill: every row done, nothing else needed. */
async function expectEmbeddedBackfill(dir: string): Promise<void> {
  const result = JSON.parse(lastLine(await node(dir, ["dist/embedded.js"]))) as unknown;
  expect(result).toMatchObject({ status: "completed", idsDone: "10000", wrongRows: 0 });
}

/** The README quickstart on PostgreSQL, Redis and BullMQ, then `npx superspreader list` against that Redis. */
async function expectQuickstartAndCli(dir: string, redisDb: number): Promise<void> {
  let database: TestDatabase | undefined;
  let redis: TestRedis | undefined;
  try {
    database = await createDatabase("release");
    redis = await redisDatabase(redisDb);
    const env = { DATABASE_URL: database.url, REDIS_URL: redis.url };
    await node(dir, ["dist/seed.js", "700"], env);
    const before = await plainTexts(database.url);
    const output = await node(dir, ["dist/main.js"], env);
    expect(output).toContain("reencrypt-messages: completed");
    expect(await wrongRows(database.url, before)).toEqual([]);

    // The installed CLI, as an operator runs it from the app.
    const npx = (args: string[]) => run("npx", ["--no", "--", "superspreader", ...args], { cwd: dir, env: appEnv({ REDIS_URL: redis?.url ?? "" }), timeoutMs: 60_000 });
    const listed = JSON.parse(await npx(["list", "--json"])) as { backfills: Array<Record<string, unknown>> };
    expect(listed.backfills).toHaveLength(1);
    expect(listed.backfills[0]).toMatchObject({ name: "reencrypt-messages", status: "completed", failedRanges: 0 });
    expect(String((listed.backfills[0]?.progress as { idsDone: unknown }).idsDone)).toBe("700");
    const text = await npx(["list"]);
    expect(text).toContain("reencrypt-messages");
    expect(text).toContain("completed");
  } finally {
    await database?.drop();
    await redis?.flush();
  }
}

beforeAll(async () => {
  // Outside the checkout, so nothing resolves through the workspace's node_modules or pnpm-workspace.yaml.
  work = realpathSync(mkdtempSync(join(tmpdir(), "superspreader-release-")));
  expect(relative(ROOT, work).startsWith("..")).toBe(true);
  // Builds only what is stale: `npm test` has just built every package.
  tarballs = await pack({ out: join(work, "packs"), ifStale: true, log: () => undefined });
  registry = await startRegistry({ dir: join(work, "packs"), port: 0 });
});

afterAll(async () => {
  await registry?.close();
  // KEEP_RELEASE_WORK=1 leaves the apps behind, to look into a failure.
  if (work && !process.env.KEEP_RELEASE_WORK) rmSync(work, { recursive: true, force: true });
});

describe("npm run pack", () => {
  it("writes a tarball of every public package, with internal dependencies as real ranges", () => {
    const names = tarballs.map((t) => t.manifest.name).sort();
    expect(names).toEqual(expect.arrayContaining(["@superspreader/adapter-bullmq", "@superspreader/cli", "@superspreader/core", "@superspreader/store-redis"]));
    for (const { manifest } of tarballs) {
      expect(manifest.private, manifest.name).toBeUndefined();
      expect(JSON.stringify(manifest), manifest.name).not.toContain("workspace:");
    }
    const bullmq = tarballs.find((t) => t.manifest.name === "@superspreader/adapter-bullmq")?.manifest;
    const core = tarballs.find((t) => t.manifest.name === "@superspreader/core")?.manifest;
    expect(bullmq?.dependencies?.["@superspreader/core"]).toBe(`^${core?.version}`);
  });
});

describe("installed from the tarballs into an app outside the workspace", () => {
  it("npm, by tarball path: every package loads (ESM and CJS), the contract suite runs, the quickstart and the CLI work", async () => {
    const dir = createApp("app-npm", {});
    const others = tarballs.filter((t) => t.manifest.name !== "@superspreader/contract-tests");
    await run(
      "npm",
      ["install", "--prefer-offline", ...tarballs.map((t) => t.path), ...THIRD_PARTY.map((n) => `${n}@${pinned(n)}`), `vitest@${pinned("vitest")}`],
      { cwd: dir, env: appEnv(), timeoutMs: 240_000 },
    );
    const dependencies = (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies;
    expect(dependencies["@superspreader/core"]).toMatch(/^file:.*superspreader-core-.*\.tgz$/);

    // One copy of core, shared by every package that depends on it.
    const ls = JSON.parse(await run("npm", ["ls", "--all", "--json", "@superspreader/core"], { cwd: dir, env: appEnv(), timeoutMs: 60_000 })) as unknown;
    const cores = new Set(JSON.stringify(ls).match(/"@superspreader\/core":\{"version":"[^"]+"/g));
    expect(cores.size).toBe(1);

    // contract-tests is ESM-only in practice: vitest refuses require().
    cpSync(join(FIXTURES, "load-all.cjs"), join(dir, "load-all.cjs"));
    const loaded = JSON.parse(
      lastLine(await node(dir, ["load-all.cjs", ...others.map((t) => t.manifest.name), "--esm-only", "@superspreader/contract-tests"])),
    ) as Record<string, { esm: string[]; cjs: string[] | null }>;
    for (const name of others.map((t) => t.manifest.name)) expect(loaded[name]?.cjs, name).toEqual(loaded[name]?.esm);
    expect(loaded["@superspreader/core"]?.esm).toEqual(expect.arrayContaining(["createSuperSpreader", "createMemoryJobQueue", "estimate"]));
    expect(loaded["@superspreader/adapter-bullmq"]?.esm).toEqual(["createBullMQJobQueue", "runBullMQWorker"]);
    expect(loaded["@superspreader/store-redis"]?.esm).toEqual(["createRedisStateStore"]);
    expect(loaded["@superspreader/source-drizzle"]?.esm).toEqual(expect.arrayContaining(["createDrizzleIdSource", "idRange"]));
    expect(loaded["@superspreader/contract-tests"]?.esm).toEqual(expect.arrayContaining(["describeIdSourceContract"]));

    cpSync(join(FIXTURES, "contract.test.mjs"), join(dir, "contract.test.mjs"));
    const contract = await node(dir, [join(dir, "node_modules/vitest/vitest.mjs"), "run", "contract.test.mjs"]);
    expect(contract).toMatch(/Tests\s+\d+ passed/);

    await compile(dir);
    await expectEmbeddedBackfill(dir);
    await expectQuickstartAndCli(dir, REDIS_DB.npm);
  });

  it("pnpm 10, through the local registry with plain semver ranges (no overrides): the quickstart and the CLI work", async () => {
    const names = ["@superspreader/core", "@superspreader/adapter-bullmq", "@superspreader/store-redis", "@superspreader/source-drizzle", "@superspreader/cli"];
    const dir = createApp(
      "app-pnpm",
      { dependencies: { ...ranges(names), ...Object.fromEntries(THIRD_PARTY.map((n) => [n, pinned(n)])) } },
      `@superspreader:registry=${registry.url}/\n`,
    );
    const [pnpm, pnpmArgs] = pnpmCommand();
    // CI=true makes pnpm default to --frozen-lockfile, and a new app has no lockfile yet.
    await run(pnpm, [...pnpmArgs, "install", "--prefer-offline", "--no-frozen-lockfile"], { cwd: dir, env: appEnv(), timeoutMs: 240_000 });
    const version = await run(pnpm, [...pnpmArgs, "--version"], { cwd: dir, env: appEnv(), timeoutMs: 60_000 });
    expect(version.trim()).toMatch(/^10\./);
    const lock = readFileSync(join(dir, "pnpm-lock.yaml"), "utf8");
    expect(lock).toContain(`'@superspreader/core':\n        specifier: ${ranges(["@superspreader/core"])["@superspreader/core"]}`);
    // Resolved from the registry, to exactly the packed tarball: no overrides, no file: or link: specifiers.
    expect(lock).toContain(`resolution: {integrity: ${integrityOf("@superspreader/core")}}`);
    expect(lock).not.toMatch(/^overrides:|specifier: (file|link):/m);
    expect(existsSync(join(dir, "node_modules/.bin/superspreader"))).toBe(true);

    await compile(dir);
    await expectEmbeddedBackfill(dir);
    await expectQuickstartAndCli(dir, REDIS_DB.pnpm);
  });

  it("npm, through the same local registry with plain semver ranges", async () => {
    const names = ["@superspreader/core", "@superspreader/source-drizzle", "@superspreader/cli"];
    const dir = createApp("app-npm-registry", { dependencies: { ...ranges(names), "drizzle-orm": pinned("drizzle-orm") } }, `@superspreader:registry=${registry.url}/\n`);
    await run("npm", ["install", "--prefer-offline"], { cwd: dir, env: appEnv(), timeoutMs: 240_000 });
    const lock = JSON.parse(readFileSync(join(dir, "package-lock.json"), "utf8")) as {
      packages: Record<string, { version?: string; integrity?: string; resolved?: string }>;
    };
    // From the registry (no file: path), to exactly the packed tarball.
    expect(lock.packages["node_modules/@superspreader/core"]).toMatchObject({ integrity: integrityOf("@superspreader/core") });
    expect(JSON.stringify(lock)).not.toContain("file:");
    // The two apps above ran backfills; here it is enough that the packages load and the CLI starts.
    cpSync(join(FIXTURES, "load-all.cjs"), join(dir, "load-all.cjs"));
    const loaded = JSON.parse(lastLine(await node(dir, ["load-all.cjs", ...names]))) as Record<string, { esm: string[]; cjs: string[] | null }>;
    expect(loaded["@superspreader/core"]?.esm).toEqual(expect.arrayContaining(["createSuperSpreader"]));
    expect(await run("npx", ["--no", "--", "superspreader", "--help"], { cwd: dir, env: appEnv(), timeoutMs: 60_000 })).toContain("superspreader list");
  });
});
