import { systemClock, type Clock } from "./clock.js";
import { rateAt, validateConfig, type BackfillConfig, type BackfillConfigInput, type RateAt } from "./config.js";
import { parseDoc, parseJobData, type BackfillDoc, type BackfillStatusName, type PendingPlan, type StoredEntry } from "./doc.js";
import { SuperSpreaderError, describeValue } from "./errors.js";
import { EventHub, type SuperSpreaderEventName, type SuperSpreaderListener } from "./events.js";
import { findGaps, mergeRanges, rangeSize } from "./ids.js";
import type {
  BatchJobData,
  FailedRange,
  IdRange,
  IdSource,
  JobContext,
  JobOutcome,
  JobProcessor,
  JobQueue,
  QueueJob,
  RangeEntry,
  RunMetrics,
  StateStore,
  TickJobData,
} from "./ports.js";
import { toRational } from "./rational.js";
import { descendingRanges, slotCount, slotTime } from "./spread.js";
import { checkName } from "./validate-args.js";

/** What a batch handler receives. */
export interface BatchContext {
  /** The backfill's name. */
  readonly backfill: string;
  readonly runId: string;
  readonly cycle: number;
  /** First id of the range (inclusive). */
  readonly beginId: bigint;
  /** Last id of the range (inclusive). */
  readonly endId: bigint;
  /** 1 for the first run of this job, 2 for its first retry, … */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** Aborted when the worker shuts down: stop early and throw, the range will run again. */
  readonly signal: AbortSignal;
}

/** A backfill as defined in code: where its ids come from, how to process a range, how fast. */
export interface BackfillDefinition {
  /** Where the ids come from; read once when a run starts (rows inserted above the max id later are not visited). */
  readonly source: IdSource;
  /** The configuration a new run starts with (operators may change it later with `updateConfig`). */
  readonly config: BackfillConfigInput;
  /**
   * Processes every id in `[beginId, endId]`. Must be idempotent: delivery is
   * at-least-once, so a range may run again after a crash. Throw to fail the attempt.
   */
  handle(context: BatchContext): Promise<void>;
}

/** Options of {@link createSuperSpreader}. */
export interface SuperSpreaderOptions {
  /** Where tick and batch jobs go. */
  queue: JobQueue;
  /** Where state, ledger and config live. */
  store: StateStore;
  /**
   * Source of the current time.
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Runs of a tick job before the queue gives it up. A tick only fails on store or
   * queue errors, so retries are cheap; a backfill whose chain broke anyway is revived
   * by `start` or `resume`.
   * @default 25
   */
  tickAttempts?: number;
  /**
   * Called when an event listener throws (the runtime carries on).
   * @default logs with console.error
   */
  onListenerError?: (error: unknown, event: SuperSpreaderEventName) => void;
}

/** Progress of a run. */
export interface BackfillProgress {
  /** Ids in the run's id space, `initialId - minId + 1`. */
  readonly idsTotal: bigint;
  /** Ids recorded done. */
  readonly idsDone: bigint;
  /** idsDone / idsTotal, 0..1 (1 for an empty id space). */
  readonly fraction: number;
  readonly batchesDone: number;
  readonly batchesFailed: number;
  readonly batchesDeferred: number;
  readonly lastDoneAt: number | null;
}

/** A backfill's state as `status()` reports it. */
export interface BackfillStatus {
  readonly name: string;
  readonly status: BackfillStatusName;
  readonly runId: string;
  readonly config: BackfillConfig;
  /** Id space of the run, fixed at start. */
  readonly minId: bigint;
  readonly initialId: bigint;
  /** Next id to plan; below minId once every range has been enqueued. */
  readonly cursor: bigint;
  readonly cycle: number;
  readonly nextTickAt: number;
  /**
   * How late the next tick is (ms), 0 when on time or not running. A value well past one
   * cycle means the tick chain died (its job failed for good): `start(name)` revives it.
   */
  readonly tickOverdueMs: number;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  readonly progress: BackfillProgress;
  /** The rate in force now. */
  readonly rate: RateAt;
  readonly metrics: RunMetrics;
}

