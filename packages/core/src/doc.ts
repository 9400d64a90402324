import type { BackfillConfig, BackfillConfigInput } from "./config.js";
import { validateStoredConfig } from "./config.js";
import { SuperSpreaderError } from "./errors.js";
import type { ControlState } from "./control.js";
import type { BatchJobData, JobData, TickJobData } from "./ports.js";
import { NAME_PATTERN } from "./validate-args.js";

/**
 * Lifecycle of a run. `held`: a burst of failures (a database outage) paused it by itself; it
 * probes and resumes on its own. `starting`: a start was asked for from outside (the CLI) and
 * waits for a worker that defines the backfill to carry it out.
 */
export type BackfillStatusName = "running" | "paused" | "held" | "cancelled" | "completed" | "failed" | "starting";

/** A stored range (decimal-string ids). */
export interface StoredEntry {
  readonly beginId: string;
  readonly endId: string;
  readonly cycle: number;
}

/** A span of ids added to a run by `extend`, planned once the spans before it are (decimal strings, inclusive). */
export interface StoredSpan {
  readonly beginId: string;
  readonly endId: string;
}

/** An extension asked for by a process that does not define the backfill (the CLI): a worker that defines it carries it out. */
export interface ExtendRequest {
  readonly at: number;
  readonly actor: string;
  readonly reason: string | null;
}

/** The outcome of the last extension (or of a request that found nothing new), kept for whoever asked. */
export interface ExtendSummary {
  readonly at: number;
  readonly actor: string;
  /** True when the run's id space grew. */
  readonly extended: boolean;
  /** The run's highest id before and after (decimal strings). */
  readonly fromId: string;
  readonly toId: string;
  /** What the source's `maxId()` answered (null: no rows). */
  readonly sourceMaxId: string | null;
}

/** The slot grid the next cycle continues (see pacing.ts). */
export interface StoredPace {
  /** Epoch ms of the grid's slot 0 and cycle 0. */
  readonly origin: number;
  /** The grid's rate, exact ("7.5"). */
  readonly perSecond: string;
  readonly spreadWithinSecond: boolean;
  /** The duration (seconds) the grid's cycles were cut with. */
  readonly duration: number;
  /** Index, in the grid, of the next cycle. */
  readonly tick: number;
  /** Ms from the origin to the grid's slot 0 (absent: 0); see `Grid.shift`. */
  readonly shift?: number;
  /** Run time of the last batch planned so far, on this grid or an earlier one (absent or null: none known). */
  readonly lastSlotAt?: number | null;
}

/**
 * A planned cycle, stored with compare-and-set before anything is enqueued, so a tick that
 * crashes after planning is finished by the next delivery with exactly the same jobs (same
 * ids, run times, attempts and priorities; deduplicated by the queue).
 */
export interface CyclePlan {
  readonly cycle: number;
  /** `work`: a normal cycle; `probe`: a held run's single probe batch. */
  readonly kind: "work" | "probe";
  /** The cycle's start (epoch ms): its scheduled time, or when it ran if the tick was late. */
  readonly beginAt: number;
  /** True when the tick ran late and the cycle started a new grid at `beginAt`. */
  readonly late: boolean;
  /** Exact rate, e.g. "7.5". */
  readonly perSecond: string;
  readonly onPeak: boolean;
  readonly spreadWithinSecond: boolean;
  /** Epoch ms of cycle 0 of the grid this cycle's slots belong to. */
  readonly origin: number;
  /** Ms from `origin` to the grid's slot 0 (absent in plans of older versions: 0). */
  readonly shift?: number;
  /** The grid slot of this cycle's first batch; batch k runs at the time of slot `firstSlot + k`. */
  readonly firstSlot: number;
  /** Slots the cycle has (requeued + fresh ≤ slots). */
  readonly slots: number;
  readonly batchSize: number;
  /** Cursor before the cycle (next endId to plan); fresh ranges go down from here. */
  readonly cursor: string;
  /**
   * The lowest id the cycle's fresh ranges may reach: the floor of the span they come from (absent in
   * plans of earlier versions: the run's minId).
   */
  readonly floor?: string;
  /**
   * True when the cycle starts the first span queued by `extend` (the current one was exhausted): `cursor`
   * and `floor` are that span's, and finalising the cycle makes it the current span.
   */
  readonly spanTaken?: boolean;
  /** Fresh ranges in this cycle. */
  readonly fresh: number;
  /** Cursor after the cycle. */
  readonly nextCursor: string;
  /** Deferred, failed or lost ranges enqueued again, in the cycle's first slots. */
  readonly requeue: readonly StoredEntry[];
  /** When the next tick runs (epoch ms). */
  readonly nextTickAt: number;
  /** The grid position after this cycle, for the next one to continue. */
  readonly pace: StoredPace | null;
  /** Batch job priority (null: none, as plans of older versions enqueued). */
  readonly priority: number | null;
  /** Batch job attempts. */
  readonly maxAttempts: number;
  /** Tick job attempts (null in plans of older versions: the runtime's option). */
  readonly tickAttempts: number | null;
}

