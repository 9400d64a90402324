import {
  createMemoryIdSource,
  createMemoryJobQueue,
  createMemoryWorker,
  createSuperSpreader,
  type BackfillConfigInput,
  type BatchContext,
  type HealthIndicator,
  type IdSource,
  type JobQueue,
  type MemoryWorker,
  type QueueJob,
  type StateStore,
  type SuperSpreader,
} from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Redis } from "ioredis";
import { redisUrl } from "./helpers.js";

/** One backfill of a test app: its id space, config and (optionally) handler. */
export interface TestBackfill {
  readonly maxId: number;
  readonly config: BackfillConfigInput;
  readonly handle?: (context: BatchContext) => Promise<unknown>;
  /** The definition's health indicators. */
  readonly health?: readonly HealthIndicator[];
  /** Instead of ids 1..maxId: this source (a table that grows, for extend). */
  readonly source?: IdSource;
}

/** A batch job, by its backfill, cycle and first id. */
export interface Victim {
  readonly backfill: string;
  readonly cycle: number;
  readonly beginId: bigint;
}

export interface MemoryAppOptions {
  /** @default 100 */
  readonly watchdogIntervalMs?: number;
  /** The runtime's `reconcileAfterMs`. @default 60000 */
  readonly reconcileAfterMs?: number;
  /** Batch jobs the queue silently drops (deleted by hand, lost in a Redis restart); their outstanding entries stay. */
  readonly lose?: readonly Victim[];
  /** Batch jobs dropped and never recorded as outstanding either: ranges lost from every record. */
  readonly forget?: readonly Victim[];
}

const matches = (victims: readonly Victim[] | undefined, backfill: string, cycle: number, beginId: bigint) =>
  victims?.some((v) => v.backfill === backfill && v.cycle === cycle && v.beginId === beginId) ?? false;

const isVictim = (victims: readonly Victim[] | undefined) => (job: QueueJob) =>
  job.data.kind === "batch" && matches(victims, job.data.backfill, job.data.cycle, BigInt(job.data.beginId));

/** The worker side of an app: its spreader, its worker, and what it opened. */
export interface MemoryApp {
  readonly spreader: SuperSpreader;
  readonly worker: MemoryWorker;
  /** Stops the worker and closes the connection (never the test's Redis server). */
  close(): Promise<void>;
}

/**
 * An app whose workers run in this test process on the in-memory queue, with its state in the
 * test's real Redis under `prefix`: what the CLI, which has no queue, reads and changes. The
 * worker's watchdog runs every `watchdogIntervalMs`, so requests written by the CLI are carried
 * out quickly.
 */
export function memoryApp(prefix: string, backfills: Readonly<Record<string, TestBackfill>>, options: MemoryAppOptions = {}): MemoryApp {
  const client = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const memory = createMemoryJobQueue();
  const dropped = (job: QueueJob) => isVictim(options.lose)(job) || isVictim(options.forget)(job);
  const queue: JobQueue = { ...memory, enqueue: (jobs) => memory.enqueue(jobs.filter((job) => !dropped(job))) };
  const redisStore = createRedisStateStore({ client, prefix });
  const store: StateStore = {
    ...redisStore,
    addOutstanding: (name, runId, entries) => redisStore.addOutstanding(name, runId, entries.filter((e) => !matches(options.forget, name, e.cycle, e.beginId))),
  };
  const spreader = createSuperSpreader({ queue, store, ...(options.reconcileAfterMs === undefined ? {} : { reconcileAfterMs: options.reconcileAfterMs }) });
  for (const [name, { maxId, config, handle, health, source }] of Object.entries(backfills)) {
    spreader.define(name, { source: source ?? createMemoryIdSource({ minId: 1, maxId }), config, handle: handle ?? (async () => {}), ...(health ? { health } : {}) });
  }
  const worker = createMemoryWorker({ queue: memory, spreader, concurrency: 4, watchdogIntervalMs: options.watchdogIntervalMs ?? 100 });
  worker.start();
  return {
    spreader,
    worker,
    async close() {
      await worker.close();
      client.disconnect();
    },
  };
}
