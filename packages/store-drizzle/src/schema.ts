import { SuperSpreaderError } from "@superspreader/core";
import { describeValue, invalidOption } from "@superspreader/core/adapter";
import { sql } from "drizzle-orm";
import type { SQL } from "drizzle-orm";
import { type Dialect, type SqlDatabase, execute, isMissingTable, resolveDialect, translate } from "./dialect.js";

/** The version of the tables this package writes. Bumped by every change to them, with a step in `STEPS`. */
export const SCHEMA_VERSION = 2;

/** The default prefix of every table name. */
export const DEFAULT_TABLE_PREFIX = "superspreader_";

/** Options of {@link migrateStateStore}. */
export interface MigrateStateStoreOptions {
  /**
   * The dialect, when `db` is not a drizzle `PgDatabase` or `MySqlDatabase` itself (a wrapper).
   *
   * @default read from `db`
   */
  readonly dialect?: Dialect;
  /**
   * Prefix of the store's table names, as given to `createDrizzleStateStore`: lower-case letters,
   * digits and `_`, starting with a letter or `_`, at most 40 characters.
   *
   * @default "superspreader_"
   */
  readonly tablePrefix?: string;
}

/** What {@link migrateStateStore} found and did. */
export interface MigrationResult {
  /** The schema version found (0: no tables yet). */
  readonly from: number;
  /** The schema version now (always {@link SCHEMA_VERSION}). */
  readonly to: number;
}

/** The table names of one prefix. */
export interface Tables {
  readonly prefix: string;
  readonly schema: SQL;
  readonly docs: SQL;
  readonly configChanges: SQL;
  readonly runs: SQL;
  readonly minutes: SQL;
  readonly done: SQL;
  readonly deferred: SQL;
  readonly failed: SQL;
  readonly outstanding: SQL;
  readonly starts: SQL;
  readonly budgets: SQL;
  readonly budgetMembers: SQL;
  readonly claims: SQL;
  /** Since version 2: collected results, and per run their count, bytes and drops. */
  readonly output: SQL;
  readonly outputRuns: SQL;
}

const TABLES = {
  schema: "schema",
  docs: "docs",
  configChanges: "config_changes",
  runs: "runs",
  minutes: "minutes",
  done: "done",
  deferred: "deferred",
  failed: "failed",
  outstanding: "outstanding",
  starts: "starts",
  budgets: "budgets",
  budgetMembers: "budget_members",
  claims: "claims",
  output: "output",
  outputRuns: "output_runs",
} as const;

export function checkTablePrefix(prefix: unknown): string {
  if (prefix === undefined) return DEFAULT_TABLE_PREFIX;
  // 40 + the longest suffix (15) stays under PostgreSQL's 63-character identifiers.
  if (typeof prefix !== "string" || !/^[a-z_][a-z0-9_]{0,39}$/.test(prefix)) {
    throw invalidOption("tablePrefix", `must be 1–40 lower-case letters, digits or "_", starting with a letter or "_", got ${describeValue(prefix)}`);
  }
  return prefix;
}

export function tables(prefix: string): Tables {
  const entries = Object.entries(TABLES).map(([key, suffix]) => [key, sql.identifier(`${prefix}${suffix}`)]);
  return { prefix, ...Object.fromEntries(entries) } as Tables;
}

