import { SuperSpreaderError } from "@superspreader/core";
import type { JobContext, JobOutcome, JobProcessor, ShutdownMode } from "@superspreader/core";
import {
  createWorkerReporter,
  describeValue,
  functionOption,
  invalidOption,
  isConnectionError,
  settlesWithin,
  shutdownOption,
  startWatchdog,
  wholeNumberOption,
} from "@superspreader/core/adapter";
import type { WorkerLogOption } from "@superspreader/core/adapter";
import { DEFAULT_SCHEMA, WaitingError, Worker, createPostgresBackend } from "bullmq";
import type { Job, PgPool, WorkerOptions } from "bullmq";
import type { Cluster, Redis } from "ioredis";
import { cappedBackoffStrategy } from "./backoff.js";
import { postgresJobReads, whereOfPool } from "./postgres.js";
import { connectionOption, prefixFor, queueNameOption } from "./validate.js";
import type { Connection, PostgresPool } from "./validate.js";

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
   * Where BullMQ keeps the queue, as given to `createBullMQJobQueue`:
   * - An ioredis `Redis` or `Cluster` instance created with `maxRetriesPerRequest: null`
   *   (BullMQ requires it for blocking connections). The worker duplicates it for its own
   *   connections and closes those; this one is never used for commands or closed.
   * - A node-postgres `Pool` (BullMQ's PostgreSQL backend) with `max` of at least 2: the worker
   *   holds one of its clients for `LISTEN` while it runs and runs its queries on the others.
   *   Never ended by the worker.
   */
  connection: Redis | Cluster | PostgresPool;
  /**
   * The BullMQ queue name, as given to `createBullMQJobQueue`.
   * @default "superspreader"
   */
  queueName?: string;
  /**
   * BullMQ's key prefix, as given to `createBullMQJobQueue`. Redis only.
   * @default "bull" (Redis)
   */
  prefix?: string;
  /** Jobs processed at once by this worker. @default 1 */
  concurrency?: number;
  /**
   * What `close()` does with running jobs: `"drain"` lets them finish for up to
   * `shutdownTimeoutMs`, then aborts their signal; `"abort"` aborts it at once. A job whose
   * handler gives up on the abort goes back to waiting without spending an attempt.
   * @default "drain"
   */
  shutdown?: ShutdownMode;
  /**
   * Ms `close()` lets running jobs finish (`"drain"`), and then ms it waits for aborted
   * handlers to settle. A handler still running then is left behind: its job stays active
   * until its lock expires, and another worker runs it again.
   * @default 30000
   */
  shutdownTimeoutMs?: number;
  /**
   * Ms between two runs of `spreader.watchdog()`, which revives dead tick chains and carries
   * out starts requested from the CLI; `0` turns it off (then some other process must run it).
   * @default 5000
   */
  watchdogIntervalMs?: number;
  /**
   * BullMQ `lockDuration`: a job whose lock is not renewed within this time (the
   * worker died or blocked its event loop) counts as stalled and runs again.
   * @default 30000
   */
  lockDurationMs?: number;
  /** BullMQ `stalledInterval`: how often this worker looks for stalled jobs. @default 30000 */
  stalledIntervalMs?: number;
  /**
   * BullMQ `maxStalledCount`: a job that stalls more often than this fails for good without
   * reaching the runtime. The runtime's reconciliation finds such a range and enqueues it
   * again (about `reconcileAfterMs` after it was due), so nothing is lost either way.
   * @default 1
   */
  maxStalledCount?: number;
  /**
   * How the worker talks (on stderr): one line when it starts (queue, backfills, concurrency),
   * one when a backfill it defines starts, pauses, resumes, holds, fails or completes, a summary
   * a minute at most, one line when Redis is lost and one when it is back. `"json"` prints the
   * same as JSON lines, `"quiet"` nothing; or pass a pino-compatible logger.
   * @default "text"
   */
  log?: WorkerLogOption;
  /**
   * Called with errors of failed attempts (with the job) and of the worker itself
   * (connection trouble, lost locks, a failed watchdog run; without the job). Failed attempts
   * are retried and recorded by the runtime either way; this is for logs.
   * @default the `log` option's lines: a lost connection once per outage, other errors once a minute each
   */
  onError?: (error: unknown, job: BullMQWorkerJobInfo | undefined) => void;
}