/** What `audit()` reports: the ledger against the run's id space. */
export interface AuditReport {
  readonly name: string;
  readonly runId: string;
  readonly minId: bigint;
  readonly initialId: bigint;
  /** Ranges recorded done, merged. */
  readonly done: IdRange[];
  /** Ids of the id space never recorded done (in flight, deferred, failed, or lost). */
  readonly gaps: IdRange[];
  readonly deferred: RangeEntry[];
  readonly failed: FailedRange[];
  /** True when there is no gap. */
  readonly complete: boolean;
}

/** Options of state changes made by people or tools (recorded in the audit trail). */
export interface ChangeOptions {
  /**
   * Who made the change.
   * @default "api"
   */
  actor?: string;
  /** Why, in free text. */
  reason?: string;
}

/** Options of {@link SuperSpreader.start}. */
export interface StartOptions extends ChangeOptions {
  /** Config fields overriding the definition's for this run (validated before anything is written). */
  config?: Partial<BackfillConfigInput>;
  /**
   * Start a new run when the previous one completed, failed or was cancelled. Without it,
   * `start` of a finished backfill is a no-op that returns its status, so a deploy script
   * calling `start` on every boot never re-runs a finished backfill.
   * @default false
   */
  restart?: boolean;
}

/** The runtime: defines backfills, controls them, and processes their jobs. */
export interface SuperSpreader extends JobProcessor {
  /** Registers a backfill in this process. Validates its config now. Workers must define every backfill they may run. */
  define(name: string, definition: BackfillDefinition): void;
  /** Names defined in this process. */
  defined(): string[];
  /**
   * Starts a run (reading the id space from the source), or, for a running backfill,
   * makes sure its tick chain is alive without starting a second one. Idempotent.
   */
  start(name: string, options?: StartOptions): Promise<BackfillStatus>;
  /** Pauses: no new cycles; batches that reach a worker are deferred, not lost. Idempotent. */
  pause(name: string, options?: ChangeOptions): Promise<BackfillStatus>;
  /** Resumes a paused backfill (deferred ranges are enqueued again by the next cycles), or revives a running one's tick chain. */
  resume(name: string, options?: ChangeOptions): Promise<BackfillStatus>;
  /** Ends the run; queued jobs of it become no-ops. */
  cancel(name: string, options?: ChangeOptions): Promise<BackfillStatus>;
  /** Queues the run's failed ranges again; a `failed` run becomes `running`. Returns how many ranges. */
  retryFailed(name: string, options?: ChangeOptions): Promise<number>;
  /** Changes the stored config of a started backfill (validated first; recorded in the audit trail). Applies from the next cycle. */
  updateConfig(name: string, patch: Partial<BackfillConfigInput>, options?: ChangeOptions): Promise<BackfillConfig>;
  /** The backfill's state, progress and current rate. */
  status(name: string): Promise<BackfillStatus>;
  /** Compares the ledger with the id space: gaps, deferred and failed ranges. */
  audit(name: string): Promise<AuditReport>;
  /** Names of every stored backfill. */
  list(): Promise<string[]>;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends SuperSpreaderEventName>(event: E, listener: SuperSpreaderListener<E>): () => void;
  /** Processes one job delivery (called by worker runners). */
  perform(data: unknown, context: JobContext): Promise<JobOutcome>;
}

/** A tick that runs later than this after its scheduled time starts its cycle now, so a stalled chain does not burst to catch up. */
const LATE_TICK_MS = 1_000;
/** Compare-and-set retries before giving up with CONFLICT. */
const MAX_CAS_ROUNDS = 50;
/** Failed ranges read when deciding whether a finished run failed. */
const FAILED_SCAN_LIMIT = 100_000;