/** Why and since when a run holds itself. */
export interface HoldState {
  /** When the hold began (epoch ms). */
  readonly since: number;
  /** Why, in words ("10 failed attempts in a row"). */
  readonly reason: string;
  /** The last error that counted, with its cause chain. */
  readonly lastError: string | null;
  /** Probes sent so far. */
  readonly probes: number;
  /** When the next probe goes out (epoch ms), or null once one is in flight. */
  readonly nextProbeAt: number | null;
  /**
   * What holds it: a burst of failures (released by a probe batch that succeeds), or a health indicator
   * saying `stop` (released when the indicator no longer says so, looked at every `health.stopHold` s).
   * Absent in holds of earlier versions: failures.
   */
  readonly cause?: "failures" | "health";
}

/** What the watchdog did for a run. */
export interface WatchdogRecord {
  readonly revivals: number;
  readonly lastRevivedAt: number | null;
  readonly lastReason: string | null;
}

/** A start asked for by a process that cannot carry it out itself (the CLI without the app). */
export interface StartRequest {
  readonly at: number;
  /** The id the run will get when a worker starts it, so whoever asked can follow it (absent in requests of earlier versions). */
  readonly runId?: string;
  readonly actor: string;
  readonly reason: string | null;
  /** Config fields overriding the live one (or the definition's, for a first run). */
  readonly config: Partial<BackfillConfigInput> | null;
  /** Start from the definition's config instead of the live one. */
  readonly resetConfig: boolean;
}

/** A repair asked for by a process without the queue (the CLI); a worker carries it out. */
export interface RepairRequest {
  readonly at: number;
  readonly actor: string;
  readonly reason: string | null;
}

/** The outcome of the last repair, kept so the one who asked can read it. */
export interface RepairSummary {
  readonly at: number;
  readonly actor: string;
  /** Outstanding entries looked up in the queue. */
  readonly checked: number;
  /** Ranges whose jobs were gone or given up by the queue. */
  readonly lost: number;
  /** Ranges nothing accounted for (not done, deferred, failed nor outstanding). */
  readonly unaccounted: number;
  /** Ranges put back to be enqueued again. */
  readonly requeued: number;
}

/**
 * The document core keeps in the StateStore for each backfill: one run's state. Exported
 * as `RunState` for the pure planner ({@link planCycle}) and for tools that read the store.
 */
export interface BackfillDoc {
  readonly schema: 1;
  readonly name: string;
  readonly runId: string;
  readonly status: BackfillStatusName;
  readonly config: BackfillConfig;
  /** Id space of the run, `[minId, initialId]` (decimal strings): fixed at start, `initialId` raised by `extend`. */
  readonly minId: string;
  readonly initialId: string;
  /** Next endId to plan in the current span; below `floor` when every fresh range of it has been enqueued. */
  readonly cursor: string;
  /**
   * The lowest id of the span the cursor descends in: `minId` for the span a run starts with (and in
   * documents of earlier versions), `oldInitialId + 1` for a span added by `extend`.
   */
  readonly floor: string;
  /**
   * Spans added by `extend`, planned in order once the current span is exhausted (a cycle takes the
   * first when the cursor is below `floor`). `extend` only appends, in the same compare-and-set that
   * raises `initialId`, so a span is planned once whatever a crash interrupts. Empty in earlier documents.
   */
  readonly spans: readonly StoredSpan[];
  /** An extension waiting for a worker that defines the backfill (asked for by the CLI), or null. */
  readonly extendRequest: ExtendRequest | null;
  /** What the last extension found and did, or null before the first. */
  readonly lastExtend: ExtendSummary | null;
  /** The cycle the next tick plans. */
  readonly cycle: number;
  /** Tick generation: bumped by resume and by reviving a chain, so older ticks turn stale. */
  readonly epoch: number;
  /** When the tick of `cycle` is due (epoch ms). */
  readonly nextTickAt: number;
  readonly pending: CyclePlan | null;
  readonly startedAt: number;
  readonly updatedAt: number;
  readonly finishedAt: number | null;
  /** Bumped by every change an operator would see (status, config, run), not by cycles: the dashboard's ETag. */
  readonly revision: number;
  /** The grid the next cycle continues, or null (the next cycle starts a new one). */
  readonly pace: StoredPace | null;
  readonly hold: HoldState | null;
  readonly watchdog: WatchdogRecord;
  /** True for runs that record an outstanding entry per enqueued batch (every run started by this version). */
  readonly tracking: boolean;
  /** A start waiting for a worker (status `starting`, or a restart of a finished run). */
  readonly request: StartRequest | null;
  readonly repairRequest: RepairRequest | null;
  readonly lastRepair: RepairSummary | null;
  /** Set by a process without a queue that revived the chain: the watchdog enqueues the tick without waiting out its grace. */
  readonly needsTick: boolean;
  /** A placeholder written for a start requested before any run: its config is not the backfill's. */
  readonly unstarted: boolean;
  /** The closed loop's state (autotune, deadline, budget, pins), or null when nothing steers the run. */
  readonly control: ControlState | null;
}