/** Where the worker connects, without a password, for its log lines. */
function whereOf(connection: Connection): string {
  if (connection.kind === "postgres") return whereOfPool(connection.pool);
  const client: Redis | Cluster = connection.client;
  if ((client as { isCluster?: boolean }).isCluster === true) return "Redis Cluster";
  const options = (client as { options?: { host?: string; port?: number; path?: string } }).options ?? {};
  return `Redis at ${options.path ?? `${options.host ?? "localhost"}:${options.port ?? 6379}`}`;
}

/** A running worker. */
export interface BullMQWorkerHandle {
  /**
   * Stops fetching jobs and the watchdog, shuts running jobs down as `shutdown` says, then
   * closes the worker's own connections. A job cut short by the shutdown goes back to
   * waiting without spending an attempt. Idempotent: every call returns the same promise.
   */
  close(): Promise<void>;
}

/** One job being processed by this worker. */
interface Delivery {
  /** A signal per job: handlers adding listeners per batch never pile them up on one signal. */
  readonly controller: AbortController;
  /** Lets the processor return although the handler still runs (a timed-out shutdown). */
  readonly abandon: () => void;
}

/** Settles a job's race with shutdown: the job was left behind by a timed-out close. */
const ABANDONED = Symbol("abandoned");

function spreaderOption(value: unknown): JobProcessor {
  if (typeof (value as Partial<JobProcessor> | undefined)?.perform !== "function") {
    throw invalidOption("spreader", `must be a JobProcessor (a SuperSpreader, with perform and watchdog methods), got ${describeValue(value)}`);
  }
  return value as JobProcessor;
}

