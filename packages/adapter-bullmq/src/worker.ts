import { SuperSpreaderError } from "@superspreader/core";
import type { JobContext, JobOutcome, JobProcessor } from "@superspreader/core";
import { WaitingError, Worker } from "bullmq";
import type { Job } from "bullmq";
import type { Cluster, Redis } from "ioredis";
import { connectionOption, describeValue, errorHookOption, invalidOption, prefixOption, queueNameOption, wholeNumber } from "./validate.js";

/** The delivery an error happened in, as given to `onError`. */
export interface BullMQWorkerJobInfo {
  /** The job id (the one given to `enqueue`). */
  readonly id: string;
  /** The attempt that failed (1 for the first run). */
  readonly attempt: number;
  /** The job's attempts. */
  readonly maxAttempts: number;
}

/** Options of {@link runBullMQWorker}. */
export interface BullMQWorkerOptions {
  /** The runtime (a `SuperSpreader`) that processes each job's data. */
  spreader: JobProcessor;
  /**
   * An ioredis `Redis` or `Cluster` instance created with `maxRetriesPerRequest: null`
   * (BullMQ requires it for blocking connections). The worker duplicates it for its
   * own connections and closes those; this one is never used for commands or closed.
   */
  connection: Redis | Cluster;
  /**
   * The BullMQ queue name, as given to `createBullMQJobQueue`.
   * @default "superspreader"
   */
  queueName?: string;
  /**
   * BullMQ's key prefix, as given to `createBullMQJobQueue`.
   * @default "bull"
   */
  prefix?: string;
  /** Jobs processed at once by this worker. @default 1 */
  concurrency?: number;
  /**
   * How long `close()` waits for running jobs (whose signal it aborts) before it
   * stops waiting. Jobs still running then keep their lock until it expires, after
   * which another worker runs them again.
   * @default 30000
   */
  shutdownTimeoutMs?: number;
  /**
   * BullMQ `lockDuration`: a job whose lock is not renewed within this time (the
   * worker died or blocked its event loop) counts as stalled and runs again.
   * @default 30000
   */
  lockDurationMs?: number;
  /** BullMQ `stalledInterval`: how often this worker looks for stalled jobs. @default 30000 */
  stalledIntervalMs?: number;
  /**
   * BullMQ `maxStalledCount`: a job that stalls more often than this fails for good
   * without reaching the runtime, so its range shows up as a gap in the audit.
   * @default 1
   */
  maxStalledCount?: number;
  /**
   * Called with errors of failed attempts (with the job) and of the worker itself
   * (connection trouble, lost locks; without the job). Failed attempts are retried
   * and recorded by the runtime either way; this is for logs.
   * @default logs them with console.error
   */
  onError?: (error: unknown, job: BullMQWorkerJobInfo | undefined) => void;
}

/** A running worker. */
export interface BullMQWorkerHandle {
  /**
   * Graceful shutdown: stops fetching jobs, aborts the signal of running jobs, waits
   * for them up to `shutdownTimeoutMs`, then closes the worker's own connections.
   * A job cut short by the shutdown goes back to waiting without spending an attempt.
   * Idempotent: every call returns the same promise.
   */
  close(): Promise<void>;
}

/** Settles a job's race with shutdown: the job was left behind by a timed-out close. */
const ABANDONED = Symbol("abandoned");

function spreaderOption(value: unknown): JobProcessor {
  if (typeof (value as Partial<JobProcessor> | undefined)?.perform !== "function") {
    throw invalidOption("spreader", `must be a JobProcessor (a SuperSpreader, with a perform method), got ${describeValue(value)}`);
  }
  return value as JobProcessor;
}

/**
 * Starts a BullMQ worker that hands every job of the queue to the runtime, and
 * resolves once it is connected. Delivery is at least once: a job whose worker died
 * runs again on another one once its lock expires, with the same attempt number.
 *
 * @example
 * ```ts
 * import { Redis } from "ioredis";
 * import { runBullMQWorker } from "@superspreader/adapter-bullmq";
 *
 * const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
 * const worker = await runBullMQWorker({ spreader, connection: redis, concurrency: 10 });
 * process.once("SIGTERM", () => void worker.close());
 * ```
 */
