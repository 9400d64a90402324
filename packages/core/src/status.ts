import { SCAN_LIMIT, type Core } from "./context.js";
import { rateAt, validateConfig, type BackfillConfig, type BackfillConfigInput, type RateAt } from "./config.js";
import { LATE_TICK_MS, cycleCapacity, cycleJobs, idsUnplanned, planCycle, planRanges, unplannedRanges } from "./cycle.js";
import type { BackfillDoc, BackfillStatusName, HoldState, RepairRequest, RepairSummary, StartRequest, WatchdogRecord } from "./doc.js";
import type { ControlState } from "./control.js";
import { effectiveConfig } from "./effective.js";
import { estimate, observedRate } from "./estimate.js";
import { findGaps, mergeRanges, rangeSize } from "./ids.js";
import type { FailedRange, IdRange, OutstandingEntry, RangeEntry, RunMetrics } from "./ports.js";

/** Progress of a run. */
export interface BackfillProgress {
  /** Ids in the run's id space, `initialId - minId + 1` (grows with every `extend`). */
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

/** What the closed loop does to a run, as `status()` reports it (see `autotune`, `finishBy`, `budget`). */
export interface ControlView {
  /** The batch size the next cycle plans with. */
  readonly batchSize: number;
  /** Batches per second in force now, and the configured ceiling it is under. */
  readonly perSecond: number;
  readonly ceiling: number;
  /** One line for operators, as gh-ost's status: `"throttled: replica lag 2.3 s > 1.5 s (2.55/s of 3/s)"`, or `"at the ceiling (3/s)"`. */
  readonly summary: string;
  /** The loop's last reason to throttle, or null when it runs at its ceiling. */
  readonly reason: string | null;
  /** Autotune's share of the ceilings (1 = at the ceilings). */
  readonly share: number;
  /** Values an operator pinned (the loop leaves them alone), or null. */
  readonly pins: ControlState["pins"];
  /** Deadline mode: the deadline, whether the configured rates can meet it, when they would finish, and the rates that would make it. */
  readonly deadline: {
    readonly finishBy: number;
    readonly feasible: boolean;
    readonly share: number;
    readonly finishAt: number | null;
    /** When infeasible: the rates (both windows, batches per second) that would make it, or null when no rate would. */
    readonly needs: { readonly perSecondOnPeak: number; readonly perSecondOffPeak: number } | null;
  } | null;
  /** The shared budget's cap on this run (batches per second), or null. */
  readonly budget: { readonly key: string; readonly perSecond: number; readonly cap: number | null } | null;
  /** Smoothed handler time per id (ms), or null before the first sample. */
  readonly msPerId: number | null;
  /** How long the last tick took (ms), or null. */
  readonly lastTickMs: number | null;
}

/** The closed loop's view of a run, or null when nothing steers it. */
export function controlView(doc: Pick<BackfillDoc, "config" | "control">, now: number): ControlView | null {
  const { config, control } = doc;
  if (control === null && config.autotune === null && config.finishBy === null && config.budget === null) return null;
  const effective = effectiveConfig(doc);
  const inForce = rateAt(effective, now);
  const ceiling = rateAt(config, now);
  const deadline = config.finishBy === null ? null : control?.deadline ?? null;
  const need = deadline && !deadline.feasible && deadline.needShare !== null ? deadline.needShare : null;
  const pins = control?.pins ?? { batchSize: null, perSecond: null };
  const reasons: string[] = [];
  if (pins.perSecond !== null) reasons.push(`rate pinned at ${pins.perSecond}/s`);
  if (pins.batchSize !== null) reasons.push(`batch size pinned at ${pins.batchSize}`);
  if (control?.reason && pins.perSecond === null) reasons.push(control.reason);
  if (config.finishBy !== null && deadline) {
    reasons.push(deadline.feasible ? `deadline ${new Date(config.finishBy).toISOString()}: on pace` : `deadline ${new Date(config.finishBy).toISOString()} cannot be met at the configured rates${need === null ? "" : ` (needs ${need}× them)`}`);
  }
  if (config.budget !== null && control?.budgetCap !== null && control?.budgetCap !== undefined && control.budgetCap < ceiling.perSecond) {
    reasons.push(`budget "${config.budget.key}" leaves ${control.budgetCap}/s`);
  }
  const rates = `${inForce.perSecond}/s of ${ceiling.perSecond}/s, batch ${effective.batchSize}`;
  return {
    batchSize: effective.batchSize,
    perSecond: inForce.perSecond,
    ceiling: ceiling.perSecond,
    summary: reasons.length > 0 ? `${reasons.join("; ")} (${rates})` : `at the ceiling (${rates})`,
    reason: control?.reason ?? null,
    share: control?.factor ?? 1,
    pins,
    deadline:
      config.finishBy === null
        ? null
        : {
            finishBy: config.finishBy,
            feasible: deadline?.feasible ?? true,
            share: control?.deadlineShare ?? 1,
            finishAt: deadline?.finishAt ?? null,
            needs: need === null ? null : { perSecondOnPeak: Math.ceil(config.perSecondOnPeak * need * 1000) / 1000, perSecondOffPeak: Math.ceil(config.perSecondOffPeak * need * 1000) / 1000 },
          },
    budget: config.budget === null ? null : { key: config.budget.key, perSecond: config.budget.perSecond, cap: control?.budgetCap ?? null },
    msPerId: control?.msPerId ?? null,
    lastTickMs: control?.lastTickMs ?? null,
  };
}

/** A backfill's state as `status()` reports it. */
export interface BackfillStatus {
  readonly name: string;
  readonly status: BackfillStatusName;
  readonly runId: string;
  readonly config: BackfillConfig;
  /** Id space of the run, `[minId, initialId]`: read at start, `initialId` raised by `extend`. */
  readonly minId: bigint;
  readonly initialId: bigint;
  /** Next id to plan in the current span; below it once every range of the span has been enqueued. */
  readonly cursor: bigint;
  /**
   * The ids not planned yet, ascending: what is left below the cursor, and the spans `extend` added that
   * the cycles plan after the current one. Empty once every range has been enqueued.
   */
  readonly unplanned: readonly IdRange[];
  readonly cycle: number;
  /** When the tick of the current cycle is due (epoch ms); for a held run, the next probe. */
  readonly nextTickAt: number;
  /**
   * How late the next tick is (ms), 0 when on time or not running. Workers' watchdogs revive a chain whose
   * tick job is gone within seconds; a value growing past a minute means no worker defining this backfill runs.
   */
  readonly tickOverdueMs: number;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  readonly progress: BackfillProgress;
  /** The rate in force now: the configured one, or what the closed loop (autotune, deadline, budget, a pin) keeps it at under it. */
  readonly rate: RateAt;
  /** The closed loop's state, decisions and deadline; null when nothing steers the run. */
  readonly control: ControlView | null;
  readonly metrics: RunMetrics;
  /** Bumped by every change an operator sees (status, config, a new run), not by cycles: use it for `expectedRevision` and ETags. */
  readonly revision: number;
  /** Why the run holds itself and when it probes next; null unless `held`. */
  readonly hold: HoldState | null;
  /** What the watchdog did: how often it revived the tick chain, when last and why. */
  readonly watchdog: WatchdogRecord;
  /** Ranges found lost (their jobs gone from the queue or given up by it) and enqueued again. */
  readonly reconciled: { readonly ranges: number };
  /** A start asked for from outside (the CLI), waiting for a worker that defines the backfill; null when none. */
  readonly request: StartRequest | null;
  /** A repair asked for from outside, waiting for a worker; null when none. */
  readonly repairRequest: RepairRequest | null;
  /** What the last repair found and did; null before the first. */
  readonly lastRepair: RepairSummary | null;
}

/** Why a gap of the ledger is open. */
export type GapKind = "failed" | "deferred" | "in flight" | "not planned" | "lost";

/** A gap of the ledger with the reason it is not done yet. */
export interface ClassifiedGap extends IdRange {
  readonly kind: GapKind;
}

/** What `audit()` reports: the ledger against the run's id space. */
export interface AuditReport {
  readonly name: string;
  readonly runId: string;
  readonly minId: bigint;
  readonly initialId: bigint;
  /** Ranges recorded done, merged. */
  readonly done: IdRange[];
  /** Ids of the id space never recorded done (in flight, deferred, failed, not planned yet, or lost). */
  readonly gaps: IdRange[];
  /** The gaps split by why they are open, ascending. `lost`: enqueued, but neither in the queue's hands nor recorded (repair or the next ticks requeue it). */
  readonly classified: ClassifiedGap[];
  readonly deferred: RangeEntry[];
  readonly failed: FailedRange[];
  /** Enqueued ranges not recorded yet (runs of this version only; older runs record none). */
  readonly outstanding: OutstandingEntry[];
  /** True when there is no gap. */
  readonly complete: boolean;
}

/** One batch of the next cycle, as `plan()` shows it. */
export interface PlannedBatch extends IdRange {
  readonly runAt: number;
  /** `requeued`: a deferred range enqueued again; `fresh`: the next ids below the cursor; `probe`: a held run's probe. */
  readonly kind: "requeued" | "fresh" | "probe";
}

/** The next cycle of a run, computed by the planner the tick will run, without enqueuing anything. */
export interface NextCycle {
  readonly cycle: number;
  readonly kind: "work" | "probe";
  readonly beginAt: number;
  /** The tick is late: the cycle starts now, on a new grid. */
  readonly late: boolean;
  readonly perSecond: number;
  readonly onPeak: boolean;
  /** Batch slots in the cycle (requeued + fresh ≤ slots). */
  readonly slots: number;
  readonly batches: PlannedBatch[];
  readonly cursorBefore: bigint;
  readonly cursorAfter: bigint;
  readonly nextTickAt: number;
  /** For a paused run: the plan if it were resumed now. */
  readonly ifResumedNow: boolean;
}

/** The ETA of a run through its peak calendar, and from its observed pace. */
export interface RunEta {
  /** When the next cycle starts (the estimate's origin). */
  readonly from: number;
  readonly finishAt: number | null;
  readonly observedFinishAt: number | null;
  readonly cyclesRemaining: number | null;
  readonly batchesRemaining: bigint;
  readonly idsRemaining: bigint;
  readonly extrapolated: boolean;
  /** Observed ids per second over the last 15 minutes, or null. */
  readonly observedIdsPerSecond: number | null;
  /** For a paused or held run: the estimate if it were resumed now. */
  readonly ifResumedNow: boolean;
}

const open = (s: BackfillStatusName) => s === "running" || s === "paused" || s === "held";

export async function statusOf(core: Core, doc: BackfillDoc): Promise<BackfillStatus> {
  const metrics = await core.store.metrics(doc.name, doc.runId);
  const now = core.clock.now();
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
    unplanned: unplannedRanges(doc),
    cycle: doc.cycle,
    nextTickAt: doc.nextTickAt,
    tickOverdueMs: doc.status === "running" || doc.status === "held" ? Math.max(0, now - doc.nextTickAt) : 0,
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
    rate: rateAt(effectiveConfig(doc), now),
    control: controlView(doc, now),
    metrics,
    revision: doc.revision,
    hold: doc.hold,
    watchdog: doc.watchdog,
    reconciled: { ranges: metrics.batchesLost },
    request: doc.request,
    repairRequest: doc.repairRequest,
    lastRepair: doc.lastRepair,
  };
}

