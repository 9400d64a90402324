import type BeeQueue from "bee-queue";
import type { JobOutcome, JobProcessor, ShutdownMode } from "@superspreader/core";
import {
  booleanOption,
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
import { registerBackoff } from "./backoff.js";
import { openQueue, resolveLocation } from "./connection.js";
import type { BeeQueueRedis } from "./connection.js";
import { readDelivery } from "./envelope.js";
import { handBack } from "./scripts.js";

/** The delivery an error happened in, as given to `onError`. */
export interface BeeQueueWorkerJobInfo {
  /** The job id (the one given to `enqueue`). */
  readonly id: string;
  /** The attempt that failed (1 for the first run). */
  readonly attempt: number;
  /** The job's attempts. */
  readonly maxAttempts: number;
}

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
   * What `close()` does with running jobs: `"drain"` lets them finish for up to
   * `shutdownTimeoutMs`, then aborts their signal; `"abort"` aborts it at once. A job whose
   * handler gives up on the abort goes back to the head of the waiting list without spending
   * an attempt.
   * @default "drain"
   */
  readonly shutdown?: ShutdownMode;
  /**
   * Ms `close()` lets running jobs finish (`"drain"`), and then ms it waits for aborted
   * handlers to settle. A handler still running then is left behind: its job stays active
   * and runs again elsewhere after stall detection (see `stallIntervalMs`).
   * @default 30000
   */
  readonly shutdownTimeoutMs?: number;
  /**
   * Ms between two runs of `spreader.watchdog()`, which revives dead tick chains and carries
   * out starts requested from the CLI; `0` turns it off (then some other process must run it).
   * @default 5000
   */
  readonly watchdogIntervalMs?: number;
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
   * Bee-Queue's `delayedDebounce` (ms): when this worker activates delayed jobs, it waits for
   * the last of those due within this long after the earliest, and moves them to waiting
   * together. So a delayed job (a spread batch, a tick, a retry) starts up to this long after
   * its run time, never before. Bee-Queue's own default, 1000, made batches spread within a
   * second start in clumps up to a second late. Larger values mean fewer activation scripts
   * (about one per `delayedDebounceMs` per worker) when run times are dense; `0` activates
   * every run time on its own.
   * @default 10
   */
  readonly delayedDebounceMs?: number;
  /**
   * Bee-Queue's `nearTermWindow` (ms): the longest this worker goes without looking for due
   * delayed jobs. It learns of new ones from a pub/sub message sent when they are stored;
   * a message lost while its connection was down would otherwise leave jobs waiting until
   * the next delayed job it does know of, or for Bee-Queue's 20 minutes. Each look is one
   * short script.
   * @default 5000
   */
  readonly nearTermWindowMs?: number;
  /**
   * How the worker talks (on stderr): one line when it starts (queue, backfills, concurrency),
   * one when a backfill it defines starts, pauses, resumes, holds, fails or completes, a summary
   * a minute at most, one line when Redis is lost and one when it is back. `"json"` prints the
   * same as JSON lines, `"quiet"` nothing; or pass a pino-compatible logger.
   * @default "text"
   */
  readonly log?: WorkerLogOption;
  /**
   * Called with errors of failed attempts (with the job; Bee-Queue has recorded it and retries
   * while attempts remain) and of the worker itself (Redis trouble, a failed watchdog run;
   * without the job).
   * @default the `log` option's lines: a lost connection once per outage, other errors once a minute each
   */
  readonly onError?: (error: unknown, job: BeeQueueWorkerJobInfo | undefined) => void;
}

/** Where the worker connects, without a password, for its log lines. */
function whereOf(redis: unknown): string {
  if (typeof redis === "string") return `Redis at ${redis.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@")}`;
  const options = redis as { host?: string; port?: number; path?: string; url?: string } | null;
  if (typeof options?.url === "string") return whereOf(options.url);
  return `Redis at ${options?.path ?? `${options?.host ?? "127.0.0.1"}:${options?.port ?? 6379}`}`;
}

