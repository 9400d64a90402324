import { SuperSpreaderError } from "@superspreader/core";
import type { EnqueueResult, JobQueue, JobState, QueueCounts, QueueJob } from "@superspreader/core";
import { assertValidJob, describeValue, functionOption, invalidOption, wholeNumberOption } from "@superspreader/core/adapter";
import { DEFAULT_SCHEMA, Queue, createPostgresBackend } from "bullmq";
import type { JobsOptions, KeepJobs, PgPool } from "bullmq";
import type { Cluster, Redis } from "ioredis";
import { backoffOption } from "./backoff.js";
import type { BullMQBackoff } from "./backoff.js";
import { redisJobReads } from "./lookup.js";
import type { JobReads } from "./lookup.js";
import { postgresJobReads } from "./postgres.js";
import { connectionOption, prefixFor, queueNameOption } from "./validate.js";
import type { PostgresPool } from "./validate.js";

export type { BullMQBackoff } from "./backoff.js";

/** How long BullMQ keeps finished jobs (and so their ids) in Redis. */
export interface BullMQRetention {
  /**
   * Seconds a finished job is kept at least. BullMQ evicts older ones lazily,
   * when another job of the same kind (completed or failed) finishes.
   */
  readonly ageSeconds: number;
  /**
   * Keep at most this many of the newest finished jobs, even if younger than `ageSeconds`.
   * @default no limit
   */
  readonly count?: number;
}

/** Options of {@link createBullMQJobQueue}. */
export interface BullMQJobQueueOptions {
  /**
   * Where BullMQ keeps the queue. Injected: used for commands, never closed.
   * - An ioredis `Redis` or `Cluster` instance (BullMQ on Redis). Producers may keep ioredis'
   *   default `maxRetriesPerRequest` (fail fast); no `keyPrefix`.
   * - A node-postgres `Pool` (BullMQ's PostgreSQL backend), whose `search_path` reaches BullMQ's
   *   schema `"bullmq"` (`new Pool({ connectionString, options: "-c search_path=bullmq" })`),
   *   migrated beforehand with BullMQ's `runMigrations`.
   */
  connection: Redis | Cluster | PostgresPool;
  /**
   * The BullMQ queue name; workers must use the same. No `:`.
   * @default "superspreader"
   */
  queueName?: string;
  /**
   * BullMQ's key prefix; keys are `<prefix>:<queueName>:…`. On Redis Cluster put a
   * hash tag in it (`"{bf}"`) so every key of the queue lands in one slot.
   * Redis only: rejected with a `pg.Pool`, where BullMQ ignores it.
   * @default "bull" (Redis)
   */
  prefix?: string;
  /** Jobs per `addBulk` call (one Redis pipeline, or one SQL statement, each). @default 500 */
  chunkSize?: number;
  /**
   * Retention of completed jobs, or `"forever"`. A job id stays blocked (deduplicated)
   * only while its finished job is retained: once BullMQ evicts it, enqueueing the
   * same id stores and runs the job again. The scheduler re-enqueues a cycle's jobs
   * when a tick is retried or recovered after a crash, seconds to minutes later, so
   * the default keeps a day; the ledger, not the queue, is the record of what is done.
   * Memory grows with the jobs finished per day: about 1 KB per completed job.
   * @default { ageSeconds: 86_400 }
   */
  keepCompleted?: BullMQRetention | "forever";
  /**
   * Retention of jobs that failed for good, or `"forever"`. The runtime has already
   * recorded their ranges as failed in the state store; these are for inspection.
   * @default { ageSeconds: 604_800 } (7 days)
   */
  keepFailed?: BullMQRetention | "forever";
  /**
   * Delay before retries of a failed attempt. An exponential backoff is capped at `maxDelayMs`
   * (BullMQ's own is not); it is computed by the worker (`runBullMQWorker` registers the
   * strategy), so only that runner can consume this queue.
   * @default { type: "exponential", delayMs: 1000, maxDelayMs: 60000 }
   */
  backoff?: BullMQBackoff;
  /**
   * Called with errors the BullMQ `Queue` emits (connection trouble, mostly).
   * Without a listener such an error would crash the process.
   * @default logs them with console.error
   */
  onError?: (error: unknown) => void;
}

