/**
 * The ports: what core needs from a queue, a state store and an id source.
 *
 * Types only. Adapters implement these; `@superspreader/contract-tests` checks
 * that they do. No client, connection or transaction type appears here.
 *
 * Conventions used throughout:
 * - Ids are `bigint` in memory and plain decimal strings (`"12345"`) on the wire,
 *   so ids beyond 2^53 stay exact. Ids are never negative.
 * - Ranges are inclusive on both ends: `{ beginId: 1n, endId: 100n }` holds 100 ids.
 * - Times are absolute epoch milliseconds (`Date.now()` scale) unless a name says otherwise.
 * - A backfill is addressed by its `name`; one run of it by `runId`. Everything a
 *   run records (ledger, deferred, failed, metrics) is scoped to `(name, runId)`, so a
 *   restarted backfill never mixes with leftovers of an earlier run.
 *
 * @module
 */

/* ------------------------------------------------------------------ ranges */

/** An inclusive range of ids. */
export interface IdRange {
  /** First id of the range (inclusive). */
  readonly beginId: bigint;
  /** Last id of the range (inclusive); `endId >= beginId`. */
  readonly endId: bigint;
}

/**
 * A range together with the cycle whose job carried it. `(beginId, endId, cycle)`
 * identifies an entry: the same range deferred from two different cycles is two entries.
 */
export interface RangeEntry extends IdRange {
  /** The scheduler cycle that enqueued the job carrying this range. */
  readonly cycle: number;
}

/** A range whose handler kept failing after the queue's retries were spent. */
export interface FailedRange extends RangeEntry {
  /**
   * The last error's message, followed by its cause chain, one `caused by: …` line per
   * `cause` (drizzle's "Failed query: …" is not the reason; its cause `ECONNREFUSED` is).
   */
  readonly error: string;
  /** The last error's `name` (or `code` when it has one). */
  readonly errorName: string;
  /** How many times the handler ran for this range before it was given up. */
  readonly attempts: number;
  /** When it was given up (epoch ms). */
  readonly at: number;
}

/**
 * A range the scheduler has enqueued and nobody has recorded yet: neither done, deferred
 * nor failed. The runtime records one per batch job before enqueueing it, and every
 * outcome (done, deferred, failed, reclaimed) removes it, so a range that stays
 * outstanding long past its run time is either still in the queue or lost.
 */
export interface OutstandingEntry extends RangeEntry {
  /**
   * When to look at it next (epoch ms): the batch's planned run time plus a grace, moved
   * later each time the queue still holds its job.
   */
  readonly checkAt: number;
}

/** How long a batch took, recorded with its completion (whole milliseconds ≥ 0). */
export interface BatchTiming {
  /** The handler's run time. */
  readonly handlerMs: number;
  /** How long after its planned run time it started. */
  readonly lateMs: number;
  /**
   * The slot a start counts against (epoch ms: the batch's planned run time), given when it started on
   * time without reserving a slot of the run's start bucket (see `readForStart`): the store counts that
   * start in the bucket now, as a reservation at `slotAt` would have (the next free slot moves to at
   * least one interval after it). The planned time, not the actual start, so that on-time starts a little
   * late never push the bucket ahead of the plan, which the plan spaced at the rate.
   */
  readonly slotAt?: number;
}

/** One batch's collected result (the value its handler returned), as the store keeps it. */
export interface OutputEntry extends IdRange {
  /** When the batch finished (epoch ms). */
  readonly at: number;
  /** The result as JSON text (bigints written as decimal strings), at most the run's `maxBytes` long in UTF-8. */
  readonly result: string;
}

/** What {@link StateStore.addOutput} did: kept it, found the range's result already kept, or found the run's bound reached. */
export type OutputAdded = "added" | "exists" | "full";

/** A page of a run's collected results, and the run's totals. */
export interface OutputPage {
  /** Results in the order they were kept. */
  readonly entries: OutputEntry[];
  /** The cursor of the next page, or null when this page ends the list. */
  readonly next: number | null;
  /** Results kept for the run. */
  readonly count: number;
  /** UTF-8 bytes of their JSON. */
  readonly bytes: number;
  /** Results not kept because the run's bound was reached. */
  readonly dropped: number;
}