/** The parts of `ranges` outside `cover`. */
function subtract(ranges: readonly IdRange[], cover: readonly IdRange[]): IdRange[] {
  return ranges.flatMap((r) => findGaps(r.beginId, r.endId, cover));
}

/** The parts of `ranges` inside `cover`. */
function intersect(ranges: readonly IdRange[], cover: readonly IdRange[]): IdRange[] {
  return subtract(ranges, subtract(ranges, cover));
}

export async function auditOf(core: Core, doc: BackfillDoc): Promise<AuditReport> {
  const { store } = core;
  const minId = BigInt(doc.minId);
  const initialId = BigInt(doc.initialId);
  // One after another, in the order a range moves between them (outstanding → done, deferred or failed;
  // failed → deferred), so a range recorded during the reads is seen in one of them, never "lost".
  const outstanding = doc.tracking ? await store.listOutstanding(doc.name, doc.runId, Number.MAX_SAFE_INTEGER, SCAN_LIMIT) : [];
  const failed = await store.listFailed(doc.name, doc.runId, SCAN_LIMIT);
  const deferred = await store.listDeferred(doc.name, doc.runId, SCAN_LIMIT);
  const done = await store.listDone(doc.name, doc.runId);
  const merged = mergeRanges(done);
  const gaps = initialId >= minId ? findGaps(minId, initialId, merged) : [];
  const unplanned = unplannedRanges(doc);
  const afterFailed = subtract(gaps, mergeRanges(failed));
  const afterDeferred = subtract(afterFailed, mergeRanges(deferred));
  const afterUnplanned = subtract(afterDeferred, unplanned);
  // Runs of older versions record nothing per enqueued batch: while they run, what is left is in flight.
  const inFlight = doc.tracking ? intersect(afterUnplanned, mergeRanges(outstanding)) : open(doc.status) ? afterUnplanned : [];
  const classified: ClassifiedGap[] = [
    ...intersect(gaps, mergeRanges(failed)).map((r) => ({ ...r, kind: "failed" as const })),
    ...intersect(afterFailed, mergeRanges(deferred)).map((r) => ({ ...r, kind: "deferred" as const })),
    ...intersect(afterDeferred, unplanned).map((r) => ({ ...r, kind: "not planned" as const })),
    ...inFlight.map((r) => ({ ...r, kind: "in flight" as const })),
    ...subtract(afterUnplanned, inFlight).map((r) => ({ ...r, kind: "lost" as const })),
  ].sort((a, b) => (a.beginId < b.beginId ? -1 : a.beginId > b.beginId ? 1 : 0));
  return {
    name: doc.name,
    runId: doc.runId,
    minId,
    initialId,
    done: merged,
    gaps,
    classified,
    deferred,
    failed,
    outstanding,
    complete: gaps.length === 0,
  };
}

