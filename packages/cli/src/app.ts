import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createSuperSpreader, type IdSource, type StateStore, type SuperSpreader } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Redis } from "ioredis";
import { CliError, EXIT } from "./errors.js";

/**
 * What a `--config` module exports (named exports, or the same fields on its default export). The module
 * must not start workers: the CLI only calls the spreader's control methods, then exits.
 */
export interface CliConfigModule {
  /** The app's runtime, created with its queue and store, with every backfill defined. */
  readonly spreader: SuperSpreader;
  /** The StateStore the spreader uses; `config get` reads the change history from it. */
  readonly store?: StateStore;
  /** Id sources by backfill name; `status` counts rows with those that can (`capabilities.countRange`). */
  readonly sources?: Readonly<Record<string, IdSource>>;
}

/** What the commands work on: a spreader, and whatever else the connection offers. */
export interface App {
  readonly spreader: SuperSpreader;
  readonly store: StateStore | null;
  readonly sources: Readonly<Record<string, IdSource>>;
  /**
   * True with `--config`: the spreader has the app's queue and definitions and enqueues itself.
   * False with only Redis: changes that need a job (a tick, a new run, a repair) are written to
   * the store and carried out by the watchdog of a worker that defines the backfill.
   */
  readonly hasQueue: boolean;
  close(): Promise<void>;
}

export interface AppOptions {
  readonly redisUrl: string | undefined;
  readonly prefix: string | undefined;
  readonly config: string | undefined;
  readonly cwd: string;
}

/** Hides a password in a Redis URL before it is printed. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url;
  }
}

/**
 * The ESM entry of `tsx/esm/api`, found from the config module's folder (the app's tsx, not ours), read from
 * tsx's export map: its CommonJS build of this entry cannot load the ESM parts it needs.
 */
function tsxApiUrl(from: string): string | null {
  let manifest: string;
  try {
    manifest = createRequire(from).resolve("tsx/package.json");
  } catch {
    return null;
  }
  const exports = (JSON.parse(readFileSync(manifest, "utf8")) as { exports?: Record<string, unknown> }).exports ?? {};
  const entry = exports["./esm/api"] as { import?: string | { default?: string } } | undefined;
  const file = typeof entry?.import === "string" ? entry.import : entry?.import?.default;
  return file ? pathToFileURL(join(dirname(manifest), file)).href : null;
}

async function importModule(path: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path).href;
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    // Node 20 cannot import TypeScript; tsx can, when the app has it installed.
    if ((error as { code?: unknown }).code !== "ERR_UNKNOWN_FILE_EXTENSION" || ![".ts", ".mts", ".cts"].includes(extname(path))) throw error;
    const api = tsxApiUrl(path);
    if (api === null) throw new CliError(EXIT.USAGE, `--config ${path} is TypeScript: install tsx next to it (npm i -D tsx) or compile it to JavaScript`);
    const { tsImport } = (await import(api)) as { tsImport(specifier: string, parentURL: string): Promise<Record<string, unknown>> };
    return tsImport(url, url);
  }
}

async function loadConfigModule(file: string, cwd: string): Promise<App> {
  const path = resolve(cwd, file);
  if (!existsSync(path)) throw new CliError(EXIT.USAGE, `--config ${file}: no such file (resolved to ${path})`);
  let loaded: Record<string, unknown>;
  try {
    loaded = await importModule(path);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(EXIT.FAILED, `--config ${file} failed to load: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
  const fields = (typeof loaded.spreader === "object" ? loaded : (loaded.default ?? {})) as Partial<CliConfigModule>;
  const { spreader, store, sources } = fields;
  if (!spreader || typeof spreader.status !== "function" || typeof spreader.start !== "function") {
    throw new CliError(EXIT.USAGE, `--config ${file} must export \`spreader\` (the app's createSuperSpreader(...) with its backfills defined)`);
  }
  return {
    spreader,
    store: store && typeof store.listConfigChanges === "function" ? store : null,
    sources: sources ?? {},
    hasQueue: true,
    // The module's clients belong to the app; the bin exits the process when done.
    close: () => Promise.resolve(),
  };
}

async function connectRedis(options: AppOptions): Promise<App> {
  const url = options.redisUrl;
  if (!url) {
    throw new CliError(EXIT.USAGE, "no Redis to connect to: pass --redis-url redis://host:6379 or set REDIS_URL (or use --config <module>)");
  }
  if (!/^rediss?:\/\//.test(url)) {
    throw new CliError(EXIT.USAGE, `--redis-url must look like redis://[user:password@]host:port[/db] or rediss://…, got ${JSON.stringify(maskUrl(url))}`);
  }
  // Fail fast instead of retrying: an operator wants to know now that Redis is not there.
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 5_000 });
  // Without a listener ioredis logs every error itself; the first one says why connecting failed
  // (connect() then only rejects with "Connection is closed.").
  let firstError: Error | undefined;
  client.on("error", (error: Error) => {
    firstError ??= error;
  });
  let store: StateStore;
  try {
    store = createRedisStateStore({ client, ...(options.prefix === undefined ? {} : { prefix: options.prefix }) });
  } catch (error) {
    client.disconnect();
    throw error;
  }
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new CliError(
      EXIT.UNREACHABLE,
      `cannot reach Redis at ${maskUrl(url)} (${(firstError ?? (error as Error)).message}): check --redis-url / REDIS_URL and that the server is running`,
      { cause: error },
    );
  }
  return {
    // No queue: core writes what needs one for the workers' watchdogs to carry out.
    spreader: createSuperSpreader({ queue: null, store }),
    store,
    sources: {},
    hasQueue: false,
    async close() {
      await store.close();
      // Not quit(): it waits for a reply, and a Redis that stopped answering would hang the CLI here.
      client.disconnect();
    },
  };
}

/** Opens what the command works on: the `--config` module's spreader, or one over the Redis store. */
export async function openApp(options: AppOptions): Promise<App> {
  return options.config === undefined ? connectRedis(options) : loadConfigModule(options.config, options.cwd);
}
