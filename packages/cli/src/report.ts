import {
  MAX_BATCHES_PER_CYCLE,
  estimate,
  findGaps,
  mergeRanges,
  nextWindowChange,
  observedRate,
  rangeSize,
  rateAt,
  spread,
  type AuditReport,
  type BackfillConfig,
  type BackfillStatus,
  type FailedRange,
  type IdRange,
  type IdSource,
  type RangeEntry,
  type SuperSpreader,
} from "@superspreader/core";

/** A late tick starts its cycle when it runs instead of at its scheduled time (the runtime's rule). */
const LATE_TICK_MS = 1_000;

/** Everything the read commands show about one backfill, from one status and one audit read. */
export interface Snapshot {
  readonly now: number;
  readonly status: BackfillStatus;
  readonly audit: AuditReport;
}

export async function snapshot(spreader: SuperSpreader, name: string): Promise<Snapshot> {
  const [status, audit] = await Promise.all([spreader.status(name), spreader.audit(name)]);
  return { now: Date.now(), status, audit };
}

/* ---------------------------------------------------------- range sets */

/** The parts of `ranges` outside `cover`. */
function subtract(ranges: readonly IdRange[], cover: readonly IdRange[]): IdRange[] {
  return ranges.flatMap((r) => findGaps(r.beginId, r.endId, cover));
}

/** The parts of `ranges` inside `cover`. */
function intersect(ranges: readonly IdRange[], cover: readonly IdRange[]): IdRange[] {
  return subtract(ranges, subtract(ranges, cover));
}

const idsIn = (ranges: readonly IdRange[]) => ranges.reduce((sum, r) => sum + rangeSize(r), 0n);

export type GapKind = "failed" | "deferred" | "in flight" | "not planned" | "missing";

/** A gap of the ledger with the reason it is not done yet. */
export interface ClassifiedGap extends IdRange {
  readonly kind: GapKind;
}

/**
 * Splits the ledger's gaps by why they are open: failed and deferred ranges as recorded, ids the cursor has
 * not reached yet, and the rest, which were enqueued and are in flight (or, once the run ended, missing).
 */
export function classifyGaps({ status, audit }: Snapshot): ClassifiedGap[] {
  const failed = mergeRanges(audit.failed);
  const deferred = mergeRanges(audit.deferred);
  const unplanned = status.cursor >= status.minId ? [{ beginId: status.minId, endId: status.cursor }] : [];
  const afterFailed = subtract(audit.gaps, failed);
  const afterDeferred = subtract(afterFailed, deferred);
  const open = status.status === "running" || status.status === "paused";
  const parts: ClassifiedGap[] = [
    ...intersect(audit.gaps, failed).map((r) => ({ ...r, kind: "failed" as const })),
    ...intersect(afterFailed, deferred).map((r) => ({ ...r, kind: "deferred" as const })),
    ...intersect(afterDeferred, unplanned).map((r) => ({ ...r, kind: "not planned" as const })),
    ...subtract(afterDeferred, unplanned).map((r) => ({ ...r, kind: open ? ("in flight" as const) : ("missing" as const) })),
  ];
  return parts.sort((a, b) => (a.beginId < b.beginId ? -1 : a.beginId > b.beginId ? 1 : 0));
}

/** Ranges and ids per kind. */
export function tally(gaps: readonly ClassifiedGap[], kind: GapKind): { ranges: number; ids: bigint } {
  const of = gaps.filter((g) => g.kind === kind);
  return { ranges: of.length, ids: idsIn(of) };
}

/* ---------------------------------------------------------------- ETA */

export interface EtaReport {
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
  /** For a paused backfill: the estimate if it were resumed now. */
  readonly ifResumedNow: boolean;
}

/** When the next cycle starts: its scheduled time, or now when the tick is late (as the runtime does). */
export function nextCycleAt(status: BackfillStatus, now: number): number {
  return status.status === "running" && status.nextTickAt >= now - LATE_TICK_MS ? status.nextTickAt : now;
}

export function observedOf(status: BackfillStatus, now: number): number | null {
  return observedRate(status.metrics, now, { startedAt: status.startedAt });
}