const STATUSES: readonly BackfillStatusName[] = ["running", "paused", "held", "cancelled", "completed", "failed", "starting"];

function corrupt(what: string, detail: string): SuperSpreaderError {
  return new SuperSpreaderError("CORRUPT_DATA", `${what} ${detail}; it was not written by this version of superspreader or was edited by hand`);
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isIdString = (v: unknown): v is string => typeof v === "string" && /^-?(0|[1-9][0-9]*)$/.test(v);
const isTime = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function parsePlan(what: string, p: Record<string, unknown>, config: BackfillConfig): CyclePlan {
  if (
    !isInt(p.cycle) ||
    !isTime(p.beginAt) ||
    !isTime(p.nextTickAt) ||
    !isIdString(p.cursor) ||
    !isIdString(p.nextCursor) ||
    !isInt(p.fresh) ||
    !isInt(p.batchSize) ||
    typeof p.perSecond !== "string" ||
    !Array.isArray(p.requeue)
  ) {
    throw corrupt(what, "has a malformed pending plan");
  }
  if (p.kind === undefined) {
    // A plan stored by a version without grids: slot k at beginAt + k / rate, the config's attempts and priority.
    return {
      ...(p as unknown as CyclePlan),
      kind: "work",
      late: false,
      origin: p.beginAt,
      firstSlot: 0,
      slots: p.requeue.length + p.fresh,
      pace: null,
      priority: config.priority,
      maxAttempts: config.maxAttempts,
      tickAttempts: null,
    };
  }
  if ((p.kind !== "work" && p.kind !== "probe") || !isTime(p.origin) || !isInt(p.firstSlot) || !isInt(p.slots) || !isInt(p.maxAttempts)) {
    throw corrupt(what, "has a malformed pending plan");
  }
  return p as unknown as CyclePlan;
}

/**
 * Checks a stored document's shape and returns it in this version's form (fields added
 * since it was written take their defaults, its config is normalised); throws
 * CORRUPT_DATA naming the backfill and the field. `validated(json)` may return the config
 * already validated for that JSON, to skip validating it again (every batch reads the doc).
 */
export function parseDoc(name: string, value: unknown, validated: (config: unknown) => BackfillConfig | undefined = () => undefined): BackfillDoc {
  const what = `stored state of backfill "${name}":`;
  if (typeof value !== "object" || value === null) throw corrupt(what, "is not an object");
  const d = value as Record<string, unknown>;
  if (d.schema !== 1) throw corrupt(what, `has schema ${JSON.stringify(d.schema)}, expected 1`);
  if (typeof d.status !== "string" || !STATUSES.includes(d.status as BackfillStatusName)) throw corrupt(what, `has status ${JSON.stringify(d.status)}`);
  if (typeof d.runId !== "string" || d.runId.length === 0) throw corrupt(what, "has no runId");
  for (const key of ["minId", "initialId", "cursor"]) if (!isIdString(d[key])) throw corrupt(what, `field ${key} is ${JSON.stringify(d[key])}`);
  for (const key of ["cycle", "epoch"]) if (!isInt(d[key])) throw corrupt(what, `field ${key} is ${JSON.stringify(d[key])}`);
  for (const key of ["nextTickAt", "startedAt", "updatedAt"]) if (!isTime(d[key])) throw corrupt(what, `field ${key} is ${JSON.stringify(d[key])}`);
  let config: BackfillConfig;
  try {
    config = validated(d.config) ?? validateStoredConfig(d.config);
  } catch (error) {
    throw new SuperSpreaderError("CORRUPT_DATA", `${what} its config is invalid: ${(error as Error).message}`, { cause: error });
  }
  let pending: CyclePlan | null = null;
  if (d.pending !== null && d.pending !== undefined) {
    if (typeof d.pending !== "object") throw corrupt(what, "has a malformed pending plan");
    pending = parsePlan(what, d.pending as Record<string, unknown>, config);
  }
  if (d.floor !== undefined && !isIdString(d.floor)) throw corrupt(what, `field floor is ${JSON.stringify(d.floor)}`);
  const spans = (d.spans ?? []) as StoredSpan[];
  if (!Array.isArray(spans) || spans.some((s) => typeof s !== "object" || s === null || !isIdString(s.beginId) || !isIdString(s.endId) || BigInt(s.beginId) > BigInt(s.endId))) {
    throw corrupt(what, `field spans is ${JSON.stringify(d.spans)}`);
  }
  if (d.revision !== undefined && !isInt(d.revision)) throw corrupt(what, `field revision is ${JSON.stringify(d.revision)}`);
  const pace = (d.pace ?? null) as StoredPace | null;
  if (pace !== null && (typeof pace !== "object" || !isTime(pace.origin) || !isInt(pace.tick) || typeof pace.perSecond !== "string")) {
    throw corrupt(what, "has a malformed pace");
  }
  const hold = (d.hold ?? null) as HoldState | null;
  if (hold !== null && (typeof hold !== "object" || !isTime(hold.since) || typeof hold.reason !== "string" || !isInt(hold.probes))) {
    throw corrupt(what, "has a malformed hold");
  }
  const control = (d.control ?? null) as ControlState | null;
  if (control !== null && (typeof control !== "object" || typeof control.factor !== "number" || typeof control.pins !== "object" || control.pins === null)) {
    throw corrupt(what, "has a malformed control state");
  }
  return {
    ...(value as BackfillDoc),
    config,
    control,
    pending,
    revision: (d.revision as number | undefined) ?? 0,
    pace,
    hold,
    watchdog: (d.watchdog as WatchdogRecord | undefined) ?? { revivals: 0, lastRevivedAt: null, lastReason: null },
    tracking: d.tracking === true,
    request: (d.request as StartRequest | undefined) ?? null,
    repairRequest: (d.repairRequest as RepairRequest | undefined) ?? null,
    lastRepair: (d.lastRepair as RepairSummary | undefined) ?? null,
    needsTick: d.needsTick === true,
    unstarted: d.unstarted === true,
    finishedAt: (d.finishedAt as number | null | undefined) ?? null,
    // Documents of earlier versions have one span, [minId, initialId], and no extensions.
    floor: (d.floor as string | undefined) ?? (d.minId as string),
    spans,
    extendRequest: (d.extendRequest as ExtendRequest | undefined) ?? null,
    lastExtend: (d.lastExtend as ExtendSummary | undefined) ?? null,
  };
}

/** Checks a job payload read back from a queue; throws CORRUPT_DATA naming the field. */
export function parseJobData(data: unknown): JobData {
  const what = "job data";
  if (typeof data !== "object" || data === null) throw corrupt(what, `is ${JSON.stringify(data)}, not an object`);
  const d = data as Record<string, unknown>;
  if (typeof d.backfill !== "string" || !NAME_PATTERN.test(d.backfill)) throw corrupt(what, `has backfill ${JSON.stringify(d.backfill)}`);
  if (typeof d.runId !== "string" || d.runId.length === 0) throw corrupt(what, `has runId ${JSON.stringify(d.runId)}`);
  if (!isInt(d.cycle)) throw corrupt(what, `has cycle ${JSON.stringify(d.cycle)}`);
  if (d.kind === "tick") {
    if (!isInt(d.epoch)) throw corrupt(what, `has epoch ${JSON.stringify(d.epoch)}`);
    if (!isTime(d.scheduledAt)) throw corrupt(what, `has scheduledAt ${JSON.stringify(d.scheduledAt)}`);
    return d as unknown as TickJobData;
  }
  if (d.kind === "batch") {
    if (!isIdString(d.beginId) || !isIdString(d.endId) || BigInt(d.beginId) > BigInt(d.endId) || BigInt(d.beginId) < 0n) {
      throw corrupt(what, `has range ${JSON.stringify(d.beginId)}..${JSON.stringify(d.endId)}`);
    }
    if (d.scheduledAt !== undefined && !isTime(d.scheduledAt)) throw corrupt(what, `has scheduledAt ${JSON.stringify(d.scheduledAt)}`);
    if (d.probe !== undefined && typeof d.probe !== "boolean") throw corrupt(what, `has probe ${JSON.stringify(d.probe)}`);
    return d as unknown as BatchJobData;
  }
  throw corrupt(what, `has kind ${JSON.stringify(d.kind)}, expected "tick" or "batch"`);
}
