import { SuperSpreaderError, isSuperSpreaderError } from "@superspreader/core";
import { describeValue, invalidOption } from "@superspreader/core/adapter";
import { is, sql } from "drizzle-orm";
import { MySqlDatabase } from "drizzle-orm/mysql-core";
import { PgDatabase } from "drizzle-orm/pg-core";
import type { SQL, SQLWrapper } from "drizzle-orm";

/** The SQL dialects the store speaks: PostgreSQL (node-postgres, PGlite, …) and MySQL/MariaDB (mysql2). */
export type Dialect = "pg" | "mysql";

/**
 * What the store needs of a drizzle database or transaction. Typed structurally because a
 * union of `PgDatabase` and `MySqlDatabase` cannot call `.transaction()` (TS2349).
 */
export interface SqlDatabase {
  execute(query: SQLWrapper): PromiseLike<unknown>;
  transaction<T>(work: (tx: SqlDatabase) => Promise<T>, config?: { isolationLevel?: "read committed" }): Promise<T>;
}

/** Rows (column name → value) and the number of rows a write affected. */
export interface Result {
  readonly rows: Array<Record<string, unknown>>;
  readonly count: number;
}

/** The dialect of `db`: the one given, else the one its drizzle class says. */
export function resolveDialect(db: unknown, given: unknown, field = "db"): Dialect {
  if (typeof db !== "object" || db === null || typeof (db as { execute?: unknown }).execute !== "function" || typeof (db as { transaction?: unknown }).transaction !== "function") {
    throw invalidOption(field, `must be a drizzle database (drizzle-orm/node-postgres, drizzle-orm/pglite or drizzle-orm/mysql2), got ${describeValue(db)}`);
  }
  if (given !== undefined) {
    if (given !== "pg" && given !== "mysql") throw invalidOption("dialect", `must be "pg" or "mysql", got ${describeValue(given)}`);
    return given;
  }
  if (is(db, PgDatabase)) return "pg";
  if (is(db, MySqlDatabase)) return "mysql";
  throw invalidOption(
    field,
    `is a ${describeValue(db)}, neither a PostgreSQL nor a MySQL drizzle database; pass dialect: "pg" or "mysql" if it wraps one`,
  );
}

/** Runs `query` and normalises the three drivers' result shapes. */
export async function execute(db: SqlDatabase, query: SQL): Promise<Result> {
  const raw = (await db.execute(query)) as unknown;
  // mysql2: [rows | ResultSetHeader, fields]
  if (Array.isArray(raw)) {
    const first = raw[0] as unknown;
    if (Array.isArray(first)) return { rows: first as Array<Record<string, unknown>>, count: first.length };
    return { rows: [], count: Number((first as { affectedRows?: number } | undefined)?.affectedRows ?? 0) };
  }
  // node-postgres: { rows, rowCount }; PGlite: { rows, affectedRows }
  const result = raw as { rows?: Array<Record<string, unknown>>; rowCount?: number | null; affectedRows?: number };
  return { rows: result.rows ?? [], count: Number(result.rowCount ?? result.affectedRows ?? 0) };
}

/** True when the error (or one of its causes) is a unique-key violation. */
export function isDuplicateKey(error: unknown): boolean {
  return hasCause(error, (e) => e.code === "23505" || e.code === "ER_DUP_ENTRY" || e.errno === 1062);
}

/** True when the error (or one of its causes) says a table does not exist. */
export function isMissingTable(error: unknown): boolean {
  return hasCause(error, (e) => e.code === "42P01" || e.code === "ER_NO_SUCH_TABLE" || e.errno === 1146);
}

function hasCause(error: unknown, test: (e: { code?: unknown; errno?: unknown }) => boolean): boolean {
  for (let e = error, depth = 0; typeof e === "object" && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (test(e as { code?: unknown; errno?: unknown })) return true;
  }
  return false;
}