/** The ETA of a running or paused backfill through its peak calendar, and from its observed pace. */
export function etaOf(snap: Snapshot, config: BackfillConfig = snap.status.config): EtaReport | null {
  const { status, audit, now } = snap;
  if (status.status !== "running" && status.status !== "paused") return null;
  const from = nextCycleAt(status, now);
  const observed = observedOf(status, now);
  const eta = estimate({
    config,
    from,
    idsRemaining: status.cursor >= status.minId ? status.cursor - status.minId + 1n : 0n,
    requeued: audit.deferred,
    observed,
  });
  return { from, ...eta, observedIdsPerSecond: observed, ifResumedNow: status.status === "paused" };
}

/* --------------------------------------------------------------- plan */

export interface PlannedBatch extends IdRange {
  readonly runAt: number;
  /** "requeued": a deferred range enqueued again; "fresh": the next ids below the cursor. */
  readonly kind: "requeued" | "fresh";
}

export interface CyclePlan {
  readonly cycle: number;
  readonly beginAt: number;
  readonly perSecond: number;
  readonly onPeak: boolean;
  readonly slots: number;
  readonly batches: PlannedBatch[];
  readonly cursorBefore: bigint;
  readonly cursorAfter: bigint;
}

/**
 * The batches the next tick would enqueue, computed the way the runtime plans a cycle: the rate at the
 * cycle's start, deferred ranges first, then fresh ranges down from the cursor. Enqueues nothing.
 */
export function planNextCycle({ status, audit, now }: Snapshot): CyclePlan {
  const beginAt = nextCycleAt(status, now);
  const { perSecond, onPeak } = rateAt(status.config, beginAt);
  const { batchSize, duration, spreadWithinSecond } = status.config;
  const common = { perSecond, duration, beginAt, spreadWithinSecond };
  // The cycle's slot times: spread over an id space larger than any cycle holds.
  const slotTimes = spread({ ...common, initialId: MAX_BATCHES_PER_CYCLE, minId: 1, batchSize: 1 }).map((b) => b.runAt.getTime());
  const requeued: RangeEntry[] = audit.deferred.slice(0, slotTimes.length);
  const fresh =
    status.cursor >= status.minId
      ? spread({ ...common, initialId: status.cursor, minId: status.minId, batchSize }).slice(0, slotTimes.length - requeued.length)
      : [];
  const batches: PlannedBatch[] = [
    ...requeued.map((r) => ({ beginId: r.beginId, endId: r.endId, kind: "requeued" as const })),
    ...fresh.map((r) => ({ beginId: r.beginId, endId: r.endId, kind: "fresh" as const })),
  ].map((b, i) => ({ ...b, runAt: slotTimes[i] as number }));
  const last = fresh.at(-1);
  return {
    cycle: status.cycle,
    beginAt,
    perSecond,
    onPeak,
    slots: slotTimes.length,
    batches,
    cursorBefore: status.cursor,
    cursorAfter: last ? last.beginId - 1n : status.cursor,
  };
}

/* --------------------------------------------------------------- rows */

export interface RowProgress {
  readonly done: bigint;
  readonly total: bigint;
}

/** Rows done and in total, when the app's source for this backfill can count them. */
export async function rowsOf(source: IdSource | undefined, snap: Snapshot): Promise<RowProgress | null> {
  const count = source?.capabilities.countRange;
  if (!count || snap.audit.initialId < snap.audit.minId) return null;
  const [total, ...done] = await Promise.all([
    count(snap.audit.minId, snap.audit.initialId),
    ...snap.audit.done.map((r) => count(r.beginId, r.endId)),
  ]);
  return { total, done: done.reduce((sum, n) => sum + n, 0n) };
}

/* ------------------------------------------------------------- window */

export interface WindowReport {
  readonly onPeak: boolean;
  readonly perSecond: number;
  /** When the window changes next, and the rate then; null when it never changes. */
  readonly next: { readonly at: number; readonly onPeak: boolean; readonly perSecond: number } | null;
}

export function windowOf(config: BackfillConfig, now: number): WindowReport {
  const current = rateAt(config, now);
  const change = nextWindowChange(config, now);
  return {
    onPeak: current.onPeak,
    perSecond: current.perSecond,
    next: change && { at: change.at, onPeak: change.onPeak, perSecond: change.onPeak ? config.perSecondOnPeak : config.perSecondOffPeak },
  };
}

/** The most recent failures first. */
export function lastErrors(failed: readonly FailedRange[], limit: number): FailedRange[] {
  return [...failed].sort((a, b) => b.at - a.at).slice(0, limit);
}
