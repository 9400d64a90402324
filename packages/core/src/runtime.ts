import { runBatch } from "./batch.js";
import { systemClock, type Clock } from "./clock.js";
import { SCAN_LIMIT, createCore, type Core, type Definition } from "./context.js";
import { validateConfig, validateStoredConfig, type BackfillConfig, type BackfillConfigInput } from "./config.js";
import { idsUnplanned, tickJob, unplannedRanges } from "./cycle.js";
import { extendRun, type ExtendReport } from "./extend.js";
import { parseJobData, type BackfillDoc, type RepairSummary } from "./doc.js";
import { SuperSpreaderError, describeValue } from "./errors.js";
import { EventHub, type SuperSpreaderEventName, type SuperSpreaderListener } from "./events.js";
import type { HealthIndicator, IdRange, IdSource, OutputPage, JobContext, JobOutcome, JobProcessor, JobQueue, JobState, RangeEntry, StateStore, WatchdogAction } from "./ports.js";
import { auditOf, etaOf, planOf, statusOf, type AuditReport, type BackfillStatus, type NextCycle, type RunEta } from "./status.js";
import { orphans, reconcile, runTick, toBatches } from "./tick.js";
import { checkName } from "./validate-args.js";
import { checkDeadline, releaseBudget } from "./loop.js";
import { initialControl } from "./control.js";
import { watchdog } from "./watchdog.js";

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

/** What a transactional handler receives: the batch, and the open transaction its writes must go through. */
export interface TransactionalBatchContext<Tx> extends BatchContext {
  /**
   * The transaction of the state store's database (for `@superspreader/store-drizzle`, a drizzle
   * transaction). The range is recorded done in it after `handle` returns, and it commits once:
   * the handler's writes through `tx` and the record of the range take effect together or not at all.
   */
  readonly tx: Tx;
}

/**
 * A backfill whose batches run exactly once (issue #12): each batch's handler writes through a
 * transaction of the state store's database, and the runtime records the range done in the same
 * transaction before it commits. A crash before the commit leaves neither the writes nor the record, so
 * the batch runs again from scratch; a repeat of a committed range (a second delivery) is found inside
 * its transaction and does nothing.
 *
 * This holds only when the state store lives in the database the handler writes (its
 * `capabilities.transactions`) and the handler writes only through `tx`. Calls to APIs, other databases
 * or another connection are still at-least-once.
 *
 * @example
 * ```ts
 * import { createDrizzleStateStore, type DrizzleTransaction } from "@superspreader/store-drizzle";
 * const spreader = createSuperSpreader({ queue, store: createDrizzleStateStore({ db }) });
 * spreader.define("count-logins", {
 *   transactional: true,
 *   source,
 *   config,
 *   handle: async ({ beginId, endId, tx }: TransactionalBatchContext<DrizzleTransaction>) => {
 *     await tx.execute(sql`update users set logins = logins + 1 where id between ${beginId} and ${endId}`);
 *   },
 * });
 * ```
 */
export interface TransactionalBackfillDefinition<Tx = unknown> extends Omit<BackfillDefinition, "handle"> {
  /** Run each batch in a transaction of the state store (which must offer `capabilities.transactions`). */
  readonly transactional: true;
  /**
   * Processes `[beginId, endId]`, writing only through `tx`. Throw to roll the batch back and fail the attempt.
   * May resolve to a small JSON result, kept when `config.output` is on (after the commit; see `output`).
   */
  handle(context: TransactionalBatchContext<Tx>): Promise<unknown>;
}

/** A backfill as defined in code: where its ids come from, how to process a range, how fast. */
export interface BackfillDefinition {
  /**
   * Where the ids come from: a table's key (`createDrizzleIdSource`), a list (`createArraySource`), … Read
   * when a run starts; rows inserted above its max id later are reached by `extend` (or `config.autoExtend`).
   */
  readonly source: IdSource;
  /** The configuration a first run starts with (operators may change it later with `updateConfig`; restarts keep the live one). */
  readonly config: BackfillConfigInput;
  /**
   * Processes every id in `[beginId, endId]`. Must be idempotent: delivery is
   * at-least-once, so a range may run again after a crash. Throw to fail the attempt.
   *
   * With `config.output` on, what it resolves to (other than `undefined`) is the batch's collected
   * result: small plain data (counts, ids it skipped, rows it could not fix), kept per run in the state
   * store with the batch's completion, once per range, and read with `spreader.output(name)`. With
   * `output` off (the default) the value is ignored.
   *
   * @example
   * ```ts
   * spreader.define("fix-emails", {
   *   source,
   *   config: { ...config, output: {} },
   *   async handle({ beginId, endId }) {
   *     const bad = await fixEmails(beginId, endId); // ids it could not fix
   *     return { fixed: Number(endId - beginId + 1n) - bad.length, bad };
   *   },
   * });
   * ```
   */
  handle(context: BatchContext): Promise<unknown>;
  /**
   * Health signals of the database the backfill writes, polled every `config.health.interval`
   * seconds by each process that runs its batches and ticks: the worst reading wins; `slow` lowers
   * the rate (with `autotune.rate` on), `stop` holds the run for `config.health.stopHold` seconds,
   * and a signal unreadable for `config.health.failClosedAfter` seconds counts as `stop`.
   *
   * @example
   * ```ts
   * import { createPgLongTransactionIndicator, createPgReplicationLagIndicator } from "@superspreader/source-drizzle";
   * spreader.define("reencrypt", {
   *   source,
   *   config: { ...config, autotune: {}, health: { interval: 1, stopHold: 600 } },
   *   handle,
   *   health: [createPgReplicationLagIndicator({ db, slowSeconds: 1, stopSeconds: 10 }), createPgLongTransactionIndicator({ db })],
   * });
   * ```
   */
  readonly health?: readonly HealthIndicator[];
}

