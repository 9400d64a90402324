import type BeeQueue from "bee-queue";
import { SuperSpreaderError } from "@superspreader/core";
import type { JobOutcome, JobProcessor } from "@superspreader/core";
import { openQueue, resolveLocation, show, wholeNumber } from "./connection.js";
import type { BeeQueueRedis } from "./connection.js";
import { readDelivery } from "./envelope.js";

/** Options of {@link runBeeQueueWorker}. */
export interface BeeQueueWorkerOptions {
  /** The runtime (a `SuperSpreader`) that processes each job. */
  readonly spreader: JobProcessor;
  /**
   * Where to connect: a redis URL or node_redis v3 options. The worker opens
   * its own connections (Bee-Queue needs a blocking one) and closes them on `close()`.
   * @default none: required
   */
  readonly redis: BeeQueueRedis;
  /**
   * Bee-Queue queue name; the same as the JobQueue's.
   * @default "superspreader"
   */
  readonly queueName?: string;
  /**
   * Bee-Queue key prefix; the same as the JobQueue's.
   * @default "bq"
   */
  readonly prefix?: string;
  /**
   * Jobs processed at once by this worker.
   * @default 1
   */
  readonly concurrency?: number;
  /**
   * How long `close()` lets running jobs finish (ms). Jobs still running then get
   * their signal aborted and are left to be re-run elsewhere (see `stallIntervalMs`).
   * @default 30000
   */
  readonly shutdownTimeoutMs?: number;
  /**
   * Bee-Queue's `stallInterval` (ms): a job whose worker stopped renewing its lock
   * for this long (a crashed process, or an event loop blocked for half of it) is
   * moved back to waiting and runs again. Use the same value on every instance.
   * @default 5000
   */
  readonly stallIntervalMs?: number;
  /**
   * How often this worker looks for stalled jobs (ms). Bee-Queue only looks when
   * told to, and the check runs at most once per `stallIntervalMs` across all
   * instances, so a dead worker's job is re-run within about
   * `2 × stallIntervalMs + stalledCheckIntervalMs`.
   * @default stallIntervalMs / 2
   */
  readonly stalledCheckIntervalMs?: number;
  /**
   * Whether this instance moves due delayed jobs to waiting. Bee-Queue stores a
   * job with a future run time as "delayed", and only an instance with
   * `activateDelayedJobs` ever makes it runnable: ticks, spread batches and
   * retries after a backoff all wait on it. Leave it on for at least one running
   * worker (on all of them is fine and survives the loss of any one).
   * @default true
   */
  readonly activateDelayedJobs?: boolean;
  /**
   * Receives failures: a job's failed attempt (with its id; Bee-Queue has
   * recorded it and retries while attempts remain) and Redis/connection errors
   * (with `null`).
   * @default logs to `console.error`
   */
  readonly onError?: (error: unknown, jobId: string | null) => void;
}

/** A running Bee-Queue worker. */
export interface BeeQueueWorkerHandle {
  /**
   * Stops taking jobs and waits up to `shutdownTimeoutMs` for running ones. If
   * some are still running then, aborts their signal and resolves; their results
   * are discarded and those jobs run again after stall detection, without
   * counting as a failed attempt. Closes the worker's connections. Idempotent.
   */
  close(): Promise<void>;
}

function defaultOnError(error: unknown, jobId: string | null): void {
  console.error(`[superspreader] bee-queue worker${jobId === null ? "" : ` (job ${jobId})`}:`, error);
}

/**
 * Starts a worker that takes superspreader jobs off a Bee-Queue queue and hands
 * each to the runtime. Resolves once it is connected and processing.
 *
 * @example
 * ```ts
 * const worker = await runBeeQueueWorker({ spreader, redis: process.env.REDIS_URL!, queueName: "backfills", concurrency: 10 });
 * process.once("SIGTERM", () => void worker.close());
 * ```
 */
export async function runBeeQueueWorker(options: BeeQueueWorkerOptions): Promise<BeeQueueWorkerHandle> {
  const spreader = options.spreader;
  if (typeof spreader !== "object" || spreader === null || typeof spreader.perform !== "function") {
    throw new SuperSpreaderError("INVALID_CONFIG", `spreader must have a perform(data, context) method (a SuperSpreader), got ${show(spreader)}`, {
      field: "spreader",
    });
  }
  const location = resolveLocation(options);
  const concurrency = wholeNumber(options.concurrency, "concurrency", 1);
  const shutdownTimeoutMs = wholeNumber(options.shutdownTimeoutMs, "shutdownTimeoutMs", 30_000);
  const stallIntervalMs = wholeNumber(options.stallIntervalMs, "stallIntervalMs", 5_000);
  const stalledCheckIntervalMs = wholeNumber(options.stalledCheckIntervalMs, "stalledCheckIntervalMs", Math.max(1, Math.floor(stallIntervalMs / 2)));
  const activateDelayedJobs = options.activateDelayedJobs ?? true;
  if (typeof activateDelayedJobs !== "boolean") {
    throw new SuperSpreaderError("INVALID_CONFIG", `activateDelayedJobs must be a boolean, got ${show(activateDelayedJobs)}`, {
      field: "activateDelayedJobs",
    });
  }
  const onError = options.onError ?? defaultOnError;
  if (typeof onError !== "function") {
    throw new SuperSpreaderError("INVALID_CONFIG", `onError must be a function, got ${show(onError)}`, { field: "onError" });
  }

  const shutdown = new AbortController();
  const queue = await openQueue(
    location,
    { isWorker: true, getEvents: false, storeJobs: false, activateDelayedJobs, stallInterval: stallIntervalMs },
    (error) => onError(error, null),
  );

  queue.process(concurrency, async (job: BeeQueue.Job<unknown>): Promise<JobOutcome> => {
    try {
      const delivery = readDelivery(job.id, job.data, (job.options as { retries?: unknown }).retries);
      return await spreader.perform(delivery.data, {
        attempt: delivery.attempt,
        maxAttempts: delivery.maxAttempts,
        signal: shutdown.signal,
      });
    } catch (error) {
      // After a timed-out shutdown Bee-Queue refuses to record the outcome, so the
      // job stays active and is re-run; reporting it as a failure would mislead.
      if (!shutdown.signal.aborted) onError(error, job.id);
      throw error;
    }
  });
  // Bee-Queue checks for stalled jobs once when processing starts; later checks are ours to schedule.
  queue.checkStalledJobs(stalledCheckIntervalMs).catch((error: unknown) => onError(error, null));

  let closing: Promise<void> | null = null;
  return {
    close() {
      closing ??= queue.close(shutdownTimeoutMs).catch(() => {
        // Bee-Queue gave up waiting and marked itself closed, so whatever the
        // running jobs do now is not recorded; tell them to stop.
        shutdown.abort(new DOMException("the Bee-Queue worker is shutting down", "AbortError"));
      });
      return closing;
    },
  };
}