/** A running Bee-Queue worker. */
export interface BeeQueueWorkerHandle {
  /**
   * Stops taking jobs and the watchdog, shuts running jobs down as `shutdown` says, then
   * closes the worker's connections. A job cut short by the shutdown goes back to the queue
   * without spending an attempt. Idempotent: every call returns the same promise.
   */
  close(): Promise<void>;
}

/** One job being processed by this worker. */
interface Delivery {
  /** A signal per job: handlers adding listeners per batch never pile them up on one signal. */
  readonly controller: AbortController;
  /** Resolves when the handler settled and, if it had to, the job was handed back. */
  readonly done: Promise<void>;
}

/**
 * Starts a worker that takes superspreader jobs off a Bee-Queue queue, hands each to the
 * runtime, and runs the runtime's watchdog every few seconds. Resolves once it is connected
 * and processing.
 *
 * @example
 * ```ts
 * const worker = await runBeeQueueWorker({ spreader, redis: process.env.REDIS_URL!, queueName: "backfills", concurrency: 10 });
 * process.once("SIGTERM", () => void worker.close());
 * ```
 */
export async function runBeeQueueWorker(options: BeeQueueWorkerOptions): Promise<BeeQueueWorkerHandle> {
  if (typeof options !== "object" || options === null) {
    throw invalidOption("options", `must be an object with at least spreader and redis, got ${describeValue(options)}`);
  }
  const spreader = options.spreader;
  if (typeof spreader !== "object" || spreader === null || typeof spreader.perform !== "function") {
    throw invalidOption("spreader", `must be a JobProcessor (a SuperSpreader, with perform and watchdog methods), got ${describeValue(spreader)}`);
  }
  const location = resolveLocation(options);
  const concurrency = wholeNumberOption(options.concurrency, "concurrency", 1, 1);
  const shutdown = shutdownOption(options.shutdown);
  const shutdownTimeoutMs = wholeNumberOption(options.shutdownTimeoutMs, "shutdownTimeoutMs", 30_000, 0);
  const watchdogIntervalMs = wholeNumberOption(options.watchdogIntervalMs, "watchdogIntervalMs", 5_000, 0);
  const stallIntervalMs = wholeNumberOption(options.stallIntervalMs, "stallIntervalMs", 5_000, 1);
  const stalledCheckIntervalMs = wholeNumberOption(options.stalledCheckIntervalMs, "stalledCheckIntervalMs", Math.max(1, Math.floor(stallIntervalMs / 2)), 1);
  const activateDelayedJobs = booleanOption(options.activateDelayedJobs, "activateDelayedJobs", true);
  // Bee-Queue silently replaces a setting that is not a safe integer with its default (and throws
  // on a nearTermWindow below 1), so both are checked here.
  const delayedDebounceMs = wholeNumberOption(options.delayedDebounceMs, "delayedDebounceMs", 10, 0);
  const nearTermWindowMs = wholeNumberOption(options.nearTermWindowMs, "nearTermWindowMs", 5_000, 1);
  const reporter = createWorkerReporter({
    spreader,
    ...(options.log === undefined ? {} : { log: options.log }),
    queue: `Bee-Queue queue ${location.queueName}`,
    concurrency,
    connection: whereOf(location.redis),
  });
  // An error inside a job is the batch's (its handler's database, an API): only the queue's own errors
  // say whether Redis is reachable, so only they make the "waiting for Redis" line.
  const onError = functionOption<(error: unknown, job: BeeQueueWorkerJobInfo | undefined) => void>(options.onError, "onError", (error, job) =>
    job === undefined && isConnectionError(error) ? reporter.connectionLost(error) : reporter.workerError(error),
  );

  // A node_redis client given as `redis` is the caller's; options or a URL open one we own.
  const ownsClient = !["Redis", "RedisClient"].includes((location.redis as { constructor?: { name?: string } }).constructor?.name ?? "");
  const queue = await openQueue(
    location,
    {
      isWorker: true,
      getEvents: false,
      storeJobs: false,
      activateDelayedJobs,
      delayedDebounce: delayedDebounceMs,
      nearTermWindow: nearTermWindowMs,
      stallInterval: stallIntervalMs,
      // Kept open past Bee-Queue's own close: handing aborted jobs back needs it. Quit at the end of ours.
      quitCommandClient: false,
    },
    (error) => onError(error, undefined),
  );
  registerBackoff(queue);

  const running = new Set<Delivery>();
  /** Set when close() gives up on running jobs: from then on Bee-Queue records nothing, the worker hands jobs back. */
  let abortReason: DOMException | null = null;

  queue.process(concurrency, (job: BeeQueue.Job<unknown>): Promise<JobOutcome> => {
    let delivery: ReturnType<typeof readDelivery>;
    try {
      delivery = readDelivery(job.id, job.data, (job.options as { retries?: unknown }).retries);
    } catch (error) {
      // Not a job of createBeeQueueJobQueue: its attempts are unknown; Bee-Queue fails it.
      onError(error, { id: job.id, attempt: 1, maxAttempts: 1 });
      return Promise.reject(error);
    }
    const info: BeeQueueWorkerJobInfo = { id: job.id, attempt: delivery.attempt, maxAttempts: delivery.maxAttempts };
    const controller = new AbortController();
    if (abortReason) controller.abort(abortReason);
    // A job arrived: Redis answers again.
    reporter.connectionBack();
    const performing = Promise.resolve().then(() =>
      spreader.perform(delivery.data, { attempt: delivery.attempt, maxAttempts: delivery.maxAttempts, signal: controller.signal }),
    );
    let finished = (): void => {};
    const entry: Delivery = {
      controller,
      done: new Promise<void>((resolve) => {
        finished = resolve;
      }),
    };
    running.add(entry);
    const settled = performing
      .then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      )
      .then(async (result): Promise<JobOutcome> => {
        try {
          if (abortReason === null) {
            if ("error" in result) throw result.error;
            return result.value;
          }
          // Too late for Bee-Queue to record (it is closing and would refuse or, worse, count a
          // failed attempt): the job goes back to the queue unspent, and Bee-Queue is told nothing.
          await handBack(queue, job.id).catch((error: unknown) => onError(error, info));
          return new Promise<JobOutcome>(() => {});
        } finally {
          running.delete(entry);
          finished();
        }
      });
    return settled.then(
      (value) => value,
      (error: unknown) => {
        onError(error, info);
        throw error;
      },
    );
  });
  // Bee-Queue checks for stalled jobs once when processing starts; later checks are ours to schedule.
  queue.checkStalledJobs(stalledCheckIntervalMs).catch((error: unknown) => onError(error, undefined));
  const watchdog = startWatchdog(spreader, { intervalMs: watchdogIntervalMs, onError: (error) => onError(error, undefined), onSuccess: () => reporter.connectionBack() });
  reporter.started();

  const abortAll = () => {
    abortReason = new DOMException("the Bee-Queue worker is shutting down", "AbortError");
    for (const delivery of running) delivery.controller.abort(abortReason);
  };
  const allDone = () => Promise.all([...running].map((d) => d.done));

  let closing: Promise<void> | null = null;
  return {
    close() {
      closing ??= (async () => {
        // Stopped alongside, not first: a watchdog run in progress must not delay an abort.
        const watchdogStopped = watchdog.stop();
        // In abort mode nothing is recorded from here on: every running job is handed back.
        if (shutdown === "abort") abortAll();
        // Stops fetching at once. Its own timeout is a little longer than ours, so jobs that
        // finish before our drain ends are recorded, and none is recorded after it.
        const beeClosed = queue.close(shutdown === "abort" ? 1 : shutdownTimeoutMs + 100);
        beeClosed.catch(() => {});
        if (shutdown === "drain" && !(await settlesWithin(allDone(), shutdownTimeoutMs))) abortAll();
        // Aborted handlers hand their jobs back as they settle; those ignoring the abort are left to stall detection.
        if (abortReason !== null) await settlesWithin(allDone(), shutdownTimeoutMs);
        await beeClosed.catch(() => {});
        await watchdogStopped;
        await reporter.stop();
        const client = (queue as unknown as { client?: { quit(done: () => void): void } }).client;
        if (ownsClient && client) await new Promise<void>((resolve) => client.quit(() => resolve()));
      })();
      return closing;
    },
  };
}