/** A backfill's claim on a shared rate budget (see `StateStore.claimBudget`). */
export interface BudgetClaim {
  /** The budget: batches per second all members together may start. */
  readonly perSecond: number;
  /** The member's weight (> 0). */
  readonly weight: number;
  /** The rate the member would plan without the budget (≥ 0; 0 leaves the budget to the others). */
  readonly want: number;
  /** A member that has not claimed for this long (ms) is dropped. */
  readonly ttlMs: number;
}

/** One member of a shared rate budget, as stored. */
export interface BudgetMember {
  readonly member: string;
  readonly weight: number;
  readonly want: number;
  /** The most batches per second it may plan, until it claims again. */
  readonly cap: number;
  /** When it last claimed (epoch ms). */
  readonly at: number;
}

/** What `recordFailure` reports after counting a failed attempt. */
export interface FailureCounts {
  /** Failed attempts since the last range recorded done (this one included). */
  readonly consecutive: number;
  /** Failed attempts in the current and the previous minute (by `at`), this one included. */
  readonly recentFailures: number;
  /** Ranges recorded done in the current and the previous minute. */
  readonly recentDone: number;
}

/* ------------------------------------------------------------------- queue */

/** Data of the self-rescheduling scheduler job. Cycle `cycle` of run `runId`. */
export interface TickJobData {
  readonly kind: "tick";
  readonly backfill: string;
  readonly runId: string;
  readonly cycle: number;
  /** Resume generation: a tick whose epoch is not the run's current epoch is stale. */
  readonly epoch: number;
  /** The instant this tick was planned to run (epoch ms): the cycle's nominal start. */
  readonly scheduledAt: number;
}

/** Data of a job that processes one id range. Ids are decimal strings. */
export interface BatchJobData {
  readonly kind: "batch";
  readonly backfill: string;
  readonly runId: string;
  readonly cycle: number;
  readonly beginId: string;
  readonly endId: string;
  /** The batch's planned run time (epoch ms), for queue-lag metrics. Absent in jobs queued by older versions. */
  readonly scheduledAt?: number;
  /** A held run's probe: it runs although the run is held, and its success resumes the run. */
  readonly probe?: boolean;
}

/** Everything core ever puts on a queue. Plain JSON. */
export type JobData = TickJobData | BatchJobData;

/** One job to enqueue. */
export interface QueueJob {
  /**
   * Deterministic job id, unique per queue: `[A-Za-z0-9_.-]`, at most 200
   * characters, never purely numeric (BullMQ rejects those and ids with `:`).
   */
  readonly id: string;
  /** Absolute time (epoch ms) before which the job must not start. A time in the past means "now". */
  readonly runAt: number;
  /** The payload; adapters store it as JSON and hand it back unchanged to the processor. */
  readonly data: JobData;
  /** Maximum number of times the job may run (first run included); at least 1. */
  readonly attempts: number;
  /**
   * Optional priority, 1 (first) to 2,097,151 (last); absent means the queue's default.
   * Adapters without priorities ignore it (they say so in their `capabilities`).
   */
  readonly priority?: number;
}

/** What `enqueue` did. */
export interface EnqueueResult {
  /** Jobs newly stored. */
  readonly added: number;
  /** Jobs skipped because a job with the same id was already present. */
  readonly duplicates: number;
}

/** Job counts, for progress and backpressure. Each is a whole number ≥ 0. */
export interface QueueCounts {
  /** Ready to run now. */
  readonly waiting: number;
  /** Waiting for their run time. */
  readonly delayed: number;
  /** Being processed by a worker. */
  readonly active: number;
  /** Failed for good (retries spent) and still retained by the queue. */
  readonly failed: number;
}

/**
 * Where a job is, as `JobQueue.lookup` reports it. `waiting`, `delayed` and `active` mean
 * the queue will still deliver it (or is delivering it); `completed` and `failed` mean it
 * never will again; `missing` means the queue holds no job of that id (never added,
 * evicted by retention, deleted by hand, or lost with a Redis restart).
 */
export type JobState = "waiting" | "delayed" | "active" | "completed" | "failed" | "missing";

/** Optional abilities of a queue. */
export interface JobQueueCapabilities {
  /** `QueueJob.priority` is honoured. */
  readonly priorities: boolean;
}

/**
 * A delayed job queue.
 *
 * The consuming side is adapter-specific: an adapter's worker runner takes jobs
 * off the queue and hands each `data` to a {@link JobProcessor} (the runtime).
 */