/**
 * Starts a BullMQ worker that hands every job of the queue to the runtime, runs the runtime's
 * watchdog every few seconds, and resolves once it is connected. Delivery is at least once: a
 * job whose worker died runs again on another one once its lock expires, with the same
 * attempt number.
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
  const prefix = prefixFor(connection, options.prefix);
  const concurrency = wholeNumberOption(options.concurrency, "concurrency", 1, 1);
  const shutdown = shutdownOption(options.shutdown);
  const shutdownTimeoutMs = wholeNumberOption(options.shutdownTimeoutMs, "shutdownTimeoutMs", 30_000, 0);
  const watchdogIntervalMs = wholeNumberOption(options.watchdogIntervalMs, "watchdogIntervalMs", 5_000, 0);
  const lockDuration = wholeNumberOption(options.lockDurationMs, "lockDurationMs", 30_000, 1);
  const stalledInterval = wholeNumberOption(options.stalledIntervalMs, "stalledIntervalMs", 30_000, 1);
  const maxStalledCount = wholeNumberOption(options.maxStalledCount, "maxStalledCount", 1, 0);
  if (connection.kind === "postgres") {
    // Says what to do about an unmigrated schema or a search_path that misses it, rather than
    // BullMQ's fetch loop failing on every poll with "function … does not exist". Checked before
    // the Worker exists: one closed right after construction can leak the pool client it was
    // still checking out for LISTEN, and the pool's end() would then wait forever.
    await postgresJobReads(connection.pool, DEFAULT_SCHEMA, queueName).ready();
  }
  const reporter = createWorkerReporter({
    spreader,
    ...(options.log === undefined ? {} : { log: options.log }),
    queue: `BullMQ queue ${queueName}`,
    concurrency,
    connection: whereOf(connection),
  });
  // An error inside a job is the batch's (its handler's database, an API): only the queue's own errors
  // say whether the queue's server is reachable, so only they make the "waiting for …" line.
  const onError = functionOption<(error: unknown, job: BullMQWorkerJobInfo | undefined) => void>(options.onError, "onError", (error, job) =>
    job === undefined && isConnectionError(error) ? reporter.connectionLost(error) : reporter.workerError(error),
  );

  const running = new Set<Delivery>();
  let abortReason: DOMException | null = null;

  const processor = async (job: Job, token?: string): Promise<JobOutcome> => {
    // attemptsMade counts failed attempts only. A stalled run (worker killed) does not
    // count, and BullMQ retries while attemptsMade + 1 < attempts, so attemptsMade + 1
    // is the attempt whose failure is final exactly when it equals maxAttempts.
    // attemptsStarted would also count stalls and could exceed maxAttempts.
    // BullMQ runs a job without `attempts` (or with 0) once.
    const maxAttempts = Math.max(1, job.opts.attempts ?? 1);
    const controller = new AbortController();
    // Fetched while close() was aborting: it starts aborted and goes straight back.
    if (abortReason) controller.abort(abortReason);
    const context: JobContext = { attempt: job.attemptsMade + 1, maxAttempts, signal: controller.signal };
    const info: BullMQWorkerJobInfo = { id: job.id ?? "", attempt: context.attempt, maxAttempts };
    let abandon = (): void => {};
    const abandoned = new Promise<typeof ABANDONED>((resolve) => {
      abandon = () => resolve(ABANDONED);
    });
    const delivery: Delivery = { controller, abandon };
    running.add(delivery);
    // A job arrived: Redis answers again.
    reporter.connectionBack();
    const performing = Promise.resolve().then(() => spreader.perform(job.data, context));
    let outcome: JobOutcome | typeof ABANDONED;
    try {
      outcome = await Promise.race([performing, abandoned]);
    } catch (error) {
      if (controller.signal.aborted && token !== undefined) {
        // Most likely the handler honoured the abort: give the job back unspent. If that
        // fails (lock already lost), the job stays active and the stalled checker re-queues it.
        await job.moveToWait(token).catch((moveError: unknown) => onError(moveError, info));
        throw new WaitingError();
      }
      onError(error, info);
      throw error;
    } finally {
      running.delete(delivery);
    }
    if (outcome !== ABANDONED) return outcome;
    // close() gave up waiting. The handler may still be running, so the job stays active
    // rather than going back to waiting (where another worker would start it at once,
    // concurrently); its lock expires and the stalled checker re-queues it.
    performing.catch(() => {});
    throw new WaitingError();
  };

  const settings = {
    concurrency,
    lockDuration,
    stalledInterval,
    maxStalledCount,
    // Computes the capped exponential backoff the queue stores in each job (BullMQ's own has no cap).
    settings: { backoffStrategy: cappedBackoffStrategy },
    autorun: false,
  } satisfies Omit<WorkerOptions, "connection">;
  const worker =
    connection.kind === "redis"
      ? new Worker(queueName, processor, { ...settings, connection: connection.client, prefix })
      : // Typed as the Redis worker: this runner calls only the backend-neutral methods on it.
        (new Worker(queueName, processor, { ...settings, connection: connection.pool as unknown as PgPool }, createPostgresBackend) as unknown as Worker);
  worker.on("error", (error: unknown) => onError(error, undefined));

  let watchdog: { stop(): Promise<void> } | null = null;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Worker.close() stops fetching at once and resolves when running jobs have settled.
      const closed = worker.close();
      closed.catch((error: unknown) => onError(error, undefined));
      // Stopped alongside, not first: a watchdog run in progress must not delay an abort.
      const watchdogStopped = watchdog?.stop();
      if (shutdown === "abort" || !(await settlesWithin(closed, shutdownTimeoutMs))) {
        abortReason = new DOMException("the BullMQ worker is shutting down", "AbortError");
        for (const delivery of running) delivery.controller.abort(abortReason);
        if (!(await settlesWithin(closed, shutdownTimeoutMs))) for (const delivery of running) delivery.abandon();
      }
      await closed.catch(() => {});
      await watchdogStopped;
      await reporter.stop();
    })();
    return closing;
  };

  try {
    worker.run().catch((error: unknown) => onError(error, undefined));
    await worker.waitUntilReady();
  } catch (error) {
    await close();
    throw new SuperSpreaderError("ADAPTER_ERROR", `BullMQ worker for ${JSON.stringify(queueName)} could not connect: ${String(error)}`, {
      cause: error,
    });
  }
  watchdog = startWatchdog(spreader, { intervalMs: watchdogIntervalMs, onError: (error) => onError(error, undefined), onSuccess: () => reporter.connectionBack() });
  reporter.started();
  return { close };
}
