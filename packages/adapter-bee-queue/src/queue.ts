import type BeeQueue from "bee-queue";
import { SuperSpreaderError } from "@superspreader/core";
import type { EnqueueResult, JobQueue, JobState, QueueCounts, QueueJob } from "@superspreader/core";
import { assertValidJob, describeValue, invalidOption, wholeNumberOption } from "@superspreader/core/adapter";
import { backoffOption } from "./backoff.js";
import type { BeeQueueBackoff } from "./backoff.js";
import { errorMessage, openQueue, resolveLocation } from "./connection.js";
import type { BeeQueueRedis, QueueLocation } from "./connection.js";
import { toStoredJob } from "./envelope.js";
import { checkIds, lookupJobs } from "./scripts.js";

export type { BeeQueueBackoff } from "./backoff.js";

/** Options of {@link createBeeQueueJobQueue}. Give either `queue` or `redis`. */
export interface BeeQueueJobQueueOptions {
  /**
   * An existing Bee-Queue instance to save jobs with. It is never closed by the
   * adapter. Create it with `storeJobs: false` (or `getEvents: true`): otherwise
   * Bee-Queue keeps every job it saves in memory.
   * @default none: the adapter opens (and on `close()` closes) its own from `redis`
   */
  readonly queue?: BeeQueue;
  /**
   * Where to connect when no `queue` is given: a redis URL or node_redis v3 options.
   * @default none: required unless `queue` is given
   */
  readonly redis?: BeeQueueRedis;
  /**
   * Bee-Queue queue name (keys `<prefix>:<queueName>:*`); workers must use the same.
   * Ignored when `queue` is given.
   * @default "superspreader"
   */
  readonly queueName?: string;
  /**
   * Bee-Queue key prefix; workers must use the same. Ignored when `queue` is given.
   * @default "bq"
   */
  readonly prefix?: string;
  /**
   * Spacing of retries after a failed attempt. An exponential backoff is capped at
   * `maxDelayMs` (Bee-Queue's own is not) by a strategy `runBeeQueueWorker` registers, so only
   * that runner can retry these jobs. Delayed retries (`"fixed"`, `"exponential"`) need a
   * worker with `activateDelayedJobs` on, like delayed jobs.
   * @default { type: "exponential", delayMs: 1000, maxDelayMs: 60000 }
   */
  readonly backoff?: BeeQueueBackoff;
  /**
   * Jobs sent to Redis per pipeline by `enqueue`. Larger is faster but holds more
   * in one round trip.
   * @default 500
   */
  readonly chunkSize?: number;
}

/**
 * Creates a superspreader JobQueue on Bee-Queue. Bee-Queue has no priorities, so
 * `QueueJob.priority` is ignored (`capabilities.priorities` is false). Pair it with
 * {@link runBeeQueueWorker} on the same Redis, queue name and prefix.
 *
 * @example
 * ```ts
 * const queue = createBeeQueueJobQueue({ redis: process.env.REDIS_URL!, queueName: "backfills" });
 * const spreader = createSuperSpreader({ queue, store: createRedisStateStore({ client: new Redis(process.env.REDIS_URL!) }) });
 * ```
 */