/** Ranges and ids of one kind of gap. */
export function tally(gaps: readonly ClassifiedGap[], kind: GapKind): { ranges: number; ids: bigint } {
  const of = gaps.filter((g) => g.kind === kind);
  return { ranges: of.length, ids: of.reduce((sum, r) => sum + rangeSize(r), 0n) };
}

/** The doc as the planner should see it: a paused or held run as if it were resumed now. */
function asResumed(doc: BackfillDoc, now: number): BackfillDoc {
  if (doc.status === "running") return doc;
  return { ...doc, status: "running", hold: null, pace: null, nextTickAt: Math.min(doc.nextTickAt, now) };
}

export async function planOf(core: Core, doc: BackfillDoc): Promise<NextCycle | null> {
  if (!open(doc.status)) return null;
  const now = core.clock.now();
  const run = doc.status === "paused" ? asResumed(doc, now) : doc;
  const plan = doc.pending ?? planCycle(run, await core.store.listDeferred(doc.name, doc.runId, Math.max(1, cycleCapacity(run, now))), now, {
    tickAttempts: core.tickAttempts,
  });
  const { batches } = cycleJobs(run, plan);
  const ranges = planRanges(run, plan);
  return {
    cycle: plan.cycle,
    kind: plan.kind,
    beginAt: plan.beginAt,
    late: plan.late,
    perSecond: Number(plan.perSecond),
    onPeak: plan.onPeak,
    slots: plan.slots,
    batches: ranges.map((r, i) => ({
      beginId: r.beginId,
      endId: r.endId,
      runAt: batches[i]?.runAt ?? plan.beginAt,
      kind: plan.kind === "probe" ? ("probe" as const) : r.kind,
    })),
    cursorBefore: BigInt(plan.cursor),
    cursorAfter: BigInt(plan.nextCursor),
    nextTickAt: plan.nextTickAt,
    ifResumedNow: doc.status === "paused",
  };
}

