/**
 * One "kit" per database (PGlite in-process, a real PostgreSQL, a real MariaDB):
 * a drizzle db plus helpers to create per-test tables with given ids, so the same
 * test body runs on all three (drizzle's own pattern: shared tests per dialect family).
 */
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { bigint as myBigint, double, decimal, int, mysqlTable, serial as mySerial, smallint as mySmallint, varchar } from "drizzle-orm/mysql-core";
import { drizzle as drizzleMySql } from "drizzle-orm/mysql2";
import { drizzle as drizzleNodePg } from "drizzle-orm/node-postgres";
import { bigint as pgBigint, integer, numeric, pgTable, real, serial as pgSerial, smallint as pgSmallint, text, uuid } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import mysql from "mysql2/promise";
import pg from "pg";
import type { IdRange } from "@superspreader/core";
import type { Column, SQL, SQLWrapper, Table } from "drizzle-orm";
import type { MySqlDatabase, MySqlQueryResultHKT, PreparedQueryHKTBase } from "drizzle-orm/mysql-core";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { idRange } from "../src/index.js";
import type { DrizzleDatabase } from "../src/index.js";

/** The integer key kinds every dialect is tested with. */
export type IdKind = "integer" | "serial" | "smallint" | "bigint-number" | "bigint";
export const ID_KINDS: readonly IdKind[] = ["integer", "serial", "smallint", "bigint-number", "bigint"];

/** A test table: an integer key `id` of some kind, and a few other columns. */
export interface TestTable {
  readonly name: string;
  readonly table: Table;
  readonly id: Column;
  /** `id % 3`, for scope tests. */
  readonly grp: Column;
  /** Incremented by the batch tests; null at first. */
  readonly touched: Column;
  /** Non-integer columns, for the bad-column tests. */
  readonly others: readonly Column[];
  /** A query builder that increments `touched` in the window (the builder form of batchExecute's statement). */
  touchBuilder(window: IdRange): SQLWrapper;
}

export interface Kit {
  readonly name: string;
  readonly dialect: "pg" | "mysql";
  readonly db: DrizzleDatabase;
  /** The largest id a column of this kind holds. */
  maxOf(kind: IdKind): bigint;
  /** Creates a table (a random name unless given) with rows of these ids; dropped by `dropTables`. */
  createTable(kind: IdKind, ids: readonly bigint[], name?: string): Promise<TestTable>;
  dropTables(): Promise<void>;
  /** Runs `fn` in a transaction of the typed db, handing it the transaction object. */
  transaction<T>(fn: (tx: DrizzleDatabase) => Promise<T>): Promise<T>;
  /** Rows of the table matching `where`. */
  count(t: TestTable, where?: SQL): Promise<number>;
  /** A drizzle table of this dialect with just an integer `id`, not created in the database. */
  bareTable(name: string): { table: Table; id: Column };
  /** A table of the other dialect, for the mismatch test. */
  foreignTable(): { table: Table; id: Column };
  close(): Promise<void>;
}

export const randomName = (prefix = "ss"): string => `${prefix}_${Math.random().toString(36).slice(2, 10)}`;

const PG_MAX: Record<IdKind, bigint> = {
  integer: 2_147_483_647n,
  serial: 2_147_483_647n,
  smallint: 32_767n,
  "bigint-number": 9_223_372_036_854_775_807n,
  bigint: 9_223_372_036_854_775_807n,
};
// bigint and serial are UNSIGNED on MySQL: up to 2^64 - 1.
const MYSQL_MAX: Record<IdKind, bigint> = {
  integer: 2_147_483_647n,
  serial: 18_446_744_073_709_551_615n,
  smallint: 32_767n,
  "bigint-number": 18_446_744_073_709_551_615n,
  bigint: 18_446_744_073_709_551_615n,
};

type AnyPgDb = PgDatabase<PgQueryResultHKT>;
type AnyMySqlDb = MySqlDatabase<MySqlQueryResultHKT, PreparedQueryHKTBase>;
const touched = sql`coalesce(${sql.identifier("touched")}, 0) + 1`;

function pgSchema(name: string, kind: IdKind, db?: AnyPgDb) {
  const id =
    kind === "integer" ? integer("id") : kind === "serial" ? pgSerial("id") : kind === "smallint" ? pgSmallint("id")
    : pgBigint("id", { mode: kind === "bigint" ? "bigint" : "number" });
  const table = pgTable(name, {
    id: id.primaryKey(),
    grp: integer("grp"),
    touched: integer("touched"),
    label: text("label"),
    price: numeric("price"),
    ratio: real("ratio"),
    ref: uuid("ref"),
  });
  const ddlType = { integer: "integer", serial: "serial", smallint: "smallint", "bigint-number": "bigint", bigint: "bigint" }[kind];
  const ddl = sql`create table ${sql.identifier(name)} (id ${sql.raw(ddlType)} primary key, grp integer, touched integer, label text, price numeric, ratio real, ref uuid)`;
  const t: TestTable = {
    name, table, id: table.id, grp: table.grp, touched: table.touched, others: [table.label, table.price, table.ratio, table.ref],
    touchBuilder: (w) => db!.update(table).set({ touched }).where(idRange(table.id, w.beginId, w.endId)),
  };
  return { t, ddl };
}