function retentionOption(value: unknown, field: string, fallback: BullMQRetention): KeepJobs | false {
  const retention = value ?? fallback;
  if (retention === "forever") return false;
  if (typeof retention !== "object" || retention === null) {
    throw invalidOption(field, `must be { ageSeconds, count? } or "forever", got ${describeValue(value)}`);
  }
  const { ageSeconds, count } = retention as { ageSeconds?: unknown; count?: unknown };
  if (ageSeconds === undefined) throw invalidOption(`${field}.ageSeconds`, "is required (seconds to keep finished jobs)");
  const age = wholeNumberOption(ageSeconds, `${field}.ageSeconds`, 0, 1);
  return count === undefined ? { age } : { age, count: wholeNumberOption(count, `${field}.count`, 0, 1) };
}

function adapterError(message: string, cause: unknown): SuperSpreaderError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new SuperSpreaderError("ADAPTER_ERROR", `${message}: ${reason}`, { cause });
}

/**
 * Creates a JobQueue on BullMQ: bulk, deduplicated by job id, delayed to each job's
 * run time, with priorities, retries and backoff.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * import { createSuperSpreader } from "@superspreader/core";
 * import { createBullMQJobQueue } from "@superspreader/adapter-bullmq";
 * import { createRedisStateStore } from "@superspreader/store-redis";
 *
 * const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
 * const spreader = createSuperSpreader({
 *   queue: createBullMQJobQueue({ connection: redis }),
 *   store: createRedisStateStore({ client: redis }),
 * });
 * ```
 */