/** Options of {@link createSuperSpreader}. */
export interface SuperSpreaderOptions {
  /**
   * Where tick and batch jobs go. `null` for operator tools that only read and write state
   * (the CLI): then the calls that would enqueue a tick (`resume`, reviving `start`,
   * `retryFailed` of a failed run) write the state, and the workers' watchdog enqueues the
   * tick within seconds; `start` of a new run and `repair` are written as requests that a
   * worker defining the backfill carries out.
   */
  queue: JobQueue | null;
  /** Where state, ledger and config live. */
  store: StateStore;
  /**
   * Source of the current time.
   * @default systemClock
   */
  clock?: Clock;
  /**
   * Runs of a tick job before the queue gives it up. A tick only fails on store or
   * queue errors, so retries are cheap; a chain that broke anyway is revived by the
   * workers' watchdog.
   * @default 25
   */
  tickAttempts?: number;
  /**
   * How long after its planned run time an enqueued batch that nobody recorded is first
   * looked up in the queue (ms); while the queue still holds it, it is looked up again
   * this much later. Lost ranges are re-enqueued about this long after they were due.
   * @default 60000
   */
  reconcileAfterMs?: number;
  /**
   * Called when an event listener throws (the runtime carries on).
   * @default logs with console.error
   */
  onListenerError?: (error: unknown, event: SuperSpreaderEventName) => void;
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
  /**
   * The `revision` the caller last saw (from `status()`): the change is refused with a
   * `CONFLICT` error, writing nothing, when someone changed the backfill since.
   * @default undefined (no check)
   */
  expectedRevision?: number;
}

/** Options of {@link SuperSpreader.start}. */
export interface StartOptions extends ChangeOptions {
  /** Config fields overriding the live config (or the definition's) for this run, validated before anything is written. */
  config?: Partial<BackfillConfigInput>;
  /**
   * Start a new run when the previous one completed, failed or was cancelled. Without it,
   * `start` of a finished backfill is a no-op that returns its status, so a deploy script
   * calling `start` on every boot never re-runs a finished backfill.
   * @default false
   */
  restart?: boolean;
  /**
   * Start the new run with the definition's config instead of the live one. A restart
   * keeps the live config by default, so a change an operator made is not silently undone.
   * @default false
   */
  resetConfig?: boolean;
}

/** What {@link SuperSpreader.repair} found and did. */
export interface RepairReport {
  readonly name: string;
  readonly runId: string;
  /** Outstanding entries looked up in the queue. */
  readonly checked: number;
  /** Of those, still held by the queue (in flight: nothing to do). */
  readonly stillQueued: number;
  /** Ranges the queue lost or gave up on without the runtime seeing it, with the state it reported. */
  readonly lost: ReadonlyArray<RangeEntry & { readonly state: JobState }>;
  /** Ranges nothing accounted for (only looked for once every range was enqueued and nothing is in flight). */
  readonly unaccounted: readonly IdRange[];
  /** Ranges put back to be enqueued again by the next cycles. */
  readonly requeued: number;
  /** True when a finished run was set running again to enqueue them. */
  readonly revived: boolean;
  /**
   * True when this spreader has no queue (the CLI): the repair was written as a request
   * that a worker carries out; read the outcome with `status()`/`lastRepair` afterwards.
   */
  readonly requested: boolean;
}