export async function runBullMQWorker(options: BullMQWorkerOptions): Promise<BullMQWorkerHandle> {
  if (typeof options !== "object" || options === null) {
    throw invalidOption("options", `must be an object with at least spreader and connection, got ${describeValue(options)}`);
  }
  const spreader = spreaderOption(options.spreader);
  const connection = connectionOption(options.connection, "worker");
  const queueName = queueNameOption(options.queueName);
  const prefix = prefixOption(options.prefix);
  const concurrency = wholeNumber(options.concurrency, "concurrency", 1, 1);
  const shutdownTimeoutMs = wholeNumber(options.shutdownTimeoutMs, "shutdownTimeoutMs", 30_000, 0);
  const lockDuration = wholeNumber(options.lockDurationMs, "lockDurationMs", 30_000, 1);
  const stalledInterval = wholeNumber(options.stalledIntervalMs, "stalledIntervalMs", 30_000, 1);
  const maxStalledCount = wholeNumber(options.maxStalledCount, "maxStalledCount", 1, 0);
  const onError = errorHookOption<(error: unknown, job: BullMQWorkerJobInfo | undefined) => void>(options.onError, (error, job) =>
    console.error(`[superspreader] BullMQ worker error${job ? ` in job ${job.id} (attempt ${job.attempt}/${job.maxAttempts})` : ""}:`, error),
  );

  const shutdown = new AbortController();
  const abandons = new Set<() => void>();

  const processor = async (job: Job, token?: string): Promise<JobOutcome> => {
    // attemptsMade counts failed attempts only. A stalled run (worker killed) does not
    // count, and BullMQ retries while attemptsMade + 1 < attempts, so attemptsMade + 1
    // is the attempt whose failure is final exactly when it equals maxAttempts.
    // attemptsStarted would also count stalls and could exceed maxAttempts.
    // BullMQ runs a job without `attempts` (or with 0) once.
    const maxAttempts = Math.max(1, job.opts.attempts ?? 1);
    const context: JobContext = { attempt: job.attemptsMade + 1, maxAttempts, signal: shutdown.signal };
    let abandon = (): void => {};
    const abandoned = new Promise<typeof ABANDONED>((resolve) => {
      abandon = () => resolve(ABANDONED);
    });
    abandons.add(abandon);
    const performing = Promise.resolve().then(() => spreader.perform(job.data, context));
    try {
      const outcome = await Promise.race([performing, abandoned]);
      if (outcome !== ABANDONED) return outcome;
      // close() gave up waiting. The handler may still be running, so the job stays
      // active rather than going back to waiting (where another worker would start
      // it at once, concurrently); its lock expires and the stalled checker re-queues it.
      performing.catch(() => {});
      throw new WaitingError();
    } catch (error) {
      if (error instanceof WaitingError) throw error;
      if (shutdown.signal.aborted && token !== undefined) {
        // Most likely the handler honoured the abort: give the job back unspent. If that
        // fails (lock already lost), the job stays active and the stalled checker re-queues it.
        await job.moveToWait(token).catch((moveError: unknown) => onError(moveError, undefined));
        throw new WaitingError();
      }
      onError(error, { id: job.id ?? "", attempt: context.attempt, maxAttempts: context.maxAttempts });
      throw error;
    } finally {
      abandons.delete(abandon);
    }
  };

  const worker = new Worker(queueName, processor, {
    connection,
    prefix,
    concurrency,
    lockDuration,
    stalledInterval,
    maxStalledCount,
    autorun: false,
  });
  worker.on("error", (error: unknown) => onError(error, undefined));
  worker.run().catch((error: unknown) => onError(error, undefined));

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Worker.close() stops fetching at once and resolves when running jobs settle.
      const closed = worker.close();
      shutdown.abort();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        closed.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), shutdownTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) for (const abandon of abandons) abandon();
      await closed;
    })();
    return closing;
  };

  try {
    await worker.waitUntilReady();
  } catch (error) {
    await close();
    throw new SuperSpreaderError("ADAPTER_ERROR", `BullMQ worker for ${JSON.stringify(queueName)} could not connect: ${String(error)}`, {
      cause: error,
    });
  }
  return { close };
}