export interface JobQueue {
  readonly capabilities: JobQueueCapabilities;
  /**
   * Stores the jobs. Idempotent per job id: a job whose id is already present in
   * the queue, in any state the queue still retains (waiting, delayed, active,
   * completed, failed), is skipped and left exactly as it was.
   *
   * Jobs are stored in the order given. Not atomic as a whole: after a crash a
   * prefix of the list may be stored; calling again with the same list completes it.
   * Rejects (having stored nothing) when a job is malformed: bad id, non-finite runAt,
   * attempts < 1.
   */
  enqueue(jobs: readonly QueueJob[]): Promise<EnqueueResult>;
  /** Current counts. Not a snapshot across kinds on every adapter; good enough for backpressure. */
  counts(): Promise<QueueCounts>;
  /**
   * The state of each job, by id, in the order given: one answer per id (`missing` for an
   * id the queue does not hold). A job retried after a failed attempt, waiting for its
   * backoff, is `delayed` (or `waiting`), never `failed`: `failed` is final. Read-only;
   * an empty list answers `[]` without a round trip.
   */
  lookup(ids: readonly string[]): Promise<JobState[]>;
  /** Releases what the adapter opened. Never closes an injected client. Idempotent. */
  close(): Promise<void>;
}

/** What a worker runner tells the processor about the delivery of a job. */
export interface JobContext {
  /** 1 for the first run, 2 for the first retry, … */
  readonly attempt: number;
  /** The job's `attempts`: when `attempt === maxAttempts` no retry follows a failure. */
  readonly maxAttempts: number;
  /**
   * Aborted when the worker shuts down; handlers should stop early when it fires.
   * Runners hand an aborted job back to the queue without spending an attempt, so the
   * processor never records a range as failed because of a shutdown.
   */
  readonly signal: AbortSignal;
}

/** What {@link JobProcessor.watchdog} found and did for one backfill. */
export interface WatchdogAction {
  readonly backfill: string;
  /**
   * `revived`: the tick chain had no live tick and one was enqueued; `started`: a start
   * requested from outside (the CLI) was carried out here. Backfills needing nothing are not listed.
   */
  readonly action: "revived" | "started";
  /** Why, in words ("tick job t12.e3 is missing", …). */
  readonly reason: string;
}

/** How the processor disposed of a job (for logs and tests). */
export type JobOutcome =
  /** A tick planned and enqueued its cycle. */
  | "planned"
  /** A tick found the backfill complete (or failed) and ended the chain. */
  | "finished"
  /** A tick or batch belongs to another cycle, epoch or run, or the backfill is paused/cancelled: nothing done. */
  | "stale"
  /** A batch ran its handler and recorded the range as done. */
  | "done"
  /** A batch arrived while its backfill was paused and was recorded for re-enqueueing on resume. */
  | "deferred"
  /** A batch of a cancelled or unknown run: dropped. */
  | "skipped";

/** A worker runner's shutdown: `drain` lets running jobs finish (up to a timeout) and then aborts them; `abort` aborts them at once. */
export type ShutdownMode = "drain" | "abort";

/**
 * Processes one job's data. The runtime (`SuperSpreader`) implements it; worker
 * runners call it once per delivery. A rejection means "failed this attempt": the
 * runner lets the queue retry it while attempts remain.
 */
export interface JobProcessor {
  perform(data: unknown, context: JobContext): Promise<JobOutcome>;
  /**
   * Keeps the tick chains of the backfills this process defines alive: revives a chain
   * whose current tick job is gone (missing, failed for good) and carries out starts
   * requested from outside. Never creates a second chain (epochs). Worker runners call it
   * every few seconds; safe to call from many processes at once.
   */
  watchdog(): Promise<WatchdogAction[]>;
}

/* ------------------------------------------------------------------ health */

/** A health indicator's verdict: go on, go slower, or stop starting batches. */
export type HealthLevel = "ok" | "slow" | "stop";

/** What a health indicator returns. */
export interface HealthReading {
  readonly level: HealthLevel;
  /** Why, in words, with the value and the threshold: `"replica lag 2.3 s > 1.5 s"`. */
  readonly reason: string;
  /** The measured value (seconds of lag, transactions, threads, …), or null when there is none. */
  readonly value: number | null;
}