export function createBullMQJobQueue(options: BullMQJobQueueOptions): JobQueue {
  if (typeof options !== "object" || options === null) {
    throw invalidOption("options", `must be an object with at least a connection, got ${describeValue(options)}`);
  }
  const connection = connectionOption(options.connection, "producer");
  const queueName = queueNameOption(options.queueName);
  const prefix = prefixFor(connection, options.prefix);
  const chunkSize = wholeNumberOption(options.chunkSize, "chunkSize", 500, 1, 100_000);
  const removeOnComplete = retentionOption(options.keepCompleted, "keepCompleted", { ageSeconds: 86_400 });
  const removeOnFail = retentionOption(options.keepFailed, "keepFailed", { ageSeconds: 604_800 });
  const backoff = backoffOption(options.backoff);
  const onError = functionOption<(error: unknown) => void>(options.onError, "onError", (error) =>
    console.error("[superspreader] BullMQ queue error:", error),
  );

  // An injected client: BullMQ neither duplicates nor closes a shared ioredis instance, nor
  // ends a pg.Pool it did not create, for a Queue.
  const queue =
    connection.kind === "redis"
      ? new Queue(queueName, { connection: connection.client, prefix })
      : // Typed as the Redis queue: this adapter calls only the backend-neutral methods on it.
        (new Queue(queueName, { connection: connection.pool as unknown as PgPool }, createPostgresBackend) as unknown as Queue);
  queue.on("error", (error: unknown) => onError(error));
  let closing: Promise<void> | undefined;

  const reads: JobReads =
    connection.kind === "redis"
      ? redisJobReads(connection.client, (type) => queue.toKey(type))
      : // BullMQ reads another schema only from a config object (when it builds the pool itself);
        // an injected pool always uses the default one.
        postgresJobReads(connection.pool, DEFAULT_SCHEMA, queueName);

  const toBulkJob = (job: QueueJob, now: number): { name: string; data: QueueJob["data"]; opts: JobsOptions } => {
    const opts: JobsOptions = {
      jobId: job.id,
      // BullMQ delays are relative; its delayed score is `timestamp + delay`, so
      // passing our `now` as the timestamp makes the job due at exactly `runAt`.
      timestamp: now,
      delay: Math.max(0, job.runAt - now),
      attempts: job.attempts,
      backoff,
      removeOnComplete,
      removeOnFail,
    };
    if (job.priority !== undefined) opts.priority = job.priority;
    return { name: job.data.kind, data: job.data, opts };
  };

  return {
    capabilities: { priorities: true },

    async enqueue(jobs: readonly QueueJob[]): Promise<EnqueueResult> {
      if (closing) throw new SuperSpreaderError("INVALID_STATE", `the BullMQ job queue ${JSON.stringify(queueName)} is closed; create a new one`);
      if (!Array.isArray(jobs)) {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `jobs must be an array of QueueJob, got ${describeValue(jobs)}`, { field: "jobs" });
      }
      for (const job of jobs) assertValidJob(job);

      let added = 0;
      let duplicates = 0;
      const seen = new Set<string>();
      await reads.ready();
      for (let start = 0; start < jobs.length; start += chunkSize) {
        // A repeated id within the list is a duplicate of its first occurrence.
        const chunk: QueueJob[] = [];
        for (const job of jobs.slice(start, start + chunkSize)) {
          if (seen.has(job.id)) duplicates += 1;
          else chunk.push(job);
          seen.add(job.id);
        }
        if (chunk.length === 0) continue;
        try {
          // addBulk returns a Job per input whether it was stored or was a duplicate (built
          // client-side; BullMQ's add script returns the id either way and only writes a
          // "duplicated" event), so it cannot tell how many were new. One count beforehand
          // does (a multi-key EXISTS on Redis, a SELECT count(*) on PostgreSQL): a chunk wholly
          // present (a retried or recovered tick) is not sent at all; otherwise the whole chunk
          // goes to addBulk, which skips the present ids atomically and keeps their stored jobs
          // (on PostgreSQL one INSERT … ON CONFLICT DO NOTHING for the chunk). A job added by
          // another producer between the count and the add is still never overwritten; it is
          // counted as added.
          const present = await reads.presentCount(chunk.map((job) => job.id));
          duplicates += present;
          if (present === chunk.length) continue;
          const now = Date.now();
          await queue.addBulk(chunk.map((job) => toBulkJob(job, now)));
          added += chunk.length - present;
        } catch (error) {
          throw adapterError(
            `BullMQ enqueue into ${JSON.stringify(queueName)} failed after ${added} new and ${duplicates} duplicate jobs of ${jobs.length}` +
              ` (the chunk in flight may be partly stored; enqueue the same list again to complete it)`,
            error,
          );
        }
      }
      return { added, duplicates };
    },

    async counts(): Promise<QueueCounts> {
      await reads.ready();
      try {
        const c = await queue.getJobCounts("wait", "prioritized", "delayed", "active", "failed");
        // Prioritized jobs are ready to run too; BullMQ keeps them in a separate set.
        return {
          waiting: (c.wait ?? 0) + (c.prioritized ?? 0),
          delayed: c.delayed ?? 0,
          active: c.active ?? 0,
          failed: c.failed ?? 0,
        };
      } catch (error) {
        throw adapterError(`BullMQ counts of ${JSON.stringify(queueName)} failed`, error);
      }
    },

    async lookup(ids: readonly string[]): Promise<JobState[]> {
      if (closing) throw new SuperSpreaderError("INVALID_STATE", `the BullMQ job queue ${JSON.stringify(queueName)} is closed; create a new one`);
      await reads.ready();
      try {
        return await reads.lookup(ids);
      } catch (error) {
        if ((error as { code?: unknown }).code === "INVALID_ARGUMENT") throw error;
        throw adapterError(`BullMQ lookup of ${ids.length} jobs in ${JSON.stringify(queueName)} failed`, error);
      }
    },

    close(): Promise<void> {
      closing ??= queue.close();
      return closing;
    },
  };
}