/** A database failure as a superspreader error naming the operation; superspreader errors pass unchanged. */
export function translate(error: unknown, operation: string): Error {
  if (isSuperSpreaderError(error)) return error;
  const reasons: string[] = [];
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    reasons.push(e instanceof Error ? e.message : String(e));
  }
  return new SuperSpreaderError("ADAPTER_ERROR", `drizzle state store: ${operation} failed: ${reasons.join("; caused by: ")}`, { cause: error });
}

/**
 * The SQL that differs between the dialects. Everything else is written once: ids travel as
 * decimal strings cast to DECIMAL (a driver never sees them as floats), decimals and bigints
 * come back cast to text, doubles come back as doubles.
 */
export interface Flavour {
  readonly dialect: Dialect;
  /** An id (or id ± 1) parameter, exact: `CAST('…' AS DECIMAL(21,0))`. */
  id(value: bigint): SQL;
  /** A column read back as text, so no driver turns a DECIMAL or BIGINT into a float. */
  text(column: SQL): SQL;
  /** A double-precision parameter (PostgreSQL cannot infer a bare one inside expressions). */
  double(value: number | null): SQL;
  /** `INSERT INTO <table>`, aliased `t` on PostgreSQL so `cur()` can name the stored row. */
  insertInto(table: SQL): SQL;
  /** The upsert clause: on a conflict on `keys`, run `set` (written with `cur` and `excluded`). */
  onConflict(keys: string, set: SQL): SQL;
  /** On a conflict, keep the stored row. */
  onConflictKeep(keys: string, firstKey: string): SQL;
  /** The stored row's column inside `onConflict`'s `set`. */
  cur(column: string): SQL;
  /** The proposed row's column inside `onConflict`'s `set`. */
  excluded(column: string): SQL;
}

export function flavour(dialect: Dialect): Flavour {
  const pg = dialect === "pg";
  return {
    dialect,
    id: (value) => sql`CAST(${value.toString()} AS DECIMAL(21,0))`,
    text: (column) => (pg ? sql`CAST(${column} AS text)` : sql`CAST(${column} AS CHAR)`),
    // mysql2 inlines a number as a literal, which MySQL types by itself.
    double: (value) => (pg ? sql`CAST(${value} AS double precision)` : sql`${value}`),
    insertInto: (table) => (pg ? sql`INSERT INTO ${table} AS t` : sql`INSERT INTO ${table}`),
    onConflict: (keys, set) => (pg ? sql`ON CONFLICT (${sql.raw(keys)}) DO UPDATE SET ${set}` : sql`ON DUPLICATE KEY UPDATE ${set}`),
    // MySQL has no DO NOTHING; assigning a key column to itself changes nothing.
    onConflictKeep: (keys, firstKey) =>
      pg ? sql`ON CONFLICT (${sql.raw(keys)}) DO NOTHING` : sql`ON DUPLICATE KEY UPDATE ${sql.identifier(firstKey)} = ${sql.identifier(firstKey)}`,
    cur: (column) => (pg ? sql`t.${sql.identifier(column)}` : sql`${sql.identifier(column)}`),
    // VALUES() rather than MySQL 8's row alias: MariaDB knows only VALUES().
    excluded: (column) => (pg ? sql`EXCLUDED.${sql.identifier(column)}` : sql`VALUES(${sql.identifier(column)})`),
  };
}

/**
 * Runs several writes that need no result: one statement on PostgreSQL (data-modifying CTEs,
 * which must touch different rows), one after the other on MySQL, which has none.
 */
export async function writeAll(db: SqlDatabase, dialect: Dialect, statements: readonly SQL[]): Promise<void> {
  if (statements.length === 0) return;
  if (dialect === "mysql" || statements.length === 1) {
    for (const statement of statements) await execute(db, statement);
    return;
  }
  const ctes = statements.map((statement, i) => sql`${sql.raw(`w${i}`)} AS (${statement})`);
  await execute(db, sql`WITH ${sql.join(ctes, sql`, `)} SELECT 1`);
}
