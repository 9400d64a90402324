import { functionOption, shutdownOption, wholeNumberOption } from "./options.js";
import { startWatchdog } from "./watchdog-loop.js";
import { systemClock, type Clock, type ManualClock } from "./clock.js";
import { SuperSpreaderError, describeValue } from "./errors.js";
import type { EnqueueResult, JobOutcome, JobProcessor, JobQueue, JobState, QueueCounts, QueueJob, ShutdownMode } from "./ports.js";
import { assertValidJob } from "./validate-args.js";

/** State of a job in the in-memory queue. */
export type MemoryJobState = "delayed" | "waiting" | "active" | "completed" | "failed";

/** A job as the in-memory queue keeps it. */
export interface MemoryJobRecord {
  readonly job: QueueJob;
  state: MemoryJobState;
  /** Current run time (epoch ms); moves on retry. The queue orders pending jobs by it: read it, never change it. */
  runAt: number;
  /** Runs started so far, not counting runs handed back unspent (stalls, shutdowns). */
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
  /** Every job accepted and not removed, in order of acceptance (the queue retains finished jobs, so dedup by id holds until {@link remove}). */
  all(): readonly MemoryJobRecord[];
  /** The earliest run time among delayed and waiting jobs, or null when none. */
  nextRunAt(): number | null;
  /**
   * Claims the due job that should run next, or null. Among due jobs: lowest priority number
   * first (a job without a priority before any with one, as on BullMQ), then earliest run
   * time, then acceptance — the order BullMQ delivers jobs in once they are due.
   */
  claim(): MemoryJobRecord | null;
  /**
   * Settles a claimed job: completed without `error`; otherwise retried while attempts remain,
   * else failed. Returns false (changing nothing) when the job is no longer active: it was
   * {@link remove}d, {@link discard}ed or {@link stall}ed meanwhile, so its worker lost it,
   * as a BullMQ worker whose lock was taken cannot record the outcome.
   */
  settle(id: string, result: { outcome: JobOutcome } | { error: unknown }): boolean;
  /**
   * Puts a claimed job back without spending its attempt: its worker died (a stall), or handed
   * it back when shutting down. It runs again, with the same attempt number. Returns false
   * (changing nothing) when the job is no longer active.
   */
  stall(id: string): boolean;
  /**
   * A test aid: deletes a job as if removed from the queue by hand (or lost with a Redis
   * restart): `lookup` answers `missing` and the id can be enqueued again. A worker running it
   * cannot record its outcome. Returns false when no job has that id.
   */
  remove(id: string): boolean;
  /**
   * A test aid: the queue gives a job up without running it again, as BullMQ fails a job past
   * its stall limit: it becomes `failed` (`lookup` answers `failed`) and nothing reaches the
   * runtime. A worker running it cannot record its outcome. Returns false when the job is
   * unknown or already finished.
   */
  discard(id: string, reason?: string): boolean;
  /** Calls `listener` whenever jobs are added or become due sooner. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/**
 * A binary min-heap: `push` and `pop` are O(log n). `first(a, b)` says whether `a` comes out before `b`;
 * it must be a strict total order, so equal keys never depend on the heap's shape.
 */
class Heap<T> {
  private items: T[] = [];
  private readonly first: (a: T, b: T) => boolean;

  constructor(first: (a: T, b: T) => boolean) {
    this.first = first;
  }

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    let i = items.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = items[parent] as T;
      if (!this.first(item, above)) break;
      items[i] = above;
      i = parent;
    }
    items[i] = item;
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) this.sink(last, 0);
    return top;
  }

  /** Keeps only the items `keep` accepts, and restores heap order (O(n)). */
  retain(keep: (item: T) => boolean): void {
    this.items = this.items.filter(keep);
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.sink(this.items[i] as T, i);
  }

  /** Every item, in no particular order. */
  values(): readonly T[] {
    return this.items;
  }

  private sink(item: T, from: number): void {
    const items = this.items;
    const n = items.length;
    let i = from;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && this.first(items[right] as T, items[child] as T)) child = right;
      const below = items[child] as T;
      if (!this.first(below, item)) break;
      items[i] = below;
      i = child;
    }
    items[i] = item;
  }
}