/** The runtime: defines backfills, controls them, and processes their jobs. */
export interface SuperSpreader extends JobProcessor {
  /** Registers a backfill in this process. Validates its config now. Workers must define every backfill they may run. */
  define(name: string, definition: BackfillDefinition): void;
  /** Registers a backfill whose batches commit with their record in the store's database ({@link TransactionalBackfillDefinition}). */
  define<Tx = unknown>(name: string, definition: TransactionalBackfillDefinition<Tx>): void;
  /** Names defined in this process. */
  defined(): string[];
  /**
   * Starts a run (reading the id space from the source), or, for a running backfill,
   * makes sure its tick chain is alive without starting a second one. Idempotent. In a
   * process without a queue (the CLI), a new run is written as a request (status
   * `starting`, or `request` on a finished run) that a worker defining it carries out.
   */
  start(name: string, options?: StartOptions): Promise<BackfillStatus>;
  /** Pauses: no new cycles; batches that reach a worker are deferred, not lost. Idempotent. */
  pause(name: string, options?: ChangeOptions): Promise<BackfillStatus>;
  /** Resumes a paused or held backfill (deferred ranges are enqueued again by the next cycles), or revives a running one's tick chain. */
  resume(name: string, options?: ChangeOptions): Promise<BackfillStatus>;
  /** Ends the run; queued jobs of it become no-ops. */
  cancel(name: string, options?: ChangeOptions): Promise<BackfillStatus>;
  /** Queues the run's failed ranges again; a `failed` run becomes `running`. Returns how many ranges. */
  retryFailed(name: string, options?: ChangeOptions): Promise<number>;
  /** Changes the stored config of a started backfill (validated first; recorded in the audit trail). Applies from the next cycle. */
  updateConfig(name: string, patch: Partial<BackfillConfigInput>, options?: ChangeOptions): Promise<BackfillConfig>;
  /**
   * Pins the rate (batches per second, under the configured ceilings) or the batch size of a
   * backfill: the closed loop stops moving it until it is unpinned (`null`), from the next cycle.
   * Recorded in the audit trail.
   *
   * @example
   * ```ts
   * await spreader.pin("reencrypt", { perSecond: 2 }, { actor: "alice", reason: "incident 4711" });
   * await spreader.pin("reencrypt", { perSecond: null }); // the loop decides again
   * ```
   */
  pin(name: string, values: { perSecond?: number | null; batchSize?: number | null }, options?: ChangeOptions): Promise<BackfillStatus>;
  /** The backfill's state, progress and current rate. */
  status(name: string): Promise<BackfillStatus>;
  /** Compares the ledger with the id space: gaps and why each is open, deferred, failed and outstanding ranges. */
  audit(name: string): Promise<AuditReport>;
  /** The next cycle's batches, computed by the planner the next tick runs; enqueues nothing. Null for a finished run. */
  plan(name: string): Promise<NextCycle | null>;
  /** When the run finishes through its peak calendar (optionally with another config, to preview a change) and at the observed pace. Null for a finished run. */
  eta(name: string, options?: { config?: BackfillConfig | BackfillConfigInput }): Promise<RunEta | null>;
  /**
   * Finds ranges that were enqueued but will never be recorded (their jobs gone from the
   * queue or given up by it) and ranges nothing accounts for, and queues them again, at
   * the rate. The ticks do the same by themselves; this does it now and reports it.
   */
  repair(name: string, options?: ChangeOptions): Promise<RepairReport>;
  /**
   * Catch-up: extends the run to rows inserted above its id space since it started. Reads the source's
   * `maxId()`; when it is above the run's `initialId`, one compare-and-set raises `initialId` and queues
   * the span `(initialId, maxId]`, which the cycles plan (highest first) once the ranges planned before
   * it are; finished ranges never run again. A completed or failed run runs again; a paused one stays
   * paused. With nothing new it changes nothing and says so (`extended: false`). Repeatable. In a
   * process that does not define the backfill (the CLI), it is written as a request a worker carries out.
   * `config.autoExtend` does the same by itself when a run reaches the bottom.
   *
   * @example
   * ```ts
   * const report = await spreader.extend("reencrypt-messages", { actor: "alice", reason: "rows written since the start" });
   * report.extended ? `${report.fromId} → ${report.toId}` : "nothing new above the id space";
   * ```
   */
  extend(name: string, options?: ChangeOptions): Promise<ExtendReport>;
  /**
   * A page of the results a run's handlers returned (`config.output`), in the order they were kept, with
   * the run's totals (`dropped`: results past `output.maxBytes`). The current run unless `runId`; from
   * `cursor` (0, else a page's `next`), at most `limit` (default 1000) entries. `result` is JSON text.
   *
   * @example
   * ```ts
   * for (let cursor: number | null = 0; cursor !== null; ) {
   *   const page = await spreader.output("fix-emails", { cursor });
   *   for (const e of page.entries) console.log(e.beginId, e.endId, JSON.parse(e.result));
   *   cursor = page.next;
   * }
   * ```
   */
  output(name: string, options?: { runId?: string; cursor?: number; limit?: number }): Promise<OutputPage>;
  /** Names of every stored backfill. */
  list(): Promise<string[]>;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends SuperSpreaderEventName>(event: E, listener: SuperSpreaderListener<E>): () => void;
  /** Processes one job delivery (called by worker runners). */
  perform(data: unknown, context: JobContext): Promise<JobOutcome>;
  /** Revives dead tick chains and carries out requested starts and repairs of the backfills defined here (called by worker runners every few seconds). */
  watchdog(): Promise<WatchdogAction[]>;
}

