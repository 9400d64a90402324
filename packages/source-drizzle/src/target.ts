import { SuperSpreaderError, parseId } from "@superspreader/core";
import { Column, SQL, Table, getTableColumns, getTableName, is, sql } from "drizzle-orm";
import { MySqlDatabase, MySqlTable } from "drizzle-orm/mysql-core";
import { PgDatabase, PgTable } from "drizzle-orm/pg-core";
import type { SQLWrapper } from "drizzle-orm";

/**
 * A drizzle database (or transaction) of the PostgreSQL or MySQL dialect: node-postgres,
 * PGlite, mysql2, postgres.js, … Typed structurally because a union of `PgDatabase` and
 * `MySqlDatabase` cannot call `.select()` (TS2349), and the structural type also
 * survives drizzle's renaming of those classes in 1.0. The dialect is read from the table.
 */
export interface DrizzleDatabase {
  // `any` on purpose: each dialect's `select` is overloaded and generic, and no
  // common signature is assignable from both.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  select: (...args: any[]) => any;
  execute: (query: SQLWrapper) => PromiseLike<unknown>;
}

/** The dialects we can query. */
export type Dialect = "pg" | "mysql";

/** A checked `{ db, table, column, where }`, ready for queries. */
export interface Target {
  readonly dialect: Dialect;
  readonly db: DrizzleDatabase;
  readonly table: Table;
  readonly column: Column;
  readonly where: SQL | undefined;
  /** `"table"."column"`, for messages. */
  readonly label: string;
}

/** What every query helper takes to find its rows. */
export interface TargetOptions {
  /** The drizzle database or transaction to query. */
  db: DrizzleDatabase;
  /** The table, from `pgTable(...)` or `mysqlTable(...)`. */
  table: Table;
  /** The table's integer key column (integer, serial, smallint, bigint in either mode). */
  column: Column;
  /** Optional scope: only rows matching this condition count. @default undefined (every row) */
  where?: SQL | undefined;
}

// Matches what drizzle's integer columns report from getSQLType() on both dialects
// (PgInteger "integer", PgBigSerial64 "bigserial", MySqlBigInt64 "bigint unsigned", …),
// and custom types declared with those SQL names.
const INTEGER_SQL_TYPE = /^(tinyint|smallint|mediumint|int|integer|bigint|serial|smallserial|bigserial|int2|int4|int8)( unsigned)?$/i;

function invalid(field: string, message: string): SuperSpreaderError {
  return new SuperSpreaderError("INVALID_ARGUMENT", message, { field });
}

/** Names what the caller passed, for messages: a primitive's value, an object's class. */
export function kindOf(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return String(value);
  const ctor = (value as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === "string" && ctor.name !== "" ? ctor.name : "object";
}

/** Checks db, table, column and where once, before any query runs. */
export function resolveTarget(options: TargetOptions, factory: string): Target {
  if (typeof options !== "object" || options === null) {
    throw invalid("options", `${factory} needs an options object { db, table, column }, got ${kindOf(options)}`);
  }
  const { db, table, column, where } = options;
  if (!is(table, Table)) {
    throw invalid("table", `${factory}: table must be a drizzle table from pgTable() or mysqlTable(), got ${kindOf(table)}`);
  }
  const tableName = getTableName(table);
  const dialect: Dialect | undefined = is(table, PgTable) ? "pg" : is(table, MySqlTable) ? "mysql" : undefined;
  if (dialect === undefined) {
    throw invalid(
      "table",
      `${factory}: table "${tableName}" is a ${kindOf(table)}; only PostgreSQL (pgTable) and MySQL (mysqlTable) tables are supported`,
    );
  }
  if (!is(column, Column)) {
    throw invalid("column", `${factory}: column must be a column of table "${tableName}" (e.g. ${tableName}.id), got ${kindOf(column)}`);
  }
  const label = `"${tableName}"."${column.name}"`;
  if (!Object.values(getTableColumns(table)).includes(column)) {
    const owner = is(column.table, Table) ? `table "${getTableName(column.table)}"` : "another table";
    throw invalid("column", `${factory}: column "${column.name}" belongs to ${owner}, not to table "${tableName}"; pass a column of "${tableName}"`);
  }
  const sqlType = column.getSQLType();
  if (!INTEGER_SQL_TYPE.test(sqlType)) {
    throw invalid(
      "column",
      `${factory}: column ${label} has type ${sqlType} (${column.columnType}); ids must come from an integer column ` +
        `(integer, serial, smallint, bigint); for other keys, backfill over an integer column of the table`,
    );
  }
  if (typeof db !== "object" || db === null || typeof db.select !== "function" || typeof db.execute !== "function") {
    throw invalid("db", `${factory}: db must be a drizzle database, e.g. drizzle({ client: pool }), got ${kindOf(db)}`);
  }
  const dbDialect: Dialect | undefined = is(db, PgDatabase) ? "pg" : is(db, MySqlDatabase) ? "mysql" : undefined;
  if (dbDialect !== undefined && dbDialect !== dialect) {
    throw invalid(
      "db",
      `${factory}: db is a ${dbDialect === "pg" ? "PostgreSQL" : "MySQL"} database but table "${tableName}" is a ${dialect === "pg" ? "PostgreSQL" : "MySQL"} table; pass matching ones`,
    );
  }
  if (where !== undefined && !is(where, SQL)) {
    throw invalid("where", `${factory}: where must be a drizzle condition such as eq(${tableName}.status, "active"), got ${kindOf(where)}`);
  }
  return { dialect, db, table, column, where, label };
}

/**
 * `expr` cast to text. Ids travel as decimal strings because drivers decode
 * 64-bit integers lossily (mysql2 returns numbers) or as strings (node-postgres),
 * and the column's own mapper may be `mode: "number"`.
 */
export function asText(dialect: Dialect, expr: SQLWrapper): SQL {
  // MySQL has no `text` cast target; PostgreSQL's `char` would be char(1).
  return dialect === "pg" ? sql`cast(${expr} as text)` : sql`cast(${expr} as char)`;
}

/** Runs `select cast(<expr> as text) from table where <where>` and returns each row's value. */
export async function selectText(target: Target, expr: SQLWrapper, where: SQL | undefined, orderBy?: SQLWrapper): Promise<unknown[]> {
  let query = target.db.select({ value: asText(target.dialect, expr) }).from(target.table).where(where);
  if (orderBy !== undefined) query = query.orderBy(orderBy);
  const rows = (await query) as Array<{ value: unknown }>;
  return rows.map((row) => row.value);
}

/** Parses an id read from the database, with a message that points at the column. */
export function parseDbId(value: unknown, target: Target, what: string): bigint {
  const text = typeof value === "string" ? value : Buffer.isBuffer(value) ? value.toString("utf8") : value;
  try {
    return parseId(text, what);
  } catch (error) {
    throw new SuperSpreaderError(
      "INVALID_ARGUMENT",
      `${what} of ${target.label} is ${String(text)}, which is not a superspreader id (a non-negative integer); ` +
        `narrow the source with where (e.g. gte(column, 0)) or pick another column`,
      { field: "column", cause: error },
    );
  }
}

/** The message to quote from a failed query. */
export function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // drizzle wraps driver errors in DrizzleQueryError ("Failed query: <sql> params: …");
  // the driver's own message is what says what went wrong.
  if ("query" in error && error.cause instanceof Error) return error.cause.message;
  return error.message;
}
