/**
 * A database of its own on the test PostgreSQL or MariaDB (from the root vitest global setup), created
 * per test file and dropped at the end, as store-drizzle's tests do: no test cleans up a shared server.
 */
import { randomUUID } from "node:crypto";
import { drizzle as drizzleMySql } from "drizzle-orm/mysql2";
import { drizzle as drizzleNodePg } from "drizzle-orm/node-postgres";
import mysql from "mysql2/promise";
import pg from "pg";

export interface TestDatabase {
  /** The URL of the database of its own: what the CLI gets as --database-url. */
  readonly url: string;
  /** A drizzle database on it, for the app side of the test. */
  readonly db: object;
  /** Runs raw SQL on it. */
  query(text: string): Promise<void>;
  /** Closes the pool and drops the database. */
  close(): Promise<void>;
}

function requireUrl(variable: string): string {
  const url = process.env[variable];
  // Fail, never skip: a missing server must not look like a green run.
  if (!url) throw new Error(`${variable} is not set: run the tests through the root vitest config (it starts PostgreSQL and MariaDB)`);
  return url;
}

const databaseName = () => `ss_cli_${randomUUID().replaceAll("-", "").slice(0, 10)}`;

export async function postgresDatabase(): Promise<TestDatabase> {
  const server = requireUrl("SUPERSPREADER_PG_URL");
  const name = databaseName();
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const own = new URL(server);
  own.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: own.toString(), max: 8 });
  return {
    url: own.toString(),
    db: drizzleNodePg({ client: pool }),
    query: async (text) => void (await pool.query(text)),
    async close() {
      await pool.end();
      const cleanup = new pg.Client({ connectionString: server });
      await cleanup.connect();
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await cleanup.end();
    },
  };
}

export async function mariadbDatabase(): Promise<TestDatabase> {
  const server = requireUrl("SUPERSPREADER_MYSQL_URL");
  const name = databaseName();
  const admin = await mysql.createConnection({ uri: server });
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const own = new URL(server);
  own.pathname = `/${name}`;
  const pool = mysql.createPool({ uri: own.toString(), connectionLimit: 8 });
  return {
    url: own.toString(),
    db: drizzleMySql({ client: pool }),
    query: async (text) => void (await pool.query(text)),
    async close() {
      await pool.end();
      const cleanup = await mysql.createConnection({ uri: server });
      await cleanup.query(`DROP DATABASE IF EXISTS ${name}`);
      await cleanup.end();
    },
  };
}