/**
 * Creates an in-memory JobQueue that honours run times, priorities, dedup by id (it retains
 * every job until {@link MemoryJobQueue.remove}) and attempts. The embedded default for demos
 * and for tests of user code; pair it with {@link createMemoryWorker}. `remove`, `discard` and
 * `stall` simulate what real queues do to jobs (a job deleted by hand, a job given up after
 * stalls, a dead worker), so tests can check that a run heals by itself.
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
  // Pending jobs (delayed or waiting): what counts() and lookup() answer from.
  const pending = new Set<MemoryJobRecord>();
  const listeners = new Set<() => void>();
  let closed = false;
  let seq = 0;

  const notify = () => {
    for (const listener of listeners) listener();
  };
  const active = (id: string): MemoryJobRecord | null => {
    const record = byId.get(id);
    return record?.state === "active" ? record : null;
  };
  const before = (a: MemoryJobRecord, b: MemoryJobRecord): boolean => {
    const pa = a.job.priority ?? 0;
    const pb = b.job.priority ?? 0;
    if (pa !== pb) return pa < pb;
    if (a.runAt !== b.runAt) return a.runAt < b.runAt;
    return a.seq < b.seq;
  };
  // Two heaps make claiming O(log n) at any number of pending jobs: `later` holds pending jobs by run
  // time; claim() moves those due into `due`, ordered as claim() hands them out. Priority comes first
  // only among due jobs, so one heap cannot serve both. Jobs removed or discarded while pending are
  // left in place and dropped when they come to the top (`stale` counts them; past half the entries
  // both heaps are compacted), so neither operation has to search a heap.
  const later = new Heap<MemoryJobRecord>((a, b) => a.runAt < b.runAt || (a.runAt === b.runAt && a.seq < b.seq));
  const due = new Heap<MemoryJobRecord>(before);
  let stale = 0;
  // The latest `now` jobs were moved into `due` for: a clock that goes back (a system clock
  // corrected) makes some of them not yet due again.
  let dueAsOf = Number.NEGATIVE_INFINITY;
  const schedule = (record: MemoryJobRecord) => {
    pending.add(record);
    later.push(record);
  };
  const unschedule = (record: MemoryJobRecord) => {
    if (!pending.delete(record)) return;
    stale += 1;
    if (stale > (later.size + due.size) / 2) {
      later.retain((r) => pending.has(r));
      due.retain((r) => pending.has(r));
      stale = 0;
    }
  };
  /** Pops stale entries off the top of `heap`; returns its first pending job. */
  const top = (heap: Heap<MemoryJobRecord>): MemoryJobRecord | undefined => {
    let record = heap.peek();
    while (record !== undefined && !pending.has(record)) {
      heap.pop();
      stale -= 1;
      record = heap.peek();
    }
    return record;
  };
  /** Moves every job due at `now` from `later` to `due` (and back, for a clock that went back). */
  const promote = (now: number) => {
    if (now < dueAsOf) {
      const notYet = due.values().filter((r) => r.runAt > now);
      due.retain((r) => r.runAt <= now);
      for (const record of notYet) later.push(record);
    }
    dueAsOf = now;
    for (let record = top(later); record !== undefined && record.runAt <= now; record = top(later)) {
      later.pop();
      due.push(record);
    }
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
        schedule(record);
        added += 1;
      }
      if (added > 0) notify();
      return { added, duplicates };
    },

    async counts(): Promise<QueueCounts> {
      const now = clock.now();
      let waiting = 0;
      let delayed = 0;
      let activeCount = 0;
      let failed = 0;
      for (const r of pending) {
        if (r.runAt <= now) waiting += 1;
        else delayed += 1;
      }
      for (const r of records) {
        if (r.state === "active") activeCount += 1;
        else if (r.state === "failed") failed += 1;
      }
      return { waiting, delayed, active: activeCount, failed };
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
      // `due` is empty whenever claim() just returned null, which is when workers ask.
      let next = top(later)?.runAt ?? null;
      for (const r of due.values()) if (pending.has(r) && (next === null || r.runAt < next)) next = r.runAt;
      return next;
    },

    claim() {
      promote(clock.now());
      const best = top(due);
      if (!best) return null;
      due.pop();
      pending.delete(best);
      best.state = "active";
      best.attemptsMade += 1;
      return best;
    },

    settle(id, result) {
      const record = active(id);
      if (!record) return false;
      if ("outcome" in result) {
        record.state = "completed";
        record.outcome = result.outcome;
        return true;
      }
      const error = result.error;
      record.lastError = error instanceof Error ? error.message : String(error);
      if (record.attemptsMade < record.job.attempts) {
        record.state = "delayed";
        record.runAt = clock.now() + retryDelayMs;
        schedule(record);
        notify();
      } else {
        record.state = "failed";
      }
      return true;
    },

    stall(id) {
      const record = active(id);
      if (!record) return false;
      record.attemptsMade -= 1;
      record.state = "waiting";
      schedule(record);
      notify();
      return true;
    },

    remove(id) {
      const record = byId.get(id);
      if (!record) return false;
      byId.delete(id);
      unschedule(record);
      records.splice(records.indexOf(record), 1);
      return true;
    },

    discard(id, reason = "given up by the queue") {
      const record = byId.get(id);
      if (!record || record.state === "completed" || record.state === "failed") return false;
      unschedule(record);
      record.state = "failed";
      record.lastError = reason;
      return true;
    },

    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** Options of {@link createMemoryWorker}: the same as every worker runner's. */
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
   * What {@link MemoryWorker.close} does with running jobs: `"drain"` lets them finish for up
   * to `shutdownTimeoutMs`, then aborts their signal; `"abort"` aborts it at once. An aborted
   * job whose handler gives up goes back to the queue without spending an attempt.
   * @default "drain"
   */
  shutdown?: ShutdownMode;
  /**
   * Ms `close()` lets running jobs finish (`"drain"`), and then ms it waits for aborted
   * handlers to settle; a handler still running then is abandoned and its job put back.
   * @default 30000
   */
  shutdownTimeoutMs?: number;
  /**
   * Ms between two calls of `spreader.watchdog()` while started (it revives dead tick chains); `0` turns it off.
   * @default 5000
   */
  watchdogIntervalMs?: number;
  /**
   * Called with errors thrown by jobs (after the queue recorded them, with the job) and by the
   * watchdog (without a job).
   * @default ignores them: failures are recorded by the queue and the runtime
   */
  onError?: (error: unknown, record: MemoryJobRecord | undefined) => void;
}

