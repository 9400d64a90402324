/**
 * One kit per driver: PGlite in-process, a real PostgreSQL and a real MariaDB (from the root
 * vitest global setup). Each kit works in a database of its own, created here and dropped at the
 * end, so tests never clean up a shared server.
 */
import { PGlite } from "@electric-sql/pglite";
import { drizzle as drizzleMySql } from "drizzle-orm/mysql2";
import { drizzle as drizzleNodePg } from "drizzle-orm/node-postgres";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import mysql from "mysql2/promise";
import pg from "pg";
import type { Logger } from "drizzle-orm";
import type { MySql2Database } from "drizzle-orm/mysql2";
import type { NodePgDatabase } from "drizzle-orm/node-postgres";
import type { PgliteDatabase } from "drizzle-orm/pglite";

export type KitName = "pglite" | "postgres" | "mariadb";
export const KIT_NAMES: readonly KitName[] = ["pglite", "postgres", "mariadb"];

export interface Kit {
  readonly name: KitName;
  readonly dialect: "pg" | "mysql";
  /** A drizzle database on the kit's own database. */
  readonly db: AnyDb;
  /** Another drizzle database on the same database, whose statements `statements` sees. */
  counted(): { db: AnyDb; statements: string[] };
  /** A second, independent client pool on the same database (a second process, as far as locks go). */
  second(): Promise<{ db: AnyDb; close: () => Promise<void> }>;
  /** Runs raw SQL on the kit's database. */
  query(text: string): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

export type AnyDb = NodePgDatabase | PgliteDatabase | MySql2Database;

export const randomName = (prefix = "ss"): string => `${prefix}_${Math.random().toString(36).slice(2, 10)}`;

function requireUrl(variable: string): string {
  const url = process.env[variable];
  // Fail, never skip: a missing server must not look like a green run.
  if (!url) throw new Error(`${variable} is not set; run through the root vitest config (it starts PostgreSQL and MariaDB)`);
  return url;
}

const counter = (statements: string[]): Logger => ({ logQuery: (query) => void statements.push(query) });

export async function openPglite(): Promise<Kit> {
  const client = new PGlite();
  await client.waitReady;
  return {
    name: "pglite",
    dialect: "pg",
    db: drizzlePglite({ client }),
    counted() {
      const statements: string[] = [];
      return { db: drizzlePglite({ client, logger: counter(statements) }), statements };
    },
    // PGlite is one connection: a second "process" is a second drizzle instance on it.
    second: async () => ({ db: drizzlePglite({ client }), close: async () => {} }),
    query: async (text) => (await client.query<Record<string, unknown>>(text)).rows,
    close: () => client.close(),
  };
}

export async function openPostgres(): Promise<Kit> {
  const url = requireUrl("SUPERSPREADER_PG_URL");
  const database = randomName("ss_store");
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const own = new URL(url);
  own.pathname = `/${database}`;
  const pool = new pg.Pool({ connectionString: own.toString(), max: 12 });
  const pools = [pool];
  return {
    name: "postgres",
    dialect: "pg",
    db: drizzleNodePg({ client: pool }),
    counted() {
      const statements: string[] = [];
      return { db: drizzleNodePg({ client: pool, logger: counter(statements) }), statements };
    },
    async second() {
      const other = new pg.Pool({ connectionString: own.toString(), max: 4 });
      return { db: drizzleNodePg({ client: other }), close: () => other.end() };
    },
    query: async (text) => (await pool.query(text)).rows as Array<Record<string, unknown>>,
    async close() {
      await Promise.all(pools.map((p) => p.end()));
      const cleanup = new pg.Client({ connectionString: url });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}

export async function openMariadb(): Promise<Kit> {
  const url = requireUrl("SUPERSPREADER_MYSQL_URL");
  const database = randomName("ss_store");
  const admin = await mysql.createConnection({ uri: url });
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const own = new URL(url);
  own.pathname = `/${database}`;
  const pool = mysql.createPool({ uri: own.toString(), connectionLimit: 12 });
  return {
    name: "mariadb",
    dialect: "mysql",
    db: drizzleMySql({ client: pool }),
    counted() {
      const statements: string[] = [];
      return { db: drizzleMySql({ client: pool, logger: counter(statements) }), statements };
    },
    async second() {
      const other = mysql.createPool({ uri: own.toString(), connectionLimit: 4 });
      return { db: drizzleMySql({ client: other }), close: () => other.end() };
    },
    query: async (text) => (await pool.query(text))[0] as Array<Record<string, unknown>>,
    async close() {
      await pool.end();
      const cleanup = await mysql.createConnection({ uri: url });
      await cleanup.query(`DROP DATABASE IF EXISTS ${database}`);
      await cleanup.end();
    },
  };
}

export const OPENERS: Record<KitName, () => Promise<Kit>> = { pglite: openPglite, postgres: openPostgres, mariadb: openMariadb };