/** Outstanding entries `repair` looks at, at most (a run has about this many batches in flight only in extreme cases). */
const REPAIR_LIMIT = 100_000;
/** A placeholder config for a `starting` backfill requested from a process that does not define it. */
const UNKNOWN_CONFIG = validateConfig({ batchSize: 1, duration: 1, perSecondOnPeak: 0, perSecondOffPeak: 0 });

function newRunId(): string {
  return globalThis.crypto.randomUUID().replace(/-/g, "").slice(0, 12);
}

function checkRevision(name: string, doc: BackfillDoc | undefined, options: ChangeOptions): void {
  const expected = options.expectedRevision;
  if (expected === undefined) return;
  if (!Number.isSafeInteger(expected) || expected < 0) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `expectedRevision must be a whole number ≥ 0, got ${describeValue(expected)}`, {
      field: "expectedRevision",
    });
  }
  const current = doc?.revision ?? 0;
  if (current !== expected) {
    throw new SuperSpreaderError(
      "CONFLICT",
      `backfill "${name}" changed since revision ${expected} (it is at revision ${current}${doc ? `, ${doc.status}` : ""}): reload it and try again`,
      { field: "expectedRevision" },
    );
  }
}

/** Statuses with a run that goes on (or will, once resumed). */
const open = (status: BackfillDoc["status"]): boolean => status === "running" || status === "paused" || status === "held";

/** An empty document for a new or requested run. */
function freshDoc(name: string, now: number, fields: Partial<BackfillDoc> & Pick<BackfillDoc, "status" | "config">): BackfillDoc {
  return {
    schema: 1,
    name,
    runId: newRunId(),
    minId: "1",
    initialId: "0",
    cursor: "0",
    floor: "1",
    spans: [],
    extendRequest: null,
    lastExtend: null,
    cycle: 0,
    epoch: 0,
    nextTickAt: now,
    pending: null,
    startedAt: now,
    updatedAt: now,
    finishedAt: null,
    revision: 1,
    pace: null,
    hold: null,
    watchdog: { revivals: 0, lastRevivedAt: null, lastReason: null },
    tracking: true,
    request: null,
    repairRequest: null,
    lastRepair: null,
    needsTick: false,
    unstarted: false,
    control: null,
    ...fields,
  };
}