/** Consumes a {@link MemoryJobQueue}. */
export interface MemoryWorker {
  /** Starts processing due jobs in the background with real waiting (for demos and real-time tests), and the watchdog loop. */
  start(): void;
  /**
   * Stops taking jobs and shuts down as the `shutdown` option says; stops the watchdog.
   * Resolves once running jobs finished or were handed back. Idempotent.
   */
  close(): Promise<void>;
  /** The same as {@link close}. @deprecated use `close()`, the name every worker runner uses. */
  stop(): Promise<void>;
  /**
   * A test aid: the worker's process dies. It stops at once without aborting anything: running
   * handlers are abandoned (whatever they return is dropped) and their jobs go back to the queue
   * as stalled, to run again on another worker.
   */
  kill(): void;
  /**
   * Processes jobs one at a time, moving a {@link ManualClock} forward to the next
   * run time whenever nothing is due, until no job is left (or `maxJobs` ran).
   * Returns the number of jobs run. For fast, deterministic tests.
   */
  runUntilIdle(clock: ManualClock, options?: { maxJobs?: number }): Promise<number>;
}

/** One delivery in flight on a memory worker. */
interface Running {
  readonly record: MemoryJobRecord;
  /** Resolves when the handler settled and its outcome was recorded, or when the delivery was abandoned. */
  readonly done: Promise<void>;
  /** Aborts the delivery's signal (shutdown). */
  readonly controller: AbortController;
  /** The worker no longer owns the job (killed, or abandoned after the shutdown grace): whatever the handler returns is dropped. */
  abandon(): void;
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
  const concurrency = wholeNumberOption(options.concurrency, "concurrency", 1, 1);
  const shutdown = shutdownOption(options.shutdown);
  const shutdownTimeoutMs = wholeNumberOption(options.shutdownTimeoutMs, "shutdownTimeoutMs", 30_000, 0);
  const watchdogIntervalMs = wholeNumberOption(options.watchdogIntervalMs, "watchdogIntervalMs", 5_000, 0);
  const onError = functionOption<(error: unknown, record: MemoryJobRecord | undefined) => void>(options.onError, "onError", () => {});
  const running = new Set<Running>();
  let loops: Promise<void>[] = [];
  let started = false;
  let stopping = false;
  let watchdog: { stop(): Promise<void> } | null = null;
  let closing: Promise<void> | undefined;

