import { runMigrations } from "bullmq";
import pg from "pg";

/** The test PostgreSQL server's URL; a missing URL fails the test rather than skipping it. */
export function postgresUrl(): string {
  const url = process.env.SUPERSPREADER_PG_URL;
  if (!url) throw new Error("SUPERSPREADER_PG_URL is not set: run the tests through the root vitest config (it starts PostgreSQL)");
  return url;
}

/** A pool whose search_path reaches BullMQ's schema, as the README tells users to create it. */
export function openPool(url: string, max = 4): pg.Pool {
  return new pg.Pool({ connectionString: url, max, options: "-c search_path=bullmq" });
}

/** A database of this test file's own (created, migrated, dropped at the end), so files never share BullMQ's tables. */
export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** Creates a fresh database on the test server and runs BullMQ's migrations in it. */
export async function createTestDatabase(label: string, migrate = true): Promise<TestDatabase> {
  const name = `ss_bullmq_${label}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: postgresUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(postgresUrl());
  url.pathname = `/${name}`;
  if (migrate) {
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      await runMigrations(client);
    } finally {
      await client.end();
    }
  }
  return {
    url: url.toString(),
    async drop() {
      const dropper = new pg.Client({ connectionString: postgresUrl() });
      await dropper.connect();
      try {
        await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    },
  };
}