function newRunId(): string {
  return globalThis.crypto.randomUUID().replace(/-/g, "").slice(0, 12);
}

const toStored = (e: RangeEntry): StoredEntry => ({ beginId: e.beginId.toString(), endId: e.endId.toString(), cycle: e.cycle });
const fromStored = (e: StoredEntry): RangeEntry => ({ beginId: BigInt(e.beginId), endId: BigInt(e.endId), cycle: e.cycle });

/** The job id of a batch: deterministic in (backfill, run, cycle, range). */
export function batchJobId(name: string, runId: string, cycle: number, range: IdRange): string {
  return `${name}.${runId}.b${cycle}.${range.beginId}-${range.endId}`;
}

/** The job id of a tick: deterministic in (backfill, run, cycle, epoch). */
export function tickJobId(name: string, runId: string, cycle: number, epoch: number): string {
  return `${name}.${runId}.t${cycle}.e${epoch}`;
}

/**
 * Creates the runtime. Use one per process: the scheduler side (start, pause, …)
 * and the worker side (`perform`, called by an adapter's worker runner) are the same object.
 *
 * @example
 * ```ts
 * const queue = createMemoryJobQueue();
 * const spreader = createSuperSpreader({ queue, store: createMemoryStateStore() });
 * spreader.define("touch-users", {
 *   source: createMemoryIdSource({ minId: 1n, maxId: 10_000n }),
 *   config: { batchSize: 100, duration: 10, perSecondOnPeak: 5, perSecondOffPeak: 20 },
 *   async handle({ beginId, endId }) {
 *     await db.execute(sql`update users set touched = true where id between ${beginId} and ${endId}`);
 *   },
 * });
 * createMemoryWorker({ queue, spreader, concurrency: 4 }).start();
 * await spreader.start("touch-users");
 * ```
 */
