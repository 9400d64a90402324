/**
 * The PostgreSQL-only chaos run (issue #12): jobs on BullMQ's PostgreSQL backend, state in
 * `@superspreader/store-drizzle`, rows in the same database: no Redis at all. Each run gets a
 * database of its own (created, migrated, dropped), so runs never share BullMQ's tables or the
 * store's.
 */
import { createBullMQJobQueue } from "@superspreader/adapter-bullmq";
import { createSuperSpreader } from "@superspreader/core";
import type { BackfillConfigInput, BackfillDefinition, SuperSpreader, TransactionalBatchContext } from "@superspreader/core";
import { createDrizzleIdSource } from "@superspreader/source-drizzle";
import { createDrizzleStateStore, migrateStateStore } from "@superspreader/store-drizzle";
import type { TransactionOf } from "@superspreader/store-drizzle";
import { runMigrations } from "bullmq";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import type { NodePgDatabase } from "drizzle-orm/node-postgres";
import pg from "pg";
import { CHAOS_RECONCILE_MS, chaosTables, createChaosTables } from "./chaos.js";
import type { ChaosNames, PortInterceptor } from "./chaos.js";

export { CHAOS_CONCURRENCY, CHAOS_ROWS, CHAOS_WORKER } from "./chaos.js";

/**
 * 200,000 ids in batches of 500 at 8 batches/s: 400 batches over 25 two-second cycles, so
 * planning lasts at least ~50 s however fast the workers are. Half the rate of the Redis chaos
 * run: each kill waits until the killed process is back (a tsx process takes seconds to start on
 * a loaded machine), so the eight kills take ~30–45 s and must all land while ticks still plan.
 */
export const PG_CHAOS_CONFIG: BackfillConfigInput = { batchSize: 500, duration: 2, perSecondOnPeak: 8, perSecondOffPeak: 8 };

/**
 * `transactional`: the handler writes through the store's transaction, which also records the
 * range (exactly once). `plain`: the handler commits its own transaction and the runtime records
 * the range afterwards (at least once: a kill in between runs the range again).
 */
export type PgChaosMode = "transactional" | "plain";

/** Everything one PostgreSQL-only chaos run names (`storePrefix` is unused: the store has a database of its own). */
export interface PgChaosNames extends ChaosNames {
  readonly mode: PgChaosMode;
  /** The run's own database on the test server. */
  readonly database: string;
  /** Its URL (the test server's, with the database's name). */
  readonly url: string;
}

/** Names for a run of `mode` on the server at `serverUrl`, whose random part is `suffix` (letters and digits). */
export function pgChaosNames(mode: PgChaosMode, serverUrl: string, suffix: string): PgChaosNames {
  const database = `ss_chaos_pg_${mode}_${suffix}`;
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return { mode, backfill: "chaos", database, url: url.toString(), queueName: "chaos", storePrefix: "", itemsTable: "chaos_items", logTable: "chaos_log" };
}

/**
 * The pool BullMQ's PostgreSQL backend runs on: its SQL calls its functions unqualified, so the
 * search_path must be BullMQ's schema. A worker holds one client for LISTEN.
 */
export function openQueuePool(names: PgChaosNames, max: number): pg.Pool {
  return new pg.Pool({ connectionString: names.url, max, options: "-c search_path=bullmq" });
}

/** The pool of the rows, the store and the id source (default search_path). */
export function openAppPool(names: PgChaosNames, max: number): pg.Pool {
  return new pg.Pool({ connectionString: names.url, max });
}

/**
 * Creates the run's database on the server at `serverUrl`, runs BullMQ's migrations and the
 * store's in it, and creates and fills the items table with ids 1..rows.
 */
export async function createPgChaosDatabase(serverUrl: string, names: PgChaosNames, rows: number): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${names.database}`);
  } finally {
    await admin.end();
  }
  const client = new pg.Client({ connectionString: names.url });
  await client.connect();
  try {
    await runMigrations(client);
    const db = drizzle({ client });
    await migrateStateStore(db);
    // The same tables as the Redis chaos run's, in this database.
    await createChaosTables(db, names, rows);
    await db.execute(sql`analyze ${sql.identifier(names.itemsTable)}`);
  } finally {
    await client.end();
  }
}

/**
 * Drops the run's database. A pool's `end()` resolves before its connections are gone, and a
 * `DROP … WITH (FORCE)` meanwhile terminates them with an error their client no longer listens
 * for (an uncaught exception): wait up to 5 s for them to leave, and force only then.
 */
export async function dropPgChaosDatabase(serverUrl: string, names: PgChaosNames): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    for (let waited = 0; waited < 5_000; waited += 100) {
      const { rows } = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1", [names.database]);
      if (rows[0]?.n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await admin.query(`DROP DATABASE IF EXISTS ${names.database} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** The transaction a transactional handler of this run writes through. */
export type PgChaosTx = TransactionOf<NodePgDatabase>;

/** The handler of a run: plain, or writing through the store's transaction. */
export type PgChaosHandler =
  | { readonly transactional: false; handle: BackfillDefinition["handle"] }
  | { readonly transactional: true; handle: (context: TransactionalBatchContext<PgChaosTx>) => Promise<void> };

/**
 * The runtime every process of a run builds the same way: ticks and batches on one BullMQ queue
 * on PostgreSQL (any worker runs a tick), state in the same database through store-drizzle, ids
 * from the items table. `intercept` sees every port before the runtime does.
 */
export function createPgChaosSpreader(
  queuePool: pg.Pool,
  db: NodePgDatabase,
  names: PgChaosNames,
  handler: PgChaosHandler,
  intercept: PortInterceptor = (port) => port,
): SuperSpreader {
  const queue = intercept(createBullMQJobQueue({ connection: queuePool, queueName: names.queueName }), "queue");
  const store = intercept(createDrizzleStateStore({ db }), "store");
  const spreader = createSuperSpreader({ queue, store, reconcileAfterMs: CHAOS_RECONCILE_MS });
  const { items } = chaosTables(names);
  const source = createDrizzleIdSource({ db, table: items, column: items.id });
  if (handler.transactional) spreader.define<PgChaosTx>(names.backfill, { transactional: true, source, config: PG_CHAOS_CONFIG, handle: handler.handle });
  else spreader.define(names.backfill, { source, config: PG_CHAOS_CONFIG, handle: handler.handle });
  return spreader;
}
