import { createBullMQJobQueue } from "@superspreader/adapter-bullmq";
import type { BullMQWorkerOptions } from "@superspreader/adapter-bullmq";
import { createSuperSpreader } from "@superspreader/core";
import type { BackfillConfigInput, BackfillDefinition, SuperSpreader } from "@superspreader/core";
import { createDrizzleIdSource } from "@superspreader/source-drizzle";
import { createRedisStateStore } from "@superspreader/store-redis";
import { sql } from "drizzle-orm";
import type { NodePgDatabase } from "drizzle-orm/node-postgres";
import { bigint, integer, pgTable, text } from "drizzle-orm/pg-core";
import type { Redis } from "ioredis";

/** Everything one chaos run names, random per run so runs never share keys or tables. */
export interface ChaosNames {
  readonly backfill: string;
  /** The one BullMQ queue ticks and batches share. */
  readonly queueName: string;
  readonly storePrefix: string;
  /** The backfilled table: `id bigint primary key, processed integer` (times processed). */
  readonly itemsTable: string;
  /** One row per id per committed handler run: which job, which run of it, which process. */
  readonly logTable: string;
}

/** Names for a run whose random part is `suffix` (letters and digits). */
export function chaosNames(suffix: string): ChaosNames {
  return {
    backfill: "chaos",
    queueName: `chaos-${suffix}`,
    storePrefix: `chaos-${suffix}`,
    itemsTable: `chaos_items_${suffix}`,
    logTable: `chaos_log_${suffix}`,
  };
}

/**
 * 200,000 ids in batches of 500 at 16 batches/s: 400 batches over 13 two-second
 * cycles, so the run lasts at least ~25 s however fast the workers are, and kills
 * drawn in its first 20 s always land while it runs.
 */
export const CHAOS_ROWS = 200_000;
export const CHAOS_CONFIG: BackfillConfigInput = { batchSize: 500, duration: 2, perSecondOnPeak: 16, perSecondOffPeak: 16 };

/**
 * The same lock and stalled-check timing on every worker (the stalled check is
 * queue-wide): a killed process's jobs run again 3–5 s later. Locks are renewed
 * every 1.5 s, so a live process on a busy machine has 1.5 s of slack before its jobs
 * look stalled. BullMQ's stall limit stays at its default (1): a job stranded by two
 * kills is failed by BullMQ without the runtime seeing it, and reconciliation (looking
 * 3 s after a batch's run time) enqueues its range again. The watchdog looks every second.
 */
export const CHAOS_WORKER = { lockDurationMs: 3_000, stalledIntervalMs: 1_000, watchdogIntervalMs: 1_000 } satisfies Partial<BullMQWorkerOptions>;
export const CHAOS_RECONCILE_MS = 3_000;
/** Batches each worker process runs at once. */
export const CHAOS_CONCURRENCY = 4;

/** The drizzle tables of a run. */
export function chaosTables(names: ChaosNames) {
  const items = pgTable(names.itemsTable, {
    id: bigint("id", { mode: "bigint" }).primaryKey(),
    processed: integer("processed").notNull().default(0),
  });
  const log = pgTable(names.logTable, {
    id: bigint("id", { mode: "bigint" }).notNull(),
    batchKey: text("batch_key").notNull(),
    execId: text("exec_id").notNull(),
    pid: integer("pid").notNull(),
    atMs: bigint("at_ms", { mode: "number" }).notNull(),
  });
  return { items, log };
}

/** Creates the run's tables and fills the items table with ids 1..rows. */
export async function createChaosTables(db: NodePgDatabase, names: ChaosNames, rows: number): Promise<void> {
  const items = sql.identifier(names.itemsTable);
  const log = sql.identifier(names.logTable);
  await db.execute(sql`create table ${items} (id bigint primary key, processed integer not null default 0)`);
  await db.execute(
    sql`create table ${log} (id bigint not null, batch_key text not null, exec_id text not null, pid integer not null,
        at_ms bigint not null default (extract(epoch from clock_timestamp()) * 1000)::bigint)`,
  );
  await db.execute(sql`insert into ${items} (id) select g from generate_series(1, ${rows}::bigint) g`);
}

/** Drops the run's tables. */
export async function dropChaosTables(db: NodePgDatabase, names: ChaosNames): Promise<void> {
  await db.execute(sql`drop table if exists ${sql.identifier(names.itemsTable)}, ${sql.identifier(names.logTable)}`);
}

/** Wraps a port (store or queue) the runtime calls; `label` names it ("store", "ticks", "batches"). */
export type PortInterceptor = <T extends object>(port: T, label: string) => T;

/**
 * The runtime every process of a run builds the same way: ticks and batches on one
 * BullMQ queue (any worker runs a tick), state in Redis, ids from the items table.
 * `intercept` sees every port before the runtime does.
 */
export function createChaosSpreader(
  connection: Redis,
  db: NodePgDatabase,
  names: ChaosNames,
  handle: BackfillDefinition["handle"],
  intercept: PortInterceptor = (port) => port,
): SuperSpreader {
  const queue = intercept(createBullMQJobQueue({ connection, queueName: names.queueName }), "queue");
  const store = intercept(createRedisStateStore({ client: connection, prefix: names.storePrefix }), "store");
  const spreader = createSuperSpreader({ queue, store, reconcileAfterMs: CHAOS_RECONCILE_MS });
  const { items } = chaosTables(names);
  spreader.define(names.backfill, { source: createDrizzleIdSource({ db, table: items, column: items.id }), config: CHAOS_CONFIG, handle });
  return spreader;
}
