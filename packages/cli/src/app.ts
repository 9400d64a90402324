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
  /** With `--database-url`: the store-drizzle database, which `migrate` creates or upgrades the tables of. */
  readonly database: AppDatabase | null;
  close(): Promise<void>;
}

/** The SQL database of a `--database-url` connection. */
export interface AppDatabase {
  /** "PostgreSQL" or "MySQL/MariaDB", for messages. */
  readonly label: StoreKind;
  /** The URL with its password masked. */
  readonly url: string;
  /** The store's table prefix (`--table-prefix`, else store-drizzle's default). */
  readonly tablePrefix: string;
  /** store-drizzle's `migrateStateStore` on this database and prefix. */
  migrate(): Promise<{ readonly from: number; readonly to: number }>;
}

export interface AppOptions {
  readonly redisUrl: string | undefined;
  /** A PostgreSQL (`postgres://`, `postgresql://`) or MySQL/MariaDB (`mysql://`, `mariadb://`) URL: the store-drizzle state store. */
  readonly databaseUrl?: string | undefined;
  readonly prefix: string | undefined;
  /** store-drizzle's `tablePrefix`, with `databaseUrl`. */
  readonly tablePrefix?: string | undefined;
  readonly config: string | undefined;
  readonly cwd: string;
}

/** What the connection is to, for messages: "Redis", "PostgreSQL" or "MySQL/MariaDB". */
export type StoreKind = "Redis" | "PostgreSQL" | "MySQL/MariaDB";

const DATABASE_SCHEMES: Readonly<Record<string, { dialect: "pg" | "mysql"; label: StoreKind }>> = {
  "postgres:": { dialect: "pg", label: "PostgreSQL" },
  "postgresql:": { dialect: "pg", label: "PostgreSQL" },
  "mysql:": { dialect: "mysql", label: "MySQL/MariaDB" },
  "mariadb:": { dialect: "mysql", label: "MySQL/MariaDB" },
};

/** The dialect of a `--database-url`, from its scheme; a usage error naming the value for any other. */
export function databaseKind(url: string): { dialect: "pg" | "mysql"; label: StoreKind } {
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0].toLowerCase();
  const kind = scheme === undefined ? undefined : DATABASE_SCHEMES[scheme];
  if (kind === undefined) {
    throw new CliError(
      EXIT.USAGE,
      `--database-url must be a postgres://, postgresql://, mysql:// or mariadb:// URL (e.g. postgres://user:password@host:5432/db), got ${JSON.stringify(maskUrl(url))}`,
    );
  }
  return kind;
}

/** The words of a connection error: AggregateError (Node's happy eyeballs) has no message of its own. */
function reasonOf(error: unknown): string {
  const e = error as { message?: unknown; code?: unknown; errors?: unknown } | undefined;
  if (typeof e?.message === "string" && e.message !== "") return e.message;
  const first = Array.isArray(e?.errors) ? (e.errors[0] as { message?: unknown } | undefined) : undefined;
  if (typeof first?.message === "string" && first.message !== "") return first.message;
  return typeof e?.code === "string" ? e.code : String(error);
}

/** Hides a password in a Redis or database URL before it is printed. */
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
    database: null,
    // The module's clients belong to the app; the bin exits the process when done.
    close: () => Promise.resolve(),
  };
}

async function connectRedis(options: AppOptions): Promise<App> {
  const url = options.redisUrl;
  if (!url) {
    throw new CliError(
      EXIT.USAGE,
      "no store to connect to: pass --redis-url redis://host:6379 or set REDIS_URL, or pass --database-url postgres://… (or mysql://…) or set SUPERSPREADER_DATABASE_URL (or use --config <module>)",
    );
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
    throw unreachable("Redis", url, (firstError ?? (error as Error)).message, "--redis-url / REDIS_URL", error);
  }
  return storeApp(store, null, async () => {
    await store.close();
    // Not quit(): it waits for a reply, and a Redis that stopped answering would hang the CLI here.
    client.disconnect();
  });
}

/** Exit code 4, in one line: what could not be reached, why, and which flag and variable to check. */
function unreachable(label: StoreKind, url: string, reason: string, where: string, cause: unknown): CliError {
  return new CliError(EXIT.UNREACHABLE, `cannot reach ${label} at ${maskUrl(url)} (${reason}): check ${where} and that the server is running`, { cause });
}

/** An app over a store and no queue: core writes what needs one for the workers' watchdogs to carry out. */
function storeApp(store: StateStore, database: AppDatabase | null, close: () => Promise<void>): App {
  return { spreader: createSuperSpreader({ queue: null, store }), store, sources: {}, hasQueue: false, database, close };
}

/** A client pool of the database's driver, as drizzle takes it; loaded only when a database URL is given. */
interface Pool {
  readonly db: object;
  /** One round trip: fails when the server cannot be reached or refuses the login. */
  probe(): Promise<void>;
  end(): Promise<void>;
}

async function openPool(dialect: "pg" | "mysql", url: string): Promise<Pool> {
  if (dialect === "pg") {
    const [{ default: pg }, { drizzle }] = await Promise.all([import("pg"), import("drizzle-orm/node-postgres")]);
    const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5_000 });
    // An idle client whose server went away emits here; the command that needs it fails by itself.
    pool.on("error", () => {});
    return {
      db: drizzle({ client: pool }),
      probe: async () => void (await pool.query("SELECT 1")),
      end: () => pool.end(),
    };
  }
  const [mysql, { drizzle }] = await Promise.all([import("mysql2/promise"), import("drizzle-orm/mysql2")]);
  // mysql2 reads the URL's parts, whatever its scheme; mariadb:// is the same protocol.
  const pool = (mysql.default ?? mysql).createPool({ uri: url.replace(/^mariadb:/i, "mysql:"), connectionLimit: 4, connectTimeout: 5_000 });
  return {
    db: drizzle({ client: pool }),
    probe: async () => void (await pool.query("SELECT 1")),
    end: () => pool.end(),
  };
}

async function connectDatabase(url: string, options: AppOptions): Promise<App> {
  const { dialect, label } = databaseKind(url);
  const { createDrizzleStateStore, migrateStateStore } = await import("@superspreader/store-drizzle");
  const pool = await openPool(dialect, url);
  const tablePrefix = options.tablePrefix;
  let store: StateStore;
  try {
    store = createDrizzleStateStore({ db: pool.db, ...(tablePrefix === undefined ? {} : { tablePrefix }) });
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  try {
    await pool.probe();
  } catch (error) {
    await pool.end().catch(() => {});
    throw unreachable(label, url, reasonOf(error), "--database-url / SUPERSPREADER_DATABASE_URL", error);
  }
  const database: AppDatabase = {
    label,
    url: maskUrl(url),
    tablePrefix: tablePrefix ?? "superspreader_",
    migrate: () => migrateStateStore(pool.db, tablePrefix === undefined ? {} : { tablePrefix }),
  };
  return storeApp(store, database, async () => {
    await store.close();
    await pool.end();
  });
}

/**
 * Opens what the command works on: the `--config` module's spreader, or one over the Redis store, or over
 * store-drizzle's tables in the database of `databaseUrl`. Give at most one of `redisUrl` and `databaseUrl`.
 */
export async function openApp(options: AppOptions): Promise<App> {
  if (options.config !== undefined) return loadConfigModule(options.config, options.cwd);
  return options.databaseUrl === undefined ? connectRedis(options) : connectDatabase(options.databaseUrl, options);
}