/** What an indicator is given each time it is polled. */
export interface HealthContext {
  /** The backfill it is polled for. */
  readonly backfill: string;
  /** Aborted when the check takes longer than its timeout: stop querying and throw. */
  readonly signal: AbortSignal;
}

/**
 * A pluggable health signal of the database a backfill writes (replica lag, long transactions,
 * load): polled on an interval by the runtime, which lowers the rate on `slow` and holds the run on
 * `stop`. Throw when it cannot read its signal: the runtime fails closed after a timeout.
 * `@superspreader/source-drizzle` has built-ins for PostgreSQL and MySQL/MariaDB.
 */
export type HealthIndicator = (context: HealthContext) => Promise<HealthReading>;

/* --------------------------------------------------------------- id source */

/** Optional abilities of an id source. */
export interface IdSourceCapabilities {
  /**
   * Counts the rows whose id lies in `[beginId, endId]` (inclusive), within the
   * source's scope. Used for progress in rows rather than ids. Absent when the
   * source cannot count.
   */
  readonly countRange?: (beginId: bigint, endId: bigint) => Promise<bigint>;
}

/** Where the ids of a backfill come from (a table's integer key, usually). */
export interface IdSource {
  readonly capabilities: IdSourceCapabilities;
  /** The smallest id in scope, or `null` when there are no rows. Read once per run start. */
  minId(): Promise<bigint | null>;
  /** The largest id in scope, or `null` when there are no rows. Read once per run start. */
  maxId(): Promise<bigint | null>;
}

/* ------------------------------------------------------------- state store */

/** A versioned document, as stored. */
export interface Versioned<T> {
  /** Starts at 1 on creation, +1 on every successful write. */
  readonly version: number;
  readonly value: T;
}

/** One recorded configuration change (the audit trail). */
export interface ConfigChange {
  /** When (epoch ms). */
  readonly at: number;
  /** Who or what made it: `"code"`, `"cli"`, a user name; free text. */
  readonly actor: string;
  /** Optional free text. */
  readonly reason?: string;
  /** The fields that changed, with old and new values (JSON values). */
  readonly changes: Readonly<Record<string, { readonly from: unknown; readonly to: unknown }>>;
}

/** Counters of one run. `ids` are decimal strings (they can exceed 2^53). */
export interface RunMetrics {
  /** Batches recorded done (first completion of a range only). */
  readonly batchesDone: number;
  /** Ids covered by those batches. */
  readonly idsDone: string;
  /** Batches recorded failed (every give-up, including repeated ones after a retry). */
  readonly batchesFailed: number;
  /** Batches recorded deferred. */
  readonly batchesDeferred: number;
  /** Ranges found lost (enqueued, never recorded, no longer in the queue) and reclaimed for re-enqueueing. */
  readonly batchesLost: number;
  /** Failed attempts since the last range recorded done. */
  readonly consecutiveFailures: number;
  /** When the last range was recorded done (epoch ms), or null. */
  readonly lastDoneAt: number | null;
  /**
   * Ids done per minute for the most recent minutes (at most 60 buckets), oldest
   * first; `minute` is the bucket's start (epoch ms, a multiple of 60,000).
   */
  readonly recent: ReadonlyArray<{
    readonly minute: number;
    readonly ids: string;
    readonly batches: number;
    readonly failures: number;
    /** Sum of the handler times of the minute's first completions that were recorded with a timing (ms). */
    readonly handlerMs: number;
    /** Sum of how late those batches started (ms). */
    readonly lateMs: number;
  }>;
}

/**
 * Durable state of every backfill, keyed by name.
 *
 * The backfill document (`TDoc`, owned and validated by core) is opaque to the
 * store: it keeps it as JSON and returns it unchanged. Everything else is
 * range bookkeeping the store implements atomically.
 */