/** Column types per dialect. Names and run ids are ASCII; MySQL compares them case-sensitively only with a binary collation. */
function types(dialect: Dialect) {
  const pg = dialect === "pg";
  return {
    name: sql.raw(pg ? "varchar(200)" : "VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin"),
    member: sql.raw(pg ? "varchar(200)" : "VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
    runId: sql.raw(pg ? "varchar(64)" : "VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin"),
    // Ids up to 10^20 - 1 (core's MAX_ID), exact; sums of range sizes exact far beyond 2^53.
    id: sql.raw("DECIMAL(20,0)"),
    sum: sql.raw("DECIMAL(40,0)"),
    int: sql.raw("BIGINT"),
    double: sql.raw(pg ? "double precision" : "DOUBLE"),
    text: sql.raw(pg ? "text" : "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
    serial: sql.raw(pg ? "bigserial" : "BIGINT AUTO_INCREMENT"),
    engine: sql.raw(pg ? "" : " ENGINE=InnoDB"),
  };
}

/** The statements that create schema version 1. `IF NOT EXISTS`, so a step cut short by a crash can run again. */
function version1(t: Tables, dialect: Dialect): SQL[] {
  const c = types(dialect);
  const run = sql`name ${c.name} NOT NULL, run_id ${c.runId} NOT NULL`;
  const table = (name: SQL, body: SQL) => sql`CREATE TABLE IF NOT EXISTS ${name} (${body})${c.engine}`;
  const index = (name: string, on: SQL, columns: string) =>
    dialect === "pg"
      ? sql`CREATE INDEX IF NOT EXISTS ${sql.identifier(`${t.prefix}${name}`)} ON ${on} (${sql.raw(columns)})`
      : // MySQL has no CREATE INDEX IF NOT EXISTS (MariaDB does); the indexes are declared in the tables instead.
        null;
  const mysqlIndex = (name: string, columns: string) => (dialect === "mysql" ? sql`, INDEX ${sql.identifier(`${t.prefix}${name}`)} (${sql.raw(columns)})` : sql``);
  return [
    table(t.docs, sql`name ${c.name} NOT NULL PRIMARY KEY, version ${c.int} NOT NULL, value ${c.text} NOT NULL`),
    table(t.configChanges, sql`id ${c.serial} PRIMARY KEY, name ${c.name} NOT NULL, change_json ${c.text} NOT NULL${mysqlIndex("config_changes_name", "name, id")}`),
    index("config_changes_name", t.configChanges, "name, id"),
    table(
      t.runs,
      sql`${run}, batches_done ${c.int} NOT NULL DEFAULT 0, ids_done ${c.sum} NOT NULL DEFAULT 0, batches_failed ${c.int} NOT NULL DEFAULT 0,
        batches_deferred ${c.int} NOT NULL DEFAULT 0, batches_lost ${c.int} NOT NULL DEFAULT 0, consecutive_failures ${c.int} NOT NULL DEFAULT 0,
        last_done_at ${c.double}, PRIMARY KEY (name, run_id)`,
    ),
    table(
      t.minutes,
      sql`${run}, minute ${c.double} NOT NULL, ids ${c.sum} NOT NULL, batches ${c.int} NOT NULL, failures ${c.int} NOT NULL,
        handler_ms ${c.int} NOT NULL, late_ms ${c.int} NOT NULL, PRIMARY KEY (name, run_id, minute)`,
    ),
    table(t.done, sql`${run}, begin_id ${c.id} NOT NULL, end_id ${c.id} NOT NULL, PRIMARY KEY (name, run_id, begin_id)`),
    table(
      t.deferred,
      sql`${run}, begin_id ${c.id} NOT NULL, end_id ${c.id} NOT NULL, cycle ${c.int} NOT NULL, PRIMARY KEY (name, run_id, begin_id, end_id, cycle)${mysqlIndex("deferred_order", "name, run_id, end_id, cycle")}`,
    ),
    index("deferred_order", t.deferred, "name, run_id, end_id, cycle"),
    table(
      t.failed,
      sql`${run}, begin_id ${c.id} NOT NULL, end_id ${c.id} NOT NULL, cycle ${c.int} NOT NULL, error ${c.text} NOT NULL, error_name ${c.text} NOT NULL,
        attempts ${c.int} NOT NULL, at ${c.double} NOT NULL, PRIMARY KEY (name, run_id, begin_id, end_id)${mysqlIndex("failed_order", "name, run_id, end_id, cycle")}`,
    ),
    index("failed_order", t.failed, "name, run_id, end_id, cycle"),
    table(
      t.outstanding,
      sql`${run}, begin_id ${c.id} NOT NULL, end_id ${c.id} NOT NULL, cycle ${c.int} NOT NULL, check_at ${c.double} NOT NULL,
        PRIMARY KEY (name, run_id, begin_id, end_id, cycle)${mysqlIndex("outstanding_due", "name, run_id, check_at")}`,
    ),
    index("outstanding_due", t.outstanding, "name, run_id, check_at"),
    table(t.starts, sql`${run}, per_second ${c.double}, burst ${c.int} NOT NULL, tat ${c.double} NOT NULL, prev_tat ${c.double}, PRIMARY KEY (name, run_id)`),
    table(t.budgets, sql`budget_key ${c.name} NOT NULL PRIMARY KEY, version ${c.int} NOT NULL`),
    table(
      t.budgetMembers,
      sql`budget_key ${c.name} NOT NULL, member ${c.member} NOT NULL, weight ${c.double} NOT NULL, want ${c.double} NOT NULL, cap ${c.double} NOT NULL,
        at ${c.double} NOT NULL, PRIMARY KEY (budget_key, member)`,
    ),
    table(t.claims, sql`${run}, begin_id ${c.id} NOT NULL, end_id ${c.id} NOT NULL, PRIMARY KEY (name, run_id, begin_id, end_id)`),
  ].filter((s): s is SQL => s !== null);
}

/**
 * Version 2: collected output. New tables only (`IF NOT EXISTS`, so a step cut short on MySQL, whose DDL
 * does not roll back, runs again), so version 1's tables and rows are left exactly as they were.
 */
function version2(t: Tables, dialect: Dialect): SQL[] {
  const c = types(dialect);
  const run = sql`name ${c.name} NOT NULL, run_id ${c.runId} NOT NULL`;
  const table = (name: SQL, body: SQL) => sql`CREATE TABLE IF NOT EXISTS ${name} (${body})${c.engine}`;
  return [
    table(t.outputRuns, sql`${run}, kept ${c.int} NOT NULL DEFAULT 0, bytes ${c.int} NOT NULL DEFAULT 0, dropped ${c.int} NOT NULL DEFAULT 0, PRIMARY KEY (name, run_id)`),
    // seq: the result's position in the run (0, 1, …), which listOutput's cursor is; one result per range.
    table(
      t.output,
      sql`${run}, seq ${c.int} NOT NULL, begin_id ${c.id} NOT NULL, end_id ${c.id} NOT NULL, at ${c.double} NOT NULL, result ${c.text} NOT NULL,
        PRIMARY KEY (name, run_id, seq), UNIQUE (name, run_id, begin_id, end_id)`,
    ),
  ];
}

/** Step k takes the tables from version k - 1 to version k. */
const STEPS: ReadonlyArray<(t: Tables, dialect: Dialect) => SQL[]> = [version1, version2];

/** A 32-bit FNV-1a hash, signed, for the advisory lock key of a prefix. */
function lockKey(prefix: string): number {
  let hash = 0x811c9dc5;
  for (const ch of `superspreader:${prefix}`) {
    hash ^= ch.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

function newerError(prefix: string, found: number): SuperSpreaderError {
  return new SuperSpreaderError(
    "INVALID_STATE",
    `the tables "${prefix}*" are at schema version ${found}, newer than this @superspreader/store-drizzle knows (${SCHEMA_VERSION}); upgrade @superspreader/store-drizzle`,
  );
}

async function readVersion(db: SqlDatabase, t: Tables): Promise<number> {
  const { rows } = await execute(db, sql`SELECT version FROM ${t.schema} WHERE id = 1`);
  const raw = rows[0]?.version;
  return raw === undefined || raw === null ? 0 : Number(raw);
}

/**
 * Creates or upgrades the store's tables to {@link SCHEMA_VERSION}. Explicit, never implicit: the
 * store refuses to run on missing or older tables. Idempotent (a second call finds the version
 * current and changes nothing) and safe to run from many processes at once: they queue on a lock
 * (PostgreSQL `pg_advisory_xact_lock`, MySQL `GET_LOCK`) and all but the first find nothing to do.
 * Refuses tables of a newer version. On PostgreSQL the whole migration is one transaction; MySQL
 * commits every `CREATE TABLE` by itself, so a migration cut short is completed by the next call.
 *
 * @example
 * ```ts
 * import pg from "pg";
 * import { drizzle } from "drizzle-orm/node-postgres";
 * import { migrateStateStore } from "@superspreader/store-drizzle";
 *
 * const db = drizzle({ client: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * const { from, to } = await migrateStateStore(db); // { from: 0, to: 1 } the first time, { from: 1, to: 1 } after
 * ```
 */
export async function migrateStateStore(db: unknown, options: MigrateStateStoreOptions = {}): Promise<MigrationResult> {
  if (typeof options !== "object" || options === null) throw invalidOption("options", `must be an object, got ${describeValue(options)}`);
  const dialect = resolveDialect(db, options.dialect);
  const t = tables(checkTablePrefix(options.tablePrefix));
  const database = db as SqlDatabase;
  // READ COMMITTED on PostgreSQL: a migration that waited for the lock must see the version the one before it wrote.
  const isolation = dialect === "pg" ? ({ isolationLevel: "read committed" } as const) : undefined;
  try {
    return await database.transaction(async (tx) => {
      if (dialect === "pg") {
        await execute(tx, sql`SELECT pg_advisory_xact_lock(CAST(${0x53535052} AS integer), CAST(${lockKey(t.prefix)} AS integer))`);
        return await migrateLocked(tx, dialect, t);
      }
      // GET_LOCK belongs to the connection, which the transaction holds for us; MySQL commits each
      // DDL statement by itself, the lock is what keeps two migrations apart.
      const name = `superspreader:migrate:${t.prefix}`.slice(0, 64);
      const { rows } = await execute(tx, sql`SELECT GET_LOCK(${name}, 60) AS got`);
      if (Number(rows[0]?.got) !== 1) {
        throw new SuperSpreaderError("CONFLICT", `migrateStateStore: another migration of "${t.prefix}*" held the lock for 60 s; try again`);
      }
      try {
        return await migrateLocked(tx, dialect, t);
      } finally {
        await execute(tx, sql`SELECT RELEASE_LOCK(${name})`);
      }
    }, isolation);
  } catch (error) {
    throw translate(error, "migrateStateStore");
  }
}

async function migrateLocked(tx: SqlDatabase, dialect: Dialect, t: Tables): Promise<MigrationResult> {
  await execute(tx, sql`CREATE TABLE IF NOT EXISTS ${t.schema} (id INTEGER NOT NULL PRIMARY KEY, version INTEGER NOT NULL)${types(dialect).engine}`);
  const from = await readVersion(tx, t);
  if (from > SCHEMA_VERSION) throw newerError(t.prefix, from);
  if (from === SCHEMA_VERSION) return { from, to: from };
  for (let version = from + 1; version <= SCHEMA_VERSION; version++) {
    for (const statement of (STEPS[version - 1] as (t: Tables, dialect: Dialect) => SQL[])(t, dialect)) await execute(tx, statement);
  }
  if (from === 0) await execute(tx, sql`INSERT INTO ${t.schema} (id, version) VALUES (1, ${SCHEMA_VERSION})`);
  else await execute(tx, sql`UPDATE ${t.schema} SET version = ${SCHEMA_VERSION} WHERE id = 1`);
  return { from, to: SCHEMA_VERSION };
}

/**
 * Checks once that the tables exist at this version (the store's first call pays one query).
 * A failure is not remembered, so a store created before `migrateStateStore` ran works after it.
 */
export function schemaCheck(db: SqlDatabase, t: Tables): () => Promise<void> {
  let checked: Promise<void> | null = null;
  return () => {
    checked ??= (async () => {
      let found: number;
      try {
        found = await readVersion(db, t);
      } catch (error) {
        if (isMissingTable(error)) {
          throw new SuperSpreaderError(
            "INVALID_STATE",
            `the drizzle state store's tables "${t.prefix}*" do not exist; call migrateStateStore(db${t.prefix === DEFAULT_TABLE_PREFIX ? "" : `, { tablePrefix: "${t.prefix}" }`}) once before using the store`,
            { cause: error },
          );
        }
        throw translate(error, "schema check");
      }
      if (found > SCHEMA_VERSION) throw newerError(t.prefix, found);
      if (found < SCHEMA_VERSION) {
        throw new SuperSpreaderError(
          "INVALID_STATE",
          `the tables "${t.prefix}*" are at schema version ${found}, this @superspreader/store-drizzle needs ${SCHEMA_VERSION}; call migrateStateStore(db) to upgrade them`,
        );
      }
    })().catch((error: unknown) => {
      checked = null;
      throw error;
    });
    return checked;
  };
}