export function createBeeQueueJobQueue(options: BeeQueueJobQueueOptions): JobQueue {
  const injected = options.queue;
  if (injected !== undefined && options.redis !== undefined) {
    throw invalidOption("queue", "and redis exclude each other: give either queue (an existing Bee-Queue) or redis (to open one)");
  }
  if (injected !== undefined && (typeof injected !== "object" || injected === null || typeof injected.saveAll !== "function")) {
    throw invalidOption("queue", `must be a Bee-Queue instance, got ${describeValue(injected)}`);
  }
  const location: QueueLocation | null = injected ? null : resolveLocation(options);
  const backoff = backoffOption(options.backoff);
  const chunkSize = wholeNumberOption(options.chunkSize, "chunkSize", 500, 1);

  let opening: Promise<BeeQueue> | null = null;
  let closing: Promise<void> | null = null;

  const getQueue = async (): Promise<BeeQueue> => {
    if (closing) throw new SuperSpreaderError("INVALID_STATE", "this Bee-Queue JobQueue is closed; create a new one");
    if (injected) {
      await injected.ready();
      return injected;
    }
    opening ??= openQueue(
      location as QueueLocation,
      // A producer only: no blocking client, no event subscription, and no
      // in-memory map of saved jobs (it would only ever grow without events).
      { isWorker: false, getEvents: false, storeJobs: false, activateDelayedJobs: false },
      // Connection trouble also fails the command in flight, which reports it.
      () => undefined,
    ).catch((error: unknown) => {
      opening = null;
      throw error;
    });
    return opening;
  };

  const saveChunk = async (queue: BeeQueue, chunk: readonly QueueJob[]): Promise<EnqueueResult> => {
    const now = Date.now();
    const beeJobs = chunk.map((job) => {
      const beeJob = queue.createJob(toStoredJob(job)).setId(job.id).retries(job.attempts - 1);
      // Set directly rather than with job.backoff(), which only accepts strategies the producer's
      // queue knows: the capped one is registered by the workers, which compute the waits.
      if (job.attempts > 1) (beeJob.options as { backoff?: unknown }).backoff = { ...backoff };
      // Rounded up: Bee-Queue truncates, which could start a job before its runAt.
      if (job.runAt > now) beeJob.delayUntil(Math.ceil(job.runAt));
      return beeJob;
    });
    let errors: Map<BeeQueue.Job<unknown>, Error>;
    try {
      errors = await queue.saveAll(beeJobs);
    } catch (error) {
      throw new SuperSpreaderError("ADAPTER_ERROR", `Bee-Queue could not save jobs starting at ${describeValue(chunk[0]?.id)}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    if (errors.size > 0) {
      const failed = chunk.filter((_, i) => errors.has(beeJobs[i] as BeeQueue.Job<unknown>));
      const first = failed[0] as QueueJob;
      const firstError = errors.get(beeJobs[chunk.indexOf(first)] as BeeQueue.Job<unknown>);
      throw new SuperSpreaderError(
        "ADAPTER_ERROR",
        `Bee-Queue could not save job ${describeValue(first.id)}${failed.length > 1 ? ` and ${failed.length - 1} more` : ""}: ` +
          `${errorMessage(firstError)}; enqueue the same jobs again once Redis is healthy (stored ones are skipped)`,
        { cause: firstError },
      );
    }
    // Bee-Queue signals "id already present" by leaving job.id null, not by an error.
    const duplicates = beeJobs.filter((beeJob) => beeJob.id === null).length;
    return { added: beeJobs.length - duplicates, duplicates };
  };

  return {
    capabilities: { priorities: false },

    async enqueue(jobs: readonly QueueJob[]): Promise<EnqueueResult> {
      if (!Array.isArray(jobs)) {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `jobs must be an array, got ${describeValue(jobs)}`, { field: "jobs" });
      }
      for (const job of jobs) assertValidJob(job);
      if (jobs.length === 0) return { added: 0, duplicates: 0 };
      const queue = await getQueue();
      let added = 0;
      let duplicates = 0;
      // Sequential chunks keep the order of the list: after a failure, what was
      // stored is a prefix (plus whatever of the failing chunk got through).
      for (let start = 0; start < jobs.length; start += chunkSize) {
        const result = await saveChunk(queue, jobs.slice(start, start + chunkSize));
        added += result.added;
        duplicates += result.duplicates;
      }
      return { added, duplicates };
    },

    async counts(): Promise<QueueCounts> {
      const queue = await getQueue();
      try {
        const health = await queue.checkHealth();
        return { waiting: health.waiting, delayed: health.delayed, active: health.active, failed: health.failed };
      } catch (error) {
        throw new SuperSpreaderError("ADAPTER_ERROR", `Bee-Queue could not read its counts: ${errorMessage(error)}`, { cause: error });
      }
    },

    async lookup(ids: readonly string[]): Promise<JobState[]> {
      checkIds(ids);
      if (ids.length === 0) return [];
      const queue = await getQueue();
      try {
        return await lookupJobs(queue, ids);
      } catch (error) {
        throw new SuperSpreaderError("ADAPTER_ERROR", `Bee-Queue could not look up ${ids.length} jobs: ${errorMessage(error)}`, { cause: error });
      }
    },

    close(): Promise<void> {
      closing ??= (async () => {
        if (!opening) return;
        const queue = await opening.catch(() => null);
        await queue?.close();
      })();
      return closing;
    },
  };
}