export interface StateStore {
  /** The backfill's document and version, or `null` when the name is unknown. One read. */
  get(name: string): Promise<Versioned<unknown> | null>;
  /**
   * What a batch reads before it starts, in one round trip: the backfill's document (as `get`), and a
   * start slot of the run's rate limit (see `setStartRate`), reserved atomically with the read. The
   * limit is a GCRA token bucket: `burst` starts at once, then one every `1/perSecond` s. `waitMs` is
   * how long after `at` (now, epoch ms) the reserved slot begins: 0 when a token was free (or the run has
   * no limit), else the batch waits that long and then starts; every call reserves its own slot, so
   * waiting batches never compete for the same one. At a rate of 0 nothing is reserved and `waitMs` is
   * `Infinity`.
   */
  readForStart(name: string, runId: string, at: number): Promise<{ readonly doc: Versioned<unknown> | null; readonly waitMs: number }>;
  /**
   * Sets the run's start rate limit: `burst` starts at once (a whole number ≥ 1), then one every
   * `1/perSecond` seconds (`perSecond` ≥ 0; `null` removes the limit). Slots already reserved stay
   * reserved; the next free one moves to one interval of the new rate after the last reserved one.
   * Idempotent. The runtime sets it whenever the rate in force changes.
   */
  setStartRate(name: string, runId: string, perSecond: number | null, burst: number, at: number): Promise<void>;
  /**
   * Claims a share of the rate budget `key`, shared by several backfills (members) writing one
   * database, atomically with the other members' claims: drops members that have not claimed for
   * `claim.ttlMs`, computes this member's cap with `claimShare` from `@superspreader/core/adapter`
   * (its weighted fair share of what the members want, never more than the others' caps leave, so the
   * caps never sum above the budget), stores it and returns every live member, sorted by name.
   */
  claimBudget(key: string, member: string, claim: BudgetClaim, at: number): Promise<{ readonly cap: number; readonly members: readonly BudgetMember[] }>;
  /**
   * Atomic compare-and-set. Writes `value` when the stored version equals
   * `expectedVersion` (`0` means "must not exist yet") and returns the new version;
   * returns `null` and writes nothing otherwise.
   */
  compareAndSet(name: string, expectedVersion: number, value: unknown): Promise<number | null>;
  /** Names of every stored backfill, sorted. */
  list(): Promise<string[]>;

  /** Appends to the backfill's configuration audit trail. */
  appendConfigChange(name: string, change: ConfigChange): Promise<void>;
  /** The most recent `limit` changes, newest first. `[]` when none. */
  listConfigChanges(name: string, limit: number): Promise<ConfigChange[]>;

  /**
   * Records a range as finished, atomically with the run's metrics, and removes the
   * outstanding entry `(range, cycle)` if there is one. Resets the consecutive-failure
   * count to 0. Idempotent: returns `true` when the range was not yet fully covered by the
   * ledger (and counts it in the metrics), `false` when it already was (only the
   * outstanding entry and the failure count change).
   * Adjacent and overlapping ranges are merged, so the ledger stays small.
   * `at` is the completion time (epoch ms), used for the per-minute buckets; `timing`, when given,
   * is added to the bucket of a first completion (what the closed loop measures), and its `slotAt`
   * (a start that reserved no slot) is counted in the run's start bucket, repeat or not.
   */
  markDone(name: string, runId: string, entry: RangeEntry, at: number, timing?: BatchTiming): Promise<boolean>;
  /** The ledger: covered ranges, merged, ascending, disjoint and non-adjacent. `[]` when none. */
  listDone(name: string, runId: string): Promise<IdRange[]>;

  /**
   * Records a deferred range (idempotent per entry), counts it in the metrics once, and
   * removes the outstanding entry of the same `(range, cycle)`, atomically.
   */
  addDeferred(name: string, runId: string, entry: RangeEntry): Promise<void>;
  /** Up to `limit` deferred entries, highest `endId` first, then lowest `cycle`. */
  listDeferred(name: string, runId: string, limit: number): Promise<RangeEntry[]>;
  /** Removes exactly these entries (matched on beginId, endId and cycle). Idempotent. */
  removeDeferred(name: string, runId: string, entries: readonly RangeEntry[]): Promise<void>;

  /**
   * Records a range given up after its last attempt, and removes the outstanding entry of
   * the same `(range, cycle)`, atomically. Keyed by `(beginId, endId)`: a later failure
   * of the same range replaces the earlier record.
   */
  addFailed(name: string, runId: string, failure: FailedRange): Promise<void>;
  /**
   * Counts one failed attempt of a batch (not a final failure: every attempt), atomically,
   * and returns the counts a hold decision needs. The count since the last success is
   * reset by `markDone`.
   */
  recordFailure(name: string, runId: string, at: number): Promise<FailureCounts>;

