import { systemClock, type Clock, type ManualClock } from "./clock.js";
import { SuperSpreaderError, describeValue } from "./errors.js";
import type { EnqueueResult, JobOutcome, JobProcessor, JobQueue, JobState, QueueCounts, QueueJob } from "./ports.js";
import { assertValidJob } from "./validate-args.js";

/** State of a job in the in-memory queue. */
export type MemoryJobState = "delayed" | "waiting" | "active" | "completed" | "failed";

/** A job as the in-memory queue keeps it. */
export interface MemoryJobRecord {
  readonly job: QueueJob;
  state: MemoryJobState;
  /** Current run time (epoch ms); moves on retry. */
  runAt: number;
  /** Runs started so far. */
  attemptsMade: number;
  /** Order of acceptance. */
  readonly seq: number;
  lastError: string | null;
  outcome: JobOutcome | null;
}

/** Options of {@link createMemoryJobQueue}. */
export interface MemoryJobQueueOptions {
  /**
   * The clock deciding which jobs are due.
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Delay before a failed job runs again (ms).
   * @default 0
   */
  retryDelayMs?: number;
}

/** The in-memory JobQueue, with the consuming side that workers and tests use. */
export interface MemoryJobQueue extends JobQueue {
  /** Every job ever accepted, in order of acceptance (the queue retains all of them, so dedup by id always holds). */
  all(): readonly MemoryJobRecord[];
  /** The earliest run time among delayed and waiting jobs, or null when none. */
  nextRunAt(): number | null;
  /** Claims the due job that should run next (earliest runAt, then priority, then acceptance), or null. */
  claim(): MemoryJobRecord | null;
  /** Settles a claimed job: completed without `error`; otherwise retried while attempts remain, else failed. */
  settle(id: string, result: { outcome: JobOutcome } | { error: unknown }): void;
  /** Puts a claimed job back as if its worker died (stalled): it runs again, the attempt is not counted as a failure. */
  stall(id: string): void;
  /** Calls `listener` whenever jobs are added or become due sooner. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/**
 * Creates an in-memory JobQueue that honours run times, dedup by id (forever: it
 * retains every job) and attempts. The embedded default for demos and for tests
 * of user code; pair it with {@link createMemoryWorker}.
 *
 * @example
 * ```ts
 * const queue = createMemoryJobQueue();
 * const store = createMemoryStateStore();
 * const spreader = createSuperSpreader({ queue, store });
 * const worker = createMemoryWorker({ queue, spreader, concurrency: 4 });
 * worker.start();
 * ```
 */
export function createMemoryJobQueue(options: MemoryJobQueueOptions = {}): MemoryJobQueue {
  const clock = options.clock ?? systemClock;
  const retryDelayMs = options.retryDelayMs ?? 0;
  if (!Number.isFinite(retryDelayMs) || retryDelayMs < 0) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `retryDelayMs must be a finite number ≥ 0, got ${describeValue(retryDelayMs)}`, {
      field: "retryDelayMs",
    });
  }
  const byId = new Map<string, MemoryJobRecord>();
  const records: MemoryJobRecord[] = [];
  // Pending jobs (delayed or waiting) kept separately so claim() does not scan finished ones.
  const pending = new Set<MemoryJobRecord>();
  const listeners = new Set<() => void>();
  let closed = false;
  let seq = 0;

  const notify = () => {
    for (const listener of listeners) listener();
  };
  const get = (id: string, state: MemoryJobState): MemoryJobRecord => {
    const record = byId.get(id);
    if (!record || record.state !== state) {
      throw new SuperSpreaderError("INVALID_STATE", `job ${describeValue(id)} is not ${state} (it is ${record?.state ?? "unknown"})`);
    }
    return record;
  };
  const before = (a: MemoryJobRecord, b: MemoryJobRecord): boolean => {
    if (a.runAt !== b.runAt) return a.runAt < b.runAt;
    const pa = a.job.priority ?? 0;
    const pb = b.job.priority ?? 0;
    if (pa !== pb) return pa < pb;
    return a.seq < b.seq;
  };

  return {
    capabilities: { priorities: true },

    async enqueue(jobs: readonly QueueJob[]): Promise<EnqueueResult> {
      if (closed) throw new SuperSpreaderError("INVALID_STATE", "the in-memory queue is closed");
      for (const job of jobs) assertValidJob(job);
      let added = 0;
      let duplicates = 0;
      for (const job of jobs) {
        if (byId.has(job.id)) {
          duplicates += 1;
          continue;
        }
        const copy = { ...job, data: JSON.parse(JSON.stringify(job.data)) as QueueJob["data"] };
        const record: MemoryJobRecord = {
          job: copy,
          state: "delayed",
          runAt: job.runAt,
          attemptsMade: 0,
          seq: seq++,
          lastError: null,
          outcome: null,
        };
        byId.set(job.id, record);
        records.push(record);
        pending.add(record);
        added += 1;
      }
      if (added > 0) notify();
      return { added, duplicates };
    },

    async counts(): Promise<QueueCounts> {
      const now = clock.now();
      let waiting = 0;
      let delayed = 0;
      let active = 0;
      let failed = 0;
      for (const r of pending) {
        if (r.runAt <= now) waiting += 1;
        else delayed += 1;
      }
      for (const r of records) {
        if (r.state === "active") active += 1;
        else if (r.state === "failed") failed += 1;
      }
      return { waiting, delayed, active, failed };
    },

    async lookup(ids: readonly string[]): Promise<JobState[]> {
      const now = clock.now();
      return ids.map((id) => {
        const record = byId.get(id);
        if (!record) return "missing";
        if (record.state === "delayed" || record.state === "waiting") return record.runAt > now ? "delayed" : "waiting";
        return record.state;
      });
    },

    async close() {
      closed = true;
      listeners.clear();
    },

    all: () => records,

    nextRunAt() {
      let next: number | null = null;
      for (const r of pending) if (next === null || r.runAt < next) next = r.runAt;
      return next;
    },

    claim() {
      const now = clock.now();
      let best: MemoryJobRecord | null = null;
      for (const r of pending) if (r.runAt <= now && (best === null || before(r, best))) best = r;
      if (!best) return null;
      pending.delete(best);
      best.state = "active";
      best.attemptsMade += 1;
      return best;
    },

    settle(id, result) {
      const record = get(id, "active");
      if ("outcome" in result) {
        record.state = "completed";
        record.outcome = result.outcome;
        return;
      }
      const error = result.error;
      record.lastError = error instanceof Error ? error.message : String(error);
      if (record.attemptsMade < record.job.attempts) {
        record.state = "delayed";
        record.runAt = clock.now() + retryDelayMs;
        pending.add(record);
        notify();
      } else {
        record.state = "failed";
      }
    },

    stall(id) {
      const record = get(id, "active");
      record.attemptsMade -= 1;
      record.state = "waiting";
      pending.add(record);
      notify();
    },

    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** Options of {@link createMemoryWorker}. */
export interface MemoryWorkerOptions {
  /** The queue to consume. */
  queue: MemoryJobQueue;
  /** The runtime (a `SuperSpreader`) that processes each job. */
  spreader: JobProcessor;
  /**
   * Jobs processed at once by {@link MemoryWorker.start}.
   * @default 1
   */
  concurrency?: number;
  /**
   * Called with errors thrown by jobs (after the queue recorded them).
   * @default ignores them: failures are recorded by the queue and the runtime
   */
  onError?: (error: unknown, record: MemoryJobRecord) => void;
}

/** Consumes a {@link MemoryJobQueue}. */
export interface MemoryWorker {
  /** Starts processing due jobs in the background with real waiting (for demos and real-time tests). */
  start(): void;
  /** Stops: aborts running handlers' signals and waits for them to settle. Idempotent. */
  stop(): Promise<void>;
  /**
   * Processes jobs one at a time, moving a {@link ManualClock} forward to the next
   * run time whenever nothing is due, until no job is left (or `maxJobs` ran).
   * Returns the number of jobs run. For fast, deterministic tests.
   */
  runUntilIdle(clock: ManualClock, options?: { maxJobs?: number }): Promise<number>;
}

/**
 * Creates a worker for the in-memory queue.
 *
 * @example
 * ```ts
 * const clock = createManualClock(Date.now());
 * const queue = createMemoryJobQueue({ clock });
 * const spreader = createSuperSpreader({ queue, store: createMemoryStateStore(), clock });
 * // … define and start a backfill …
 * await createMemoryWorker({ queue, spreader }).runUntilIdle(clock);
 * ```
 */
export function createMemoryWorker(options: MemoryWorkerOptions): MemoryWorker {
  const { queue, spreader } = options;
  const concurrency = options.concurrency ?? 1;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `concurrency must be a whole number ≥ 1, got ${describeValue(concurrency)}`, {
      field: "concurrency",
    });
  }
  const controller = new AbortController();
  let loops: Promise<void>[] = [];
  let running = false;

  const runOne = async (record: MemoryJobRecord): Promise<void> => {
    try {
      const outcome = await spreader.perform(record.job.data, {
        attempt: record.attemptsMade,
        maxAttempts: record.job.attempts,
        signal: controller.signal,
      });
      queue.settle(record.job.id, { outcome });
    } catch (error) {
      queue.settle(record.job.id, { error });
      options.onError?.(error, record);
    }
  };

  const loop = async (): Promise<void> => {
    while (running) {
      const record = queue.claim();
      if (record) {
        await runOne(record);
        // A handler that never yields (an in-process database) would otherwise starve timers
        // and I/O of the whole process while jobs are due.
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      const next = queue.nextRunAt();
      const wait = next === null ? 1_000 : Math.max(1, Math.min(1_000, next - Date.now()));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, wait);
        const off = queue.onChange(done);
        const onAbort = () => done();
        controller.signal.addEventListener("abort", onAbort, { once: true });
        function done() {
          clearTimeout(timer);
          off();
          controller.signal.removeEventListener("abort", onAbort);
          resolve();
        }
      });
    }
  };

  return {
    start() {
      if (running) return;
      running = true;
      loops = Array.from({ length: concurrency }, () => loop());
    },
    async stop() {
      running = false;
      controller.abort();
      await Promise.all(loops);
      loops = [];
    },
    async runUntilIdle(clock, runOptions = {}) {
      const maxJobs = runOptions.maxJobs ?? Number.POSITIVE_INFINITY;
      let ran = 0;
      while (ran < maxJobs) {
        const record = queue.claim();
        if (record) {
          await runOne(record);
          ran += 1;
          continue;
        }
        const next = queue.nextRunAt();
        if (next === null) break;
        clock.set(next);
      }
      return ran;
    },
  };
}