/**
 * Creates the runtime. Use one per process: the scheduler side (start, pause, …)
 * and the worker side (`perform` and `watchdog`, called by an adapter's worker runner) are the same object.
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
  const { store } = options;
  const queue = options.queue ?? null;
  if (queue !== null && (typeof queue !== "object" || typeof queue.enqueue !== "function" || typeof queue.lookup !== "function")) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `queue must be a JobQueue (enqueue, lookup, counts, close) or null, got ${describeValue(queue)}`, {
      field: "queue",
    });
  }
  if (!store || typeof store.compareAndSet !== "function" || typeof store.addOutstanding !== "function") {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `store must be a StateStore of this version (with addOutstanding), got ${describeValue(store)}`, {
      field: "store",
    });
  }
  const clock = options.clock ?? systemClock;
  const tickAttempts = options.tickAttempts ?? 25;
  if (!Number.isSafeInteger(tickAttempts) || tickAttempts < 1) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `tickAttempts must be a whole number ≥ 1, got ${describeValue(tickAttempts)}`, {
      field: "tickAttempts",
    });
  }
  const reconcileAfterMs = options.reconcileAfterMs ?? 60_000;
  if (!Number.isSafeInteger(reconcileAfterMs) || reconcileAfterMs < 0) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `reconcileAfterMs must be a whole number of ms ≥ 0, got ${describeValue(reconcileAfterMs)}`, {
      field: "reconcileAfterMs",
    });
  }
  const events = new EventHub(
    options.onListenerError ??
      ((error, event) => {
        console.error(`[superspreader] a listener of "${event}" threw`, error);
      }),
  );
  const core: Core = createCore({ queue, store, clock, events, tickAttempts, reconcileAfterMs });
  const { registry, mutate, readOrThrow, recordChange, base } = core;

  /* -------------------------------------------------------------- start */

  /** Writes a start for a worker to carry out: this process lacks the definition or the queue. */
  const requestStart = async (name: string, current: { version: number; doc: BackfillDoc } | null, opts: StartOptions) => {
    const now = clock.now();
    const request = {
      at: now,
      runId: newRunId(),
      actor: opts.actor ?? "api",
      reason: opts.reason ?? null,
      config: opts.config ?? null,
      resetConfig: opts.resetConfig ?? false,
    };
    const doc: BackfillDoc = current
      ? { ...current.doc, request, revision: current.doc.revision + 1, updatedAt: now }
      : freshDoc(name, now, { status: "starting", config: UNKNOWN_CONFIG, request, unstarted: true });
    const written = await store.compareAndSet(name, current?.version ?? 0, doc);
    if (written === null) return null;
    await recordChange(name, { startRequested: { from: null, to: { restart: current !== null, config: request.config, resetConfig: request.resetConfig } } }, opts);
    return statusOf(core, doc);
  };

  /** One attempt of start(); null when another writer changed the backfill meanwhile. */
  const startOnce = async (name: string, opts: StartOptions): Promise<BackfillStatus | null> => {
    const definition = registry.get(name);
    const current = await core.read(name);
    checkRevision(name, current?.doc, opts);
    if (current && (current.doc.status === "running" || current.doc.status === "held")) {
      // Without a queue there is nothing to revive with, and a new epoch would turn a live tick stale:
      // the workers' watchdog revives a dead chain by itself.
      if (queue === null) return statusOf(core, current.doc);
      // Running: revive the chain (a new epoch makes any surviving tick stale, so there is still one chain).
      const { after } = await core.kick(name, (d) => (d.status === "running" || d.status === "held" ? {} : null));
      return statusOf(core, after);
    }
    if (current && current.doc.status === "paused") return statusOf(core, current.doc);
    const requested = current?.doc.status === "starting" || current?.doc.request != null;
    if (current && !opts.restart && !requested) return statusOf(core, current.doc);
    if (opts.config !== undefined) validateConfig({ ...(definition?.validConfig ?? UNKNOWN_CONFIG), ...opts.config });
    // Without a queue (an operator tool), a worker that defines the backfill carries it out (its watchdog looks every few seconds).
    if (queue === null) return requestStart(name, current, opts);
    if (!definition) {
      throw new SuperSpreaderError(
        "UNKNOWN_BACKFILL",
        `backfill "${name}" is not defined in this process: call spreader.define("${name}", …) before start()`,
      );
    }
    // Carrying out a request, the request's options apply; a live config is kept unless told otherwise.
    const request = current?.doc.request ?? null;
    const resetConfig = request?.resetConfig ?? opts.resetConfig ?? false;
    const overrides = request?.config ?? opts.config ?? null;
    const live = current && !current.doc.unstarted && !resetConfig ? current.doc.config : definition.validConfig;
    const config = overrides ? validateConfig({ ...live, ...overrides }) : live;
    const [minId, maxId] = await Promise.all([definition.source.minId(), definition.source.maxId()]);
    const now = clock.now();
    const empty = minId === null || maxId === null;
    if (!empty) checkDeadline(config, now, { idsRemaining: maxId - minId + 1n, requeued: [] });
    const doc = freshDoc(name, now, {
      ...(request?.runId ? { runId: request.runId } : {}),
      status: empty ? "completed" : "running",
      config,
      minId: (minId ?? 1n).toString(),
      initialId: (maxId ?? 0n).toString(),
      cursor: (maxId ?? 0n).toString(),
      floor: (minId ?? 1n).toString(),
      finishedAt: empty ? now : null,
      revision: (current?.doc.revision ?? 0) + 1,
    });
    const written = await store.compareAndSet(name, current?.version ?? 0, doc);
    if (written === null) return null;
    const known = current !== null && !current.doc.unstarted;
    const which = !known ? "definition's config" : resetConfig ? "definition's config (reset)" : "live config";
    await recordChange(
      name,
      { run: { from: known ? current.doc.runId : null, to: doc.runId }, config: { from: known ? current.doc.config : null, to: config } },
      {
        actor: request?.actor ?? opts.actor ?? "api",
        reason: `${request?.reason ?? opts.reason ?? (current ? "restart" : "start")} (${which}${overrides ? " with overrides" : ""})`,
      },
    );
    events.emit("started", { ...base(doc), minId: BigInt(doc.minId), initialId: BigInt(doc.initialId) });
    if (empty) events.emit("completed", { ...base(doc), status: "completed" });
    else await queue.enqueue([tickJob(doc, 0, 0, now, tickAttempts)]);
    return statusOf(core, doc);
  };

  const start = async (name: string, opts: StartOptions = {}): Promise<BackfillStatus> => {
    checkName(name);
    // A concurrent start of the same backfill wins the compare-and-set: look again, and
    // this call revives that run's chain instead of starting another.
    for (let round = 0; round < 3; round++) {
      const status = await startOnce(name, opts);
      if (status) return status;
    }
    throw new SuperSpreaderError("CONFLICT", `backfill "${name}" kept changing while starting; call start() again to see its state`);
  };

  /* ------------------------------------------------------------- repair */

  const repair = async (name: string, opts: ChangeOptions = {}): Promise<RepairReport> => {
    const { doc } = await readOrThrow(name);
    checkRevision(name, doc, opts);
    const empty = { name, runId: doc.runId, checked: 0, stillQueued: 0, lost: [], unaccounted: [], requeued: 0, revived: false };
    if (doc.status === "cancelled" || doc.status === "starting") {
      throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" is ${doc.status}: there is no run to repair`);
    }
    if (queue === null) {
      await mutate(name, (d) => ({ ...d, repairRequest: { at: clock.now(), actor: opts.actor ?? "api", reason: opts.reason ?? null } }));
      return { ...empty, requested: true };
    }
    let checked = 0;
    let stillQueued = 0;
    const lost: Array<RangeEntry & { state: JobState }> = [];
    if (doc.tracking) {
      // Every outstanding entry of a finished cycle, due or not: one look each.
      const found = await reconcile(core, (await readOrThrow(name)).doc, Number.MAX_SAFE_INTEGER, REPAIR_LIMIT);
      checked = found.checked;
      stillQueued = found.alive;
      lost.push(...found.lost);
    }
    let { doc: now } = await readOrThrow(name);
    let unaccounted: IdRange[] = [];
    const exhausted = unplannedRanges(now).length === 0;
    if (exhausted) {
      const deferred = await store.listDeferred(now.name, now.runId, 1);
      const found = await orphans(core, now);
      // Only with nothing in flight and nothing waiting: then nothing can still record these ranges.
      if (found.outstanding === 0 && deferred.length === 0 && found.ranges.length > 0) {
        const pieces = toBatches(found.ranges, now.config.batchSize);
        for (const piece of pieces) await store.addDeferred(now.name, now.runId, { ...piece, cycle: now.cycle });
        unaccounted = pieces;
        events.emit("rangesLost", { ...base(now), ranges: pieces.map((p) => ({ ...p, cycle: now.cycle, state: "missing" })), source: "ledger" });
      }
    }
    const requeued = lost.length + unaccounted.length;
    let revived = false;
    if (requeued > 0 && (now.status === "failed" || now.status === "completed")) {
      const kicked = await core.kick(name, (d) =>
        d.runId === now.runId && (d.status === "failed" || d.status === "completed")
          ? { status: "running", finishedAt: null, nextTickAt: clock.now(), pace: null, revision: d.revision + 1 }
          : null,
      );
      revived = kicked.kicked;
    }
    const summary: RepairSummary = { at: clock.now(), actor: opts.actor ?? "api", checked, lost: lost.length, unaccounted: unaccounted.length, requeued };
    ({ after: now } = await mutate(name, (d) => (d.runId === now.runId ? { ...d, repairRequest: null, lastRepair: summary } : null)));
    if (requeued > 0 || opts.reason !== undefined) {
      await recordChange(name, { repair: { from: null, to: { lost: lost.length, unaccounted: unaccounted.length, revived } } }, opts);
    }
    return { name, runId: doc.runId, checked, stillQueued, lost, unaccounted, requeued, revived, requested: false };
  };

  /* ---------------------------------------------------------------- API */

  const spreader: SuperSpreader = {
    define(name: string, definition: BackfillDefinition | TransactionalBackfillDefinition<unknown>) {
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
      const health = definition.health;
      if (health !== undefined && (!Array.isArray(health) || health.some((h) => typeof h !== "function"))) {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `backfill "${name}": health must be an array of health indicator functions, got ${describeValue(health)}`, {
          field: "health",
        });
      }
      const transactional = (definition as Partial<TransactionalBackfillDefinition>).transactional;
      if (transactional !== undefined && typeof transactional !== "boolean") {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `backfill "${name}": transactional must be true or false, got ${describeValue(transactional)}`, {
          field: "transactional",
        });
      }
      if (transactional === true && options.store.capabilities?.transactions === undefined) {
        throw new SuperSpreaderError(
          "INVALID_ARGUMENT",
          `backfill "${name}": transactional is true, but this state store cannot run a batch in a transaction of its database ` +
            `(Redis and in-memory stores cannot): use @superspreader/store-drizzle on the database the handler writes, or leave transactional out`,
          { field: "transactional" },
        );
      }
      registry.set(name, { ...(definition as Definition), validConfig: validateConfig(definition.config) });
    },

    defined: () => [...registry.keys()].sort(),

    start,

    async pause(name, opts = {}) {
      const { after, changed, before } = await mutate(name, (doc) => {
        checkRevision(name, doc, opts);
        if (doc.status === "paused") return null;
        if (doc.status !== "running" && doc.status !== "held") {
          throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" is ${doc.status}; only a running or held backfill can be paused`);
        }
        return { ...doc, status: "paused", hold: null, revision: doc.revision + 1 };
      });
      if (changed) {
        await releaseBudget(core, after);
        await recordChange(name, { status: { from: before.status, to: "paused" } }, opts);
        events.emit("paused", base(after));
      }
      return statusOf(core, after);
    },

    async resume(name, opts = {}) {
      const { doc } = await readOrThrow(name);
      checkRevision(name, doc, opts);
      if (doc.status !== "paused" && doc.status !== "running" && doc.status !== "held") {
        throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" is ${doc.status}; only a paused, held or running backfill can be resumed`);
      }
      const { after } = await core.kick(name, (d) => {
        if (d.status === "paused") return { status: "running", revision: d.revision + 1 };
        if (d.status === "held") return { status: "running", hold: null, pace: null, nextTickAt: Math.min(d.nextTickAt, clock.now()), revision: d.revision + 1 };
        // Reviving a running chain needs the queue; without one the watchdog does it.
        return d.status === "running" && queue !== null ? {} : null;
      });
      if (doc.status !== "running") {
        await recordChange(name, { status: { from: doc.status, to: "running" } }, opts);
        events.emit("resumed", { ...base(after), by: "operator" });
      }
      return statusOf(core, after);
    },

    async cancel(name, opts = {}) {
      const { after, changed, before } = await mutate(name, (doc) => {
        checkRevision(name, doc, opts);
        if (doc.status === "cancelled") return null;
        if (doc.status === "completed" || doc.status === "failed") {
          throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" already ended (${doc.status}); nothing to cancel`);
        }
        return { ...doc, status: "cancelled", finishedAt: clock.now(), request: null, revision: doc.revision + 1 };
      });
      if (changed) {
        await releaseBudget(core, after);
        await recordChange(name, { status: { from: before.status, to: "cancelled" } }, opts);
        events.emit("cancelled", base(after));
      }
      return statusOf(core, after);
    },

    async retryFailed(name, opts = {}) {
      const { doc } = await readOrThrow(name);
      checkRevision(name, doc, opts);
      if (doc.status === "cancelled" || doc.status === "starting") {
        throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" is ${doc.status}; start a new run with start(name, { restart: true })`);
      }
      const moved = await store.requeueFailed(doc.name, doc.runId);
      if (moved > 0) {
        await recordChange(name, { requeuedFailedRanges: { from: 0, to: moved } }, opts);
        if (doc.status === "failed") {
          // A failed run has no tick left: revive it (the watchdog enqueues the tick when this process has no queue).
          await core.kick(name, (d) =>
            d.runId === doc.runId && d.status === "failed"
              ? { status: "running", finishedAt: null, nextTickAt: clock.now(), pace: null, revision: d.revision + 1 }
              : null,
          );
        } else {
          await mutate(name, (d) => (d.runId === doc.runId ? { ...d, revision: d.revision + 1 } : null));
        }
      }
      return moved;
    },

    async updateConfig(name, patch, opts = {}) {
      if (typeof patch !== "object" || patch === null || Array.isArray(patch)) {
        throw new SuperSpreaderError("INVALID_CONFIG", `patch must be an object of config fields, got ${describeValue(patch)}`, { field: "patch" });
      }
      let diff: Record<string, { from: unknown; to: unknown }> = {};
      // A new deadline (or new rates under one) must be reachable from where the run is.
      const deferred = "finishBy" in patch || "perSecondOnPeak" in patch || "perSecondOffPeak" in patch || "peak" in patch || "batchSize" in patch
        ? await readOrThrow(name).then(({ doc }) => (open(doc.status) ? store.listDeferred(doc.name, doc.runId, SCAN_LIMIT) : null))
        : null;
      const { after, changed } = await mutate(name, (doc) => {
        checkRevision(name, doc, opts);
        if (doc.status === "starting") {
          throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" is starting (waiting for a worker): change its config once it runs`);
        }
        // A zone an earlier version stored is kept unless this change sets a new peak schedule.
        const merged = { ...doc.config, ...patch };
        const config = "peak" in patch ? validateConfig(merged) : validateStoredConfig(merged);
        diff = {};
        for (const key of Object.keys(config) as (keyof BackfillConfig)[]) {
          if (JSON.stringify(config[key]) !== JSON.stringify(doc.config[key])) diff[key] = { from: doc.config[key], to: config[key] };
        }
        if (deferred !== null && config.finishBy !== null && Object.keys(diff).length > 0 && open(doc.status)) {
          checkDeadline(config, Math.max(clock.now(), doc.nextTickAt), { idsRemaining: idsUnplanned(doc), requeued: deferred });
        }
        return Object.keys(diff).length === 0 ? null : { ...doc, config, revision: doc.revision + 1 };
      });
      if (changed) {
        await recordChange(name, diff, opts);
        events.emit("configChanged", { ...base(after), changes: diff });
      }
      return after.config;
    },

    async pin(name, values, opts = {}) {
      if (typeof values !== "object" || values === null || Array.isArray(values)) {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `values must be { perSecond?, batchSize? }, got ${describeValue(values)}`, { field: "values" });
      }
      for (const key of Object.keys(values)) {
        if (key !== "perSecond" && key !== "batchSize") {
          throw new SuperSpreaderError("INVALID_ARGUMENT", `values.${key} cannot be pinned (expected perSecond or batchSize)`, { field: `values.${key}` });
        }
      }
      const { perSecond, batchSize } = values;
      if (perSecond !== undefined && perSecond !== null && (typeof perSecond !== "number" || !Number.isFinite(perSecond) || perSecond < 0)) {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `values.perSecond must be a finite number of batches per second ≥ 0, or null to unpin, got ${describeValue(perSecond)}`, {
          field: "values.perSecond",
        });
      }
      if (batchSize !== undefined && batchSize !== null && (!Number.isSafeInteger(batchSize) || batchSize < 1)) {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `values.batchSize must be a whole number ≥ 1, or null to unpin, got ${describeValue(batchSize)}`, {
          field: "values.batchSize",
        });
      }
      let diff: Record<string, { from: unknown; to: unknown }> = {};
      const { after, changed } = await mutate(name, (doc) => {
        checkRevision(name, doc, opts);
        if (!open(doc.status)) throw new SuperSpreaderError("INVALID_STATE", `backfill "${name}" is ${doc.status}; only a running, held or paused backfill can be pinned`);
        const highest = Math.max(doc.config.perSecondOnPeak, doc.config.perSecondOffPeak);
        if (typeof perSecond === "number" && perSecond > highest) {
          throw new SuperSpreaderError(
            "INVALID_ARGUMENT",
            `values.perSecond ${perSecond} is above the configured rates (perSecondOnPeak ${doc.config.perSecondOnPeak}, perSecondOffPeak ${doc.config.perSecondOffPeak}), which a pin stays under: raise them with updateConfig`,
            { field: "values.perSecond" },
          );
        }
        const control = doc.control ?? initialControl();
        const pins = { perSecond: perSecond === undefined ? control.pins.perSecond : perSecond, batchSize: batchSize === undefined ? control.pins.batchSize : batchSize };
        diff = {};
        if (pins.perSecond !== control.pins.perSecond) diff["pin.perSecond"] = { from: control.pins.perSecond, to: pins.perSecond };
        if (pins.batchSize !== control.pins.batchSize) diff["pin.batchSize"] = { from: control.pins.batchSize, to: pins.batchSize };
        if (Object.keys(diff).length === 0) return null;
        return { ...doc, control: { ...control, pins }, revision: doc.revision + 1 };
      });
      if (changed) {
        await recordChange(name, diff, opts);
        events.emit("configChanged", { ...base(after), changes: diff });
      }
      return statusOf(core, after);
    },

    async status(name) {
      return statusOf(core, (await readOrThrow(name)).doc);
    },

    async audit(name) {
      return auditOf(core, (await readOrThrow(name)).doc);
    },

    async plan(name) {
      return planOf(core, (await readOrThrow(name)).doc);
    },

    async eta(name, etaOptions = {}) {
      return etaOf(core, (await readOrThrow(name)).doc, etaOptions.config);
    },

    repair,

    async extend(name, opts = {}) {
      checkName(name);
      return extendRun(core, name, { ...opts, check: (doc) => checkRevision(name, doc, opts) });
    },

    async output(name, outputOptions = {}) {
      const runId = outputOptions.runId ?? (await readOrThrow(name)).doc.runId;
      return store.listOutput(name, runId, outputOptions.cursor ?? 0, outputOptions.limit ?? 1_000);
    },

    list: () => store.list(),

    on: (event, listener) => events.on(event, listener),

    async perform(raw, context) {
      const data = parseJobData(raw);
      return data.kind === "tick" ? runTick(core, data) : runBatch(core, data, context);
    },

    watchdog: () =>
      watchdog(core, {
        start: async (doc) => {
          await start(doc.name, { restart: true });
        },
        extend: async (doc) => {
          await extendRun(core, doc.name, { actor: doc.extendRequest?.actor ?? "api", ...(doc.extendRequest?.reason ? { reason: doc.extendRequest.reason } : {}) });
        },
        repair: async (doc) => {
          await repair(doc.name, { actor: doc.repairRequest?.actor ?? "api", ...(doc.repairRequest?.reason ? { reason: doc.repairRequest.reason } : {}) });
        },
      }),
  };
  return spreader;
}