export function createSuperSpreader(options: SuperSpreaderOptions): SuperSpreader {
  const { queue, store } = options;
  if (!queue || typeof queue.enqueue !== "function") {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `queue must be a JobQueue, got ${describeValue(queue)}`, { field: "queue" });
  }
  if (!store || typeof store.compareAndSet !== "function") {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `store must be a StateStore, got ${describeValue(store)}`, { field: "store" });
  }
  const clock = options.clock ?? systemClock;
  const tickAttempts = options.tickAttempts ?? 25;
  if (!Number.isSafeInteger(tickAttempts) || tickAttempts < 1) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `tickAttempts must be a whole number ≥ 1, got ${describeValue(tickAttempts)}`, {
      field: "tickAttempts",
    });
  }
  const registry = new Map<string, BackfillDefinition & { validConfig: BackfillConfig }>();
  const events = new EventHub(
    options.onListenerError ??
      ((error, event) => {
        console.error(`[superspreader] a listener of "${event}" threw`, error);
      }),
  );

  /* ------------------------------------------------------------ helpers */

  // Every batch reads the document. Validating its config (time zone included) is the
  // costly part, so the last config seen valid is remembered per backfill, as JSON.
  const validConfigs = new Map<string, string>();
  const read = async (name: string): Promise<{ version: number; doc: BackfillDoc } | null> => {
    const stored = await store.get(name);
    if (!stored) return null;
    const configJson = JSON.stringify((stored.value as { config?: unknown } | null)?.config);
    const doc = parseDoc(name, stored.value, () => validConfigs.get(name) === configJson);
    validConfigs.set(name, configJson);
    return { version: stored.version, doc };
  };

  const readOrThrow = async (name: string) => {
    checkName(name);
    const current = await read(name);
    if (!current) {
      const hint = registry.has(name) ? "it is defined but was never started: call start() first" : "no backfill of that name is stored";
      throw new SuperSpreaderError("UNKNOWN_BACKFILL", `backfill "${name}" not found: ${hint}`);
    }
    return current;
  };

  /**
   * Read-modify-write with compare-and-set. `change` returns the new document, or
   * null to leave it as it is. Retried when another writer got there first.
   */
  const mutate = async (
    name: string,
    change: (doc: BackfillDoc) => BackfillDoc | null,
  ): Promise<{ before: BackfillDoc; after: BackfillDoc; changed: boolean }> => {
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const { version, doc } = await readOrThrow(name);
      const next = change(doc);
      if (next === null) return { before: doc, after: doc, changed: false };
      const written = await store.compareAndSet(name, version, { ...next, updatedAt: clock.now() });
      if (written !== null) return { before: doc, after: next, changed: true };
    }
    throw new SuperSpreaderError("CONFLICT", `backfill "${name}": the state kept changing under ${MAX_CAS_ROUNDS} attempts to update it; try again`);
  };

  const tickJob = (doc: BackfillDoc, cycle: number, epoch: number, at: number): QueueJob => ({
    id: tickJobId(doc.name, doc.runId, cycle, epoch),
    runAt: at,
    attempts: tickAttempts,
    data: { kind: "tick", backfill: doc.name, runId: doc.runId, cycle, epoch, scheduledAt: at },
  });

  /** Bumps the epoch and enqueues a tick for the current cycle: revives a chain, and turns any older tick stale. */
  const kick = async (name: string, to: BackfillStatusName): Promise<BackfillDoc> => {
    const { after } = await mutate(name, (doc) => ({ ...doc, status: to, epoch: doc.epoch + 1 }));
    const at = Math.max(clock.now(), after.pending?.beginAt ?? after.nextTickAt);
    await queue.enqueue([tickJob(after, after.cycle, after.epoch, at)]);
    return after;
  };

  const base = (doc: BackfillDoc) => ({ backfill: doc.name, runId: doc.runId, at: clock.now() });

  /* --------------------------------------------------------------- ticks */

  /** Enqueues a stored plan's jobs and advances the cursor. Safe to repeat: job ids are deterministic. */
  const finalize = async (version: number, doc: BackfillDoc, plan: PendingPlan): Promise<void> => {
    const rate = toRational(Number(plan.perSecond), "perSecond");
    const slots = { rate, beginAtMs: plan.beginAt, spreadWithinSecond: plan.spreadWithinSecond };
    const jobs: QueueJob[] = [];
    const priority = doc.config.priority;
    const batch = (range: IdRange, slot: number): QueueJob => {
      const runAt = slotTime(slots, slot);
      return {
        id: batchJobId(doc.name, doc.runId, plan.cycle, range),
        runAt,
        attempts: doc.config.maxAttempts,
        ...(priority === null ? {} : { priority }),
        data: {
          kind: "batch",
          backfill: doc.name,
          runId: doc.runId,
          cycle: plan.cycle,
          beginId: range.beginId.toString(),
          endId: range.endId.toString(),
          scheduledAt: runAt,
        },
      };
    };
    let slot = 0;
    for (const entry of plan.requeue) jobs.push(batch(fromStored(entry), slot++));
    for (const range of descendingRanges(BigInt(plan.cursor), BigInt(doc.minId), plan.batchSize, plan.fresh)) jobs.push(batch(range, slot++));
    // The tick goes last: when it exists, every batch before it in this call was stored.
    jobs.push(tickJob(doc, plan.cycle + 1, doc.epoch, plan.nextTickAt));
    await queue.enqueue(jobs);
    // Removed after enqueueing and before the cursor moves: a crash in between repeats
    // the enqueue (deduplicated), never drops a deferred range.
    if (plan.requeue.length > 0) await store.removeDeferred(doc.name, doc.runId, plan.requeue.map(fromStored));
    const written = await store.compareAndSet(doc.name, version, {
      ...doc,
      cursor: plan.nextCursor,
      cycle: plan.cycle + 1,
      pending: null,
      nextTickAt: plan.nextTickAt,
      updatedAt: clock.now(),
    } satisfies BackfillDoc);
    if (written !== null) {
      events.emit("cyclePlanned", {
        ...base(doc),
        cycle: plan.cycle,
        batches: jobs.length - 1,
        requeued: plan.requeue.length,
        perSecond: Number(plan.perSecond),
        onPeak: plan.onPeak,
        beginAt: plan.beginAt,
        nextTickAt: plan.nextTickAt,
      });
    }
  };

  /** Decides whether an exhausted run is over. Returns the final status, or null while work is still out. */
  const finalStatus = async (doc: BackfillDoc): Promise<"completed" | "failed" | null> => {
    const minId = BigInt(doc.minId);
    const maxId = BigInt(doc.initialId);
    const done = await store.listDone(doc.name, doc.runId);
    const gaps = findGaps(minId, maxId, done);
    if (gaps.length === 0) return "completed";
    const failed = await store.listFailed(doc.name, doc.runId, FAILED_SCAN_LIMIT);
    if (failed.length > 0 && findGaps(minId, maxId, [...done, ...failed]).length === 0) return "failed";
    return null;
  };

  const runTick = async (data: TickJobData): Promise<JobOutcome> => {
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const current = await read(data.backfill);
      if (!current) return "stale";
      const { version, doc } = current;
      if (doc.runId !== data.runId || doc.epoch !== data.epoch || doc.status !== "running") return "stale";
      if (doc.pending) {
        await finalize(version, doc, doc.pending);
        continue;
      }
      if (doc.cycle !== data.cycle) return "stale";

      const now = clock.now();
      const beginAt = now - data.scheduledAt > LATE_TICK_MS ? now : data.scheduledAt;
      const config = doc.config;
      const rate = rateAt(config, beginAt);
      const rational = toRational(rate.perSecond, "perSecond");
      const slots = rational.num === 0n ? 0 : slotCount(toRational(config.duration, "duration"), rational);
      const cursor = BigInt(doc.cursor);
      const minId = BigInt(doc.minId);
      const requeue = slots > 0 ? await store.listDeferred(doc.name, doc.runId, slots) : [];

      if (cursor < minId && requeue.length === 0) {
        const final = await finalStatus(doc);
        if (final !== null) {
          const written = await store.compareAndSet(doc.name, version, {
            ...doc,
            status: final,
            finishedAt: now,
            updatedAt: now,
          } satisfies BackfillDoc);
          if (written === null) continue;
          events.emit("completed", { ...base(doc), status: final });
          return "finished";
        }
      }

      const freshRanges = [...descendingRanges(cursor, minId, config.batchSize, slots - requeue.length)];
      const last = freshRanges[freshRanges.length - 1];
      const durationMs = Math.round(config.duration * 1000);
      const plan: PendingPlan = {
        cycle: doc.cycle,
        beginAt,
        perSecond: rate.perSecondExact,
        onPeak: rate.onPeak,
        spreadWithinSecond: config.spreadWithinSecond,
        batchSize: config.batchSize,
        cursor: doc.cursor,
        fresh: freshRanges.length,
        nextCursor: last ? (last.beginId - 1n).toString() : doc.cursor,
        requeue: requeue.map(toStored),
        nextTickAt: beginAt + durationMs,
      };
      const written = await store.compareAndSet(doc.name, version, { ...doc, pending: plan, updatedAt: now } satisfies BackfillDoc);
      if (written === null) continue;
      await finalize(written, { ...doc, pending: plan, updatedAt: now }, plan);
      return "planned";
    }
    throw new SuperSpreaderError("CONFLICT", `backfill "${data.backfill}": tick ${data.cycle} lost ${MAX_CAS_ROUNDS} compare-and-set rounds`);
  };

  /* ------------------------------------------------------------- batches */

  const runBatch = async (data: BatchJobData, context: JobContext): Promise<JobOutcome> => {
    const current = await read(data.backfill);
    if (!current || current.doc.runId !== data.runId) return "skipped";
    const { doc } = current;
    const range = { beginId: BigInt(data.beginId), endId: BigInt(data.endId) };
    const where = { ...base(doc), cycle: data.cycle, ...range };
    if (doc.status === "paused") {
      await store.addDeferred(doc.name, doc.runId, { ...range, cycle: data.cycle });
      events.emit("batchDeferred", where);
      return "deferred";
    }
    if (doc.status !== "running") return "skipped";
    const definition = registry.get(doc.name);
    if (!definition) {
      // Thrown, not skipped: a worker deployed without this backfill must not eat its jobs.
      throw new SuperSpreaderError(
        "UNKNOWN_BACKFILL",
        `backfill "${doc.name}" is not defined in this worker: call spreader.define("${doc.name}", …) before starting the worker`,
      );
    }
    const started = clock.now();
    events.emit("batchStarted", {
      ...where,
      attempt: context.attempt,
      ...(data.scheduledAt === undefined ? {} : { scheduledAt: data.scheduledAt }),
    });
    try {
      await definition.handle({
        backfill: doc.name,
        runId: doc.runId,
        cycle: data.cycle,
        beginId: range.beginId,
        endId: range.endId,
        attempt: context.attempt,
        maxAttempts: context.maxAttempts,
        signal: context.signal,
      });
    } catch (error) {
      // An attempt cut short by shutdown is handed back by the runner without spending it.
      const final = context.attempt >= context.maxAttempts && !context.signal.aborted;
      const finished = clock.now();
      if (final) {
        const e = error as { message?: unknown; name?: unknown; code?: unknown };
        await store.addFailed(doc.name, doc.runId, {
          ...range,
          cycle: data.cycle,
          error: typeof e?.message === "string" ? e.message : String(error),
          errorName: typeof e?.code === "string" ? e.code : typeof e?.name === "string" ? e.name : "Error",
          attempts: context.attempt,
          at: finished,
        });
      }
      events.emit("batchFailed", {
        ...where,
        at: finished,
        attempt: context.attempt,
        maxAttempts: context.maxAttempts,
        durationMs: finished - started,
        error,
        final,
      });
      throw error;
    }
    const finished = clock.now();
    let firstCompletion: boolean;
    try {
      firstCompletion = await store.markDone(doc.name, doc.runId, range, finished);
    } catch (error) {
      // The work is done but not recorded: the queue runs the batch again (idempotent handlers).
      events.emit("batchFailed", {
        ...where,
        at: clock.now(),
        attempt: context.attempt,
        maxAttempts: context.maxAttempts,
        durationMs: finished - started,
        error,
        final: false,
      });
      throw error;
    }
    events.emit("batchFinished", { ...where, at: finished, attempt: context.attempt, durationMs: finished - started, firstCompletion });
    return "done";
  };

  /* ------------------------------------------------------------- status */

  const statusOf = async (doc: BackfillDoc): Promise<BackfillStatus> => {
    const metrics = await store.metrics(doc.name, doc.runId);
    const minId = BigInt(doc.minId);
    const initialId = BigInt(doc.initialId);
    const idsTotal = initialId >= minId ? initialId - minId + 1n : 0n;
    const idsDone = BigInt(metrics.idsDone);
    return {
      name: doc.name,
      status: doc.status,
      runId: doc.runId,
      config: doc.config,
      minId,
      initialId,
      cursor: BigInt(doc.cursor),
      cycle: doc.cycle,
      nextTickAt: doc.nextTickAt,
      tickOverdueMs: doc.status === "running" ? Math.max(0, clock.now() - doc.nextTickAt) : 0,
      startedAt: doc.startedAt,
      finishedAt: doc.finishedAt,
      progress: {
        idsTotal,
        idsDone,
        fraction: idsTotal === 0n ? 1 : Number((idsDone * 1_000_000n) / idsTotal) / 1_000_000,
        batchesDone: metrics.batchesDone,
        batchesFailed: metrics.batchesFailed,
        batchesDeferred: metrics.batchesDeferred,
        lastDoneAt: metrics.lastDoneAt,
      },
      rate: rateAt(doc.config, clock.now()),
      metrics,
    };
  };

  const recordChange = async (name: string, changes: Record<string, { from: unknown; to: unknown }>, opts: ChangeOptions = {}) => {
    await store.appendConfigChange(name, {
      at: clock.now(),
      actor: opts.actor ?? "api",
      ...(opts.reason === undefined ? {} : { reason: opts.reason }),
      changes,
    });
  };

  /** One attempt of start(); null when another writer changed the backfill meanwhile. */
  const startOnce = async (name: string, opts: StartOptions): Promise<BackfillStatus | null> => {
    const definition = registry.get(name);
    const current = await read(name);
    if (current && (current.doc.status === "running" || current.doc.status === "paused")) {
      // Running: revive the chain (a new epoch makes any surviving tick stale, so there is still one chain).
      const doc = current.doc.status === "running" ? await kick(name, "running") : current.doc;
      return statusOf(doc);
    }
    if (current && !opts.restart) return statusOf(current.doc);
    if (!definition) {
      throw new SuperSpreaderError(
        "UNKNOWN_BACKFILL",
        `backfill "${name}" is not defined in this process: call spreader.define("${name}", …) before start()`,
      );
    }
    const config = opts.config ? validateConfig({ ...definition.config, ...opts.config }) : definition.validConfig;
    const [minId, maxId] = await Promise.all([definition.source.minId(), definition.source.maxId()]);
    const now = clock.now();
    const empty = minId === null || maxId === null;
    const doc: BackfillDoc = {
      schema: 1,
      name,
      runId: newRunId(),
      status: empty ? "completed" : "running",
      config,
      minId: (minId ?? 1n).toString(),
      initialId: (maxId ?? 0n).toString(),
      cursor: (maxId ?? 0n).toString(),
      cycle: 0,
      epoch: 0,
      nextTickAt: now,
      pending: null,
      startedAt: now,
      updatedAt: now,
      finishedAt: empty ? now : null,
    };
    const written = await store.compareAndSet(name, current?.version ?? 0, doc);
    if (written === null) return null;
    await recordChange(name, { run: { from: current?.doc.runId ?? null, to: doc.runId }, config: { from: current?.doc.config ?? null, to: config } }, {
      actor: opts.actor ?? "api",
      reason: opts.reason ?? "start",
    });
    events.emit("started", { ...base(doc), minId: BigInt(doc.minId), initialId: BigInt(doc.initialId) });
    if (empty) {
      events.emit("completed", { ...base(doc), status: "completed" });
    } else {
      await queue.enqueue([tickJob(doc, 0, 0, now)]);
    }
    return statusOf(doc);
  };

  /* ---------------------------------------------------------------- API */

  const spreader: SuperSpreader = {
    define(name, definition) {
      checkName(name);
      if (registry.has(name)) {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `backfill "${name}" is already defined in this process`, { field: "name" });
      }
      if (!definition || typeof definition.handle !== "function") {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `backfill "${name}": handle must be an async function`, { field: "handle" });
      }
      const source = definition.source;
      if (!source || typeof source.minId !== "function" || typeof source.maxId !== "function") {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `backfill "${name}": source must be an IdSource (minId/maxId)`, { field: "source" });
      }
      registry.set(name, { ...definition, validConfig: validateConfig(definition.config) });
    },

    defined: () => [...registry.keys()].sort(),

    async start(name, opts = {}) {
      checkName(name);
      // A concurrent start of the same backfill wins the compare-and-set: look again, and
      // this call revives that run's chain instead of starting another.
      for (let round = 0; round < 3; round++) {
        const status = await startOnce(name, opts);
        if (status) return status;
      }
      throw new SuperSpreaderError("CONFLICT", `backfill "${name}" kept changing while starting; call start() again to see its state`);
    },

    async pause(name, opts = {}) {
      const { after, changed, before } = await mutate(name, (doc) => {
        if (doc.status === "paused") return null;
        if (doc.status !== "running") {
          throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" is ${doc.status}; only a running backfill can be paused`);
        }
        return { ...doc, status: "paused" };
      });
      if (changed) {
        await recordChange(name, { status: { from: before.status, to: "paused" } }, opts);
        events.emit("paused", base(after));
      }
      return statusOf(after);
    },

    async resume(name, opts = {}) {
      const { doc } = await readOrThrow(name);
      if (doc.status !== "paused" && doc.status !== "running") {
        throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" is ${doc.status}; only a paused or running backfill can be resumed`);
      }
      const after = await kick(name, "running");
      if (doc.status === "paused") {
        await recordChange(name, { status: { from: "paused", to: "running" } }, opts);
        events.emit("resumed", base(after));
      }
      return statusOf(after);
    },

    async cancel(name, opts = {}) {
      const { after, changed, before } = await mutate(name, (doc) => {
        if (doc.status === "cancelled") return null;
        if (doc.status === "completed" || doc.status === "failed") {
          throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" already ended (${doc.status}); nothing to cancel`);
        }
        return { ...doc, status: "cancelled", finishedAt: clock.now() };
      });
      if (changed) {
        await recordChange(name, { status: { from: before.status, to: "cancelled" } }, opts);
        events.emit("cancelled", base(after));
      }
      return statusOf(after);
    },

    async retryFailed(name, opts = {}) {
      const { doc } = await readOrThrow(name);
      if (doc.status === "cancelled") {
        throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" was cancelled; start a new run with start(name, { restart: true })`);
      }
      const moved = await store.requeueFailed(doc.name, doc.runId);
      if (moved > 0) {
        await recordChange(name, { requeuedFailedRanges: { from: 0, to: moved } }, opts);
        if (doc.status === "failed") await kick(name, "running");
      }
      return moved;
    },

    async updateConfig(name, patch, opts = {}) {
      if (typeof patch !== "object" || patch === null) {
        throw new SuperSpreaderError("INVALID_CONFIG", `patch must be an object of config fields, got ${describeValue(patch)}`, { field: "patch" });
      }
      let diff: Record<string, { from: unknown; to: unknown }> = {};
      const { after, changed } = await mutate(name, (doc) => {
        const config = validateConfig({ ...doc.config, ...patch });
        diff = {};
        for (const key of Object.keys(config) as (keyof BackfillConfig)[]) {
          if (JSON.stringify(config[key]) !== JSON.stringify(doc.config[key])) diff[key] = { from: doc.config[key], to: config[key] };
        }
        return Object.keys(diff).length === 0 ? null : { ...doc, config };
      });
      if (changed) {
        await recordChange(name, diff, opts);
        events.emit("configChanged", { ...base(after), changes: diff });
      }
      return after.config;
    },

    async status(name) {
      return statusOf((await readOrThrow(name)).doc);
    },

    async audit(name) {
      const { doc } = await readOrThrow(name);
      const minId = BigInt(doc.minId);
      const initialId = BigInt(doc.initialId);
      const [done, deferred, failed] = await Promise.all([
        store.listDone(doc.name, doc.runId),
        store.listDeferred(doc.name, doc.runId, FAILED_SCAN_LIMIT),
        store.listFailed(doc.name, doc.runId, FAILED_SCAN_LIMIT),
      ]);
      const merged = mergeRanges(done);
      const gaps = initialId >= minId ? findGaps(minId, initialId, merged) : [];
      return { name, runId: doc.runId, minId, initialId, done: merged, gaps, deferred, failed, complete: gaps.length === 0 };
    },

    list: () => store.list(),

    on: (event, listener) => events.on(event, listener),

    async perform(raw, context) {
      const data = parseJobData(raw);
      return data.kind === "tick" ? runTick(data) : runBatch(data, context);
    },
  };
  return spreader;
}

