import { createBullMQJobQueue } from "@superspreader/adapter-bullmq";
import type { BullMQWorkerOptions } from "@superspreader/adapter-bullmq";
import { batchJobId, createSuperSpreader } from "@superspreader/core";
import type { BackfillConfigInput, BackfillDefinition, SuperSpreader } from "@superspreader/core";
import { createDrizzleIdSource, idRange } from "@superspreader/source-drizzle";
import { createRedisStateStore } from "@superspreader/store-redis";
import { sql } from "drizzle-orm";
import type { NodePgDatabase } from "drizzle-orm/node-postgres";
import type { Cluster } from "ioredis";
import { chaosTables, type ChaosNames } from "./chaos.js";

/**
 * Everything one Redis Cluster run names (issue #13). Several backfills share one runtime, one
 * store prefix and one BullMQ queue. Each backfill's state is in the slot of its own name (the
 * store's hash tag), the names picked so that they sit on different primaries; the queue's keys
 * are all in the slot of `queuePrefix`'s hash tag. Each backfill has the chaos suite's two tables
 * (ids with a `processed` counter, and a log row per id per committed run), so its checks apply.
 */
export interface ClusterRunNames {
  readonly queueName: string;
  /** BullMQ's prefix, a hash tag: `{…}`. */
  readonly queuePrefix: string;
  readonly storePrefix: string;
  /** One per backfill, `backfill` being its name; `queueName` and `storePrefix` as above. */
  readonly backfills: readonly ChaosNames[];
}

/** Names for a run whose random part is `suffix` (letters and digits). */
export function clusterRunNames(suffix: string, backfills: readonly string[], queueTag: string): ClusterRunNames {
  const queueName = `cluster-${suffix}`;
  const storePrefix = `cluster-${suffix}`;
  return {
    queueName,
    queuePrefix: `{${queueTag}}`,
    storePrefix,
    backfills: backfills.map((backfill, i) => ({
      backfill,
      queueName,
      storePrefix,
      itemsTable: `cluster_items_${suffix}_${i}`,
      logTable: `cluster_log_${suffix}_${i}`,
    })),
  };
}

/** Rows per backfill: 40 batches of 400, at 4 batches/s per backfill a run of ~10 s, longer than a failover. */
export const CLUSTER_ROWS = 16_000;
export const CLUSTER_CONFIG: BackfillConfigInput = { batchSize: 400, duration: 2, perSecondOnPeak: 4, perSecondOffPeak: 4 };
/** Worker processes, and batches each runs at once. */
export const CLUSTER_WORKERS = 8;
export const CLUSTER_CONCURRENCY = 2;
/** As the chaos suite: a stranded job runs again 3–5 s later; lost ranges are looked up 3 s after their run time. */
export const CLUSTER_WORKER = { lockDurationMs: 3_000, stalledIntervalMs: 1_000, watchdogIntervalMs: 1_000 } satisfies Partial<BullMQWorkerOptions>;
export const CLUSTER_RECONCILE_MS = 3_000;

/** The runtime every process of a run builds the same way, on a Redis Cluster client. */
export function createClusterSpreader(connection: Cluster, db: NodePgDatabase, names: ClusterRunNames, handle: BackfillDefinition["handle"]): SuperSpreader {
  const spreader = createSuperSpreader({
    queue: createBullMQJobQueue({ connection, queueName: names.queueName, prefix: names.queuePrefix }),
    store: createRedisStateStore({ client: connection, prefix: names.storePrefix }),
    reconcileAfterMs: CLUSTER_RECONCILE_MS,
  });
  for (const backfill of names.backfills) {
    const { items } = chaosTables(backfill);
    spreader.define(backfill.backfill, { source: createDrizzleIdSource({ db, table: items, column: items.id }), config: CLUSTER_CONFIG, handle });
  }
  return spreader;
}

/**
 * The handler the workers run: adds 1 to each row's counter and logs every id with the job's id,
 * `execId` and the pid, in one transaction, after `pauseMs` (so batches are in flight when the
 * primary dies).
 */
export function logRanges(db: NodePgDatabase, names: ClusterRunNames, pauseMs: number): BackfillDefinition["handle"] {
  const byName = new Map(names.backfills.map((b) => [b.backfill, chaosTables(b)]));
  return async ({ backfill, runId, cycle, beginId, endId }) => {
    const tables = byName.get(backfill);
    if (!tables) throw new Error(`no tables for backfill ${backfill}`);
    const { items, log } = tables;
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    const batchKey = batchJobId(backfill, runId, cycle, { beginId, endId });
    const execId = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    await db.transaction(async (tx) => {
      const range = idRange(items.id, beginId, endId);
      await tx.update(items).set({ processed: sql`${items.processed} + 1` }).where(range);
      await tx.execute(sql`insert into ${log} (id, batch_key, exec_id, pid) select ${items.id}, ${batchKey}, ${execId}, ${process.pid} from ${items} where ${range}`);
    });
  };
}