  const runOne = (record: MemoryJobRecord): Running => {
    let abandoned = false;
    let finish = (): void => {};
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    // A signal per delivery, not one for the worker: a handler adding a listener to every
    // batch's signal would otherwise pile listeners up on one long-lived signal.
    const controller = new AbortController();
    const delivery: Running = {
      record,
      done,
      controller,
      abandon() {
        abandoned = true;
        finish();
      },
    };
    running.add(delivery);
    void (async () => {
      let result: { outcome: JobOutcome } | { error: unknown };
      try {
        const context = { attempt: record.attemptsMade, maxAttempts: record.job.attempts, signal: controller.signal };
        result = { outcome: await spreader.perform(record.job.data, context) };
      } catch (error) {
        result = { error };
      }
      // A dead or abandoning worker records nothing: the job is already back in the queue.
      if (abandoned) return;
      // A handler that gave up because shutdown aborted it hands its job back unspent.
      if ("error" in result && controller.signal.aborted) queue.stall(record.job.id);
      else if (queue.settle(record.job.id, result) && "error" in result) onError(result.error, record);
      running.delete(delivery);
      finish();
    })();
    return delivery;
  };

  const loop = async (): Promise<void> => {
    while (started && !stopping) {
      const record = queue.claim();
      if (record) {
        await runOne(record).done;
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
        wake.add(done);
        function done() {
          clearTimeout(timer);
          off();
          wake.delete(done);
          resolve();
        }
      });
    }
  };
  // Idle loops waiting for a job, woken at once by close() and kill().
  const wake = new Set<() => void>();
  const halt = () => {
    stopping = true;
    for (const done of [...wake]) done();
  };

  /** Waits up to `ms` for every running delivery to settle; true when they all did. */
  const settledWithin = async (ms: number): Promise<boolean> => {
    if (running.size === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const all = Promise.all([...running].map((r) => r.done)).then(() => true);
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(running.size === 0), ms);
    });
    try {
      return await Promise.race([all, late]);
    } finally {
      clearTimeout(timer);
    }
  };

  /** Gives up on the running deliveries: their jobs go back to the queue, their outcomes are dropped. */
  const abandonAll = () => {
    for (const delivery of running) {
      delivery.abandon();
      queue.stall(delivery.record.job.id);
    }
    running.clear();
  };

  const close = (): Promise<void> => {
    closing ??= (async () => {
      halt();
      // Stopped alongside, not first: a watchdog run in progress must not delay an abort.
      const watchdogStopped = watchdog?.stop();
      const finished = shutdown === "drain" && (await settledWithin(shutdownTimeoutMs));
      if (!finished) {
        const reason = new DOMException("the in-memory worker is shutting down", "AbortError");
        for (const delivery of running) delivery.controller.abort(reason);
        // Handlers that ignore the signal are left behind, their jobs put back.
        if (!(await settledWithin(shutdownTimeoutMs))) abandonAll();
      }
      await Promise.all(loops);
      loops = [];
      await watchdogStopped;
    })();
    return closing;
  };

  return {
    start() {
      if (started || closing) return;
      started = true;
      watchdog = startWatchdog(spreader, { intervalMs: watchdogIntervalMs, onError: (error) => onError(error, undefined) });
      loops = Array.from({ length: concurrency }, () => loop());
    },
    close,
    stop: close,
    kill() {
      halt();
      void watchdog?.stop();
      abandonAll();
      // Dead: a later close() has nothing left to do.
      closing ??= Promise.resolve();
    },
    async runUntilIdle(clock, runOptions = {}) {
      const maxJobs = runOptions.maxJobs ?? Number.POSITIVE_INFINITY;
      let ran = 0;
      while (ran < maxJobs) {
        const record = queue.claim();
        if (record) {
          await runOne(record).done;
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