  /**
   * Records ranges as enqueued-but-unrecorded, before their jobs are enqueued. Keyed by
   * `(beginId, endId, cycle)`; adding an entry again only moves its `checkAt`. One round
   * trip for the whole list.
   */
  addOutstanding(name: string, runId: string, entries: readonly OutstandingEntry[]): Promise<void>;
  /** Up to `limit` outstanding entries with `checkAt <= dueBefore`, earliest `checkAt` first. */
  listOutstanding(name: string, runId: string, dueBefore: number, limit: number): Promise<OutstandingEntry[]>;
  /**
   * Moves the `checkAt` of these entries to `checkAt`, for those still outstanding (the
   * queue still holds their jobs: look again later). Entries no longer outstanding are
   * ignored. Idempotent.
   */
  touchOutstanding(name: string, runId: string, entries: readonly RangeEntry[], checkAt: number): Promise<void>;
  /**
   * Reclaims lost ranges, atomically: each entry that is still outstanding is removed and,
   * unless the ledger already covers it, added to the deferred entries (so the scheduler
   * enqueues it again) and counted in `batchesLost`. Entries no longer outstanding are
   * ignored (they were recorded meanwhile). Returns the entries moved to deferred.
   */
  reclaimOutstanding(name: string, runId: string, entries: readonly RangeEntry[]): Promise<RangeEntry[]>;
  /** Up to `limit` failed ranges, highest `endId` first. */
  listFailed(name: string, runId: string, limit: number): Promise<FailedRange[]>;
  /**
   * Atomically moves the failed ranges of the run to the deferred entries (so the
   * scheduler re-enqueues them) and returns how many moved: all of them, or with
   * `since` (epoch ms) those whose `at` is at or after it.
   */
  requeueFailed(name: string, runId: string, since?: number): Promise<number>;

  /** The run's counters; zeros when nothing was recorded. */
  metrics(name: string, runId: string): Promise<RunMetrics>;

  /**
   * Keeps a batch's collected result, atomically with the run's byte count. Keyed by `(beginId, endId)`:
   * when a result of that range is kept already, nothing changes (`"exists"`: a repeated delivery adds it
   * once). When `bytes + byteLength(entry.result) > maxBytes` (UTF-8, the run's kept results' total), it is
   * not kept and the run's `dropped` count goes up by one (`"full"`): the oldest results are the ones kept.
   * Otherwise it is appended (`"added"`). `maxBytes` is a whole number ≥ 1 (the backfill's `output.maxBytes`).
   */
  addOutput(name: string, runId: string, entry: OutputEntry, maxBytes: number): Promise<OutputAdded>;
  /**
   * Up to `limit` kept results from position `cursor` (0: the first, else a page's `next`), in the order
   * they were kept, with the run's totals. An unknown run has none (`count` 0, `next` null). Read-only.
   */
  listOutput(name: string, runId: string, cursor: number, limit: number): Promise<OutputPage>;

  /** Releases what the store opened. Never closes an injected client. Idempotent. */
  close(): Promise<void>;

  /** What else the store can do. */
  readonly capabilities: StateStoreCapabilities;
}

/** Optional abilities of a state store. */
export interface StateStoreCapabilities {
  /**
   * Present on stores that live in a SQL database a handler can write to: runs a batch's work and the
   * record of its range in one transaction (see {@link RangeTransactions}). Absent on Redis and in memory.
   */
  readonly transactions?: RangeTransactions;
}

/** What {@link RangeTransactions.runRange} did. */
export interface RangeRun {
  /** True when this call recorded the range (its work committed with the record). */
  readonly committed: boolean;
  /** True when the range was already recorded done: the work was not run. */
  readonly alreadyDone: boolean;
}

/**
 * Exactly-once batches on a store in the database the handler writes (issue #12): the range's record
 * and the handler's writes commit together or not at all.
 */
export interface RangeTransactions<Tx = unknown> {
  /**
   * In one transaction of the store's database: claims `entry` of the run (a second delivery of the same
   * range waits until this transaction ends, then finds the range done), returns `{ alreadyDone: true }`
   * without calling `work` when the ledger already covers it, else runs `work(tx)` and records the range
   * done exactly as `markDone` would (ledger, metrics with the timing `work` returns, outstanding entry,
   * consecutive failures reset), then commits. When `work` throws, everything rolls back and the error is
   * rethrown. `at()` gives the completion time, read after `work`.
   */
  runRange(name: string, runId: string, entry: RangeEntry, work: (tx: Tx) => Promise<BatchTiming>, at: () => number): Promise<RangeRun>;
}