/** When the next cycle starts: its scheduled time, or now when the tick is late or the run is paused or held. */
export function nextCycleAt(doc: Pick<BackfillDoc, "status" | "nextTickAt">, now: number): number {
  return doc.status === "running" && doc.nextTickAt >= now - LATE_TICK_MS ? doc.nextTickAt : now;
}

export async function etaOf(core: Core, doc: BackfillDoc, config?: BackfillConfig | BackfillConfigInput): Promise<RunEta | null> {
  if (!open(doc.status)) return null;
  const now = core.clock.now();
  const [metrics, deferred] = await Promise.all([core.store.metrics(doc.name, doc.runId), core.store.listDeferred(doc.name, doc.runId, SCAN_LIMIT)]);
  // The rates and batch size the loop keeps the run at apply to a previewed config too.
  const valid = effectiveConfig({ config: config === undefined ? doc.config : validateConfig(config), control: doc.control });
  const from = nextCycleAt(doc, now);
  const observed = observedRate(metrics, now, { startedAt: doc.startedAt });
  const eta = estimate({
    config: valid,
    from,
    idsRemaining: idsUnplanned(doc),
    requeued: deferred,
    observed,
    grid: doc.status === "running" && from === doc.nextTickAt && config === undefined ? doc.pace : null,
  });
  return { from, ...eta, observedIdsPerSecond: observed, ifResumedNow: doc.status !== "running" };
}