function mysqlSchema(name: string, kind: IdKind, db?: AnyMySqlDb) {
  const id =
    kind === "integer" ? int("id") : kind === "serial" ? mySerial("id") : kind === "smallint" ? mySmallint("id")
    : myBigint("id", { mode: kind === "bigint" ? "bigint" : "number", unsigned: true });
  const table = mysqlTable(name, {
    id: id.primaryKey(),
    grp: int("grp"),
    touched: int("touched"),
    label: varchar("label", { length: 50 }),
    price: decimal("price"),
    ratio: double("ratio"),
  });
  const ddlType = { integer: "int", serial: "serial", smallint: "smallint", "bigint-number": "bigint unsigned", bigint: "bigint unsigned" }[kind];
  const ddl = sql`create table ${sql.identifier(name)} (id ${sql.raw(ddlType)} primary key, grp int, touched int, label varchar(50), price decimal(10,2), ratio double)`;
  const t: TestTable = {
    name, table, id: table.id, grp: table.grp, touched: table.touched, others: [table.label, table.price, table.ratio],
    touchBuilder: (w) => db!.update(table).set({ touched }).where(idRange(table.id, w.beginId, w.endId)),
  };
  return { t, ddl };
}

function requireUrl(variable: string): string {
  const url = process.env[variable];
  // Fail, never skip: a missing server must not look like a green run.
  if (!url) throw new Error(`${variable} is not set; run through the root vitest config (SUPERSPREADER_SERVERS=postgres,mariadb)`);
  return url;
}

function makeKit(
  name: string,
  db: { dialect: "pg"; db: AnyPgDb & DrizzleDatabase } | { dialect: "mysql"; db: AnyMySqlDb & DrizzleDatabase },
  closeClient: () => Promise<void>,
): Kit {
  const created: string[] = [];
  const { dialect } = db;
  const textCast = dialect === "pg" ? sql.raw("text") : sql.raw("char");
  return {
    name,
    dialect,
    db: db.db,
    maxOf: (kind) => (dialect === "pg" ? PG_MAX : MYSQL_MAX)[kind],
    async createTable(kind, ids, tableName = randomName()) {
      const { t, ddl } = db.dialect === "pg" ? pgSchema(tableName, kind, db.db) : mysqlSchema(tableName, kind, db.db);
      created.push(tableName);
      await db.db.execute(ddl);
      for (let i = 0; i < ids.length; i += 500) {
        // Ids are bigints we generated: inlined as literals so no driver or mapper rounds them.
        const rows = ids.slice(i, i + 500).map((id) => sql.raw(`(${id}, ${id % 3n})`));
        await db.db.execute(sql`insert into ${sql.identifier(tableName)} (id, grp) values ${sql.join(rows, sql`, `)}`);
      }
      return t;
    },
    async dropTables() {
      for (const table of created.splice(0)) await db.db.execute(sql`drop table if exists ${sql.identifier(table)}`);
    },
    transaction: (fn) => (db.dialect === "pg" ? db.db.transaction((tx) => fn(tx)) : db.db.transaction((tx) => fn(tx))),
    async count(t, where) {
      const rows = (await db.db.select({ n: sql`cast(count(*) as ${textCast})` }).from(t.table).where(where)) as Array<{ n: string }>;
      return Number(rows[0]?.n);
    },
    bareTable: (tableName) => {
      const t = dialect === "pg" ? pgSchema(tableName, "integer").t : mysqlSchema(tableName, "integer").t;
      return { table: t.table, id: t.id };
    },
    foreignTable: () => (dialect === "pg" ? mysqlSchema("foreign_t", "integer").t : pgSchema("foreign_t", "integer").t),
    close: closeClient,
  };
}

export async function openPglite(): Promise<Kit> {
  const client = new PGlite();
  await client.waitReady;
  return makeKit("pglite", { dialect: "pg", db: drizzlePglite({ client }) }, () => client.close());
}

export async function openPostgres(): Promise<Kit> {
  const pool = new pg.Pool({ connectionString: requireUrl("SUPERSPREADER_PG_URL"), max: 4 });
  return makeKit("postgres", { dialect: "pg", db: drizzleNodePg({ client: pool }) }, () => pool.end());
}

export async function openMariadb(): Promise<Kit> {
  const pool = mysql.createPool({ uri: requireUrl("SUPERSPREADER_MYSQL_URL"), connectionLimit: 4 });
  return makeKit("mariadb", { dialect: "mysql", db: drizzleMySql({ client: pool }) }, () => pool.end());
}
