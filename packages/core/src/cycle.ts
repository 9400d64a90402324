import { DEFAULT_BATCH_PRIORITY, rateAt, type RateAt } from "./config.js";
import type { BackfillDoc, CyclePlan, HoldState, StoredEntry, StoredPace } from "./doc.js";
import { SuperSpreaderError, describeValue } from "./errors.js";
import type { IdRange, OutstandingEntry, QueueJob, RangeEntry } from "./ports.js";
import { cycleOffsetMs, cycleSlots, lastSlotBefore, shiftAfter, slotAt, type Grid } from "./pacing.js";
import { toRational } from "./rational.js";
import { descendingRanges } from "./spread.js";
import { effectiveConfig } from "./effective.js";

/**
 * One backfill's stored run, as the planner reads it: the state document the runtime keeps
 * in the StateStore.
 */
export type RunState = BackfillDoc;
export type { CyclePlan } from "./doc.js";

/** A tick that runs later than this after its scheduled time starts its cycle when it runs (a new grid), so a stalled chain never bursts to catch up. */
export const LATE_TICK_MS = 1_000;
/** Ticks get this priority on queues with priorities, so they never wait behind batches. */
export const TICK_PRIORITY = 1;

/** Options of {@link planCycle} and {@link cycleJobs}. */
export interface CycleOptions {
  /**
   * Runs of a tick job before the queue gives it up.
   * @default 25
   */
  tickAttempts?: number;
  /**
   * How long after a batch's run time its outstanding entry is first checked against the
   * queue (reconciliation), in ms.
   * @default 60000
   */
  reconcileAfterMs?: number;
}

/** The job id of a batch: deterministic in (backfill, run, cycle, range). */
export function batchJobId(name: string, runId: string, cycle: number, range: IdRange): string {
  return `${name}.${runId}.b${cycle}.${range.beginId}-${range.endId}`;
}

/** The job id of a tick: deterministic in (backfill, run, cycle, epoch). */
export function tickJobId(name: string, runId: string, cycle: number, epoch: number): string {
  return `${name}.${runId}.t${cycle}.e${epoch}`;
}

const toStored = (e: RangeEntry): StoredEntry => ({ beginId: e.beginId.toString(), endId: e.endId.toString(), cycle: e.cycle });
/** A stored entry as a range entry. */
export const fromStored = (e: StoredEntry): RangeEntry => ({ beginId: BigInt(e.beginId), endId: BigInt(e.endId), cycle: e.cycle });

/** The wait before probe `n + 1` of a hold (ms): the policy's first wait doubled per probe already sent, capped. */
export function probeIntervalMs(run: RunState, probes: number): number {
  const policy = run.config.hold;
  const first = (policy?.probeAfter ?? 5) * 1000;
  const cap = (policy?.maxProbeInterval ?? 300) * 1000;
  return Math.min(cap, first * 2 ** Math.min(probes, 40));
}

/** When the next cycle of `run` starts (its `nextTickAt`, or `now` for a late tick) and whether the tick is late. */
export function cycleStart(run: Pick<RunState, "nextTickAt">, now: number): { beginAt: number; late: boolean } {
  const late = now - run.nextTickAt > LATE_TICK_MS;
  return { beginAt: late ? now : run.nextTickAt, late };
}

interface Position {
  readonly beginAt: number;
  readonly late: boolean;
  readonly rate: RateAt;
  readonly grid: Grid;
  readonly tick: number;
  readonly first: number;
  readonly count: number;
  readonly nextStart: number;
}

/**
 * The grid a cycle starting at `beginAt` belongs to, and its index in it. The stored grid
 * goes on when nothing it was cut with changed and the cycle starts exactly where the grid
 * put it; otherwise (a late tick, a new rate, spread mode or duration, a revived chain) a
 * new grid starts at `beginAt`.
 */
export function gridAt(config: RunState["config"], pace: StoredPace | null, beginAt: number, late: boolean, known?: RateAt): { grid: Grid; tick: number; rate: RateAt } {
  const rate = known ?? rateAt(config, beginAt);
  const base = { rate: toRational(rate.perSecond, "perSecond"), duration: toRational(config.duration, "duration"), spreadWithinSecond: config.spreadWithinSecond };
  if (
    !late &&
    pace !== null &&
    pace.perSecond === rate.perSecondExact &&
    pace.spreadWithinSecond === config.spreadWithinSecond &&
    pace.duration === config.duration
  ) {
    const continued: Grid = { ...base, origin: pace.origin, shift: pace.shift ?? 0 };
    if (continued.origin + cycleOffsetMs(continued, pace.tick) === beginAt) return { grid: continued, tick: pace.tick, rate };
  }
  // A new grid after another (a new rate, a late tick) keeps the spacing from the last batch planned,
  // which the start-rate bucket enforces anyway: slots planned sooner would only wait for it.
  let shift = 0;
  if (pace !== null) {
    const previous: Grid = {
      origin: pace.origin,
      rate: toRational(Number(pace.perSecond), "perSecond"),
      duration: toRational(pace.duration, "duration"),
      spreadWithinSecond: pace.spreadWithinSecond,
      shift: pace.shift ?? 0,
    };
    shift = shiftAfter(pace.lastSlotAt !== undefined ? pace.lastSlotAt : lastSlotBefore(previous, pace.tick), base, beginAt);
  }
  return { grid: { ...base, origin: beginAt, shift }, tick: 0, rate };
}

function position(run: RunState, now: number): Position {
  const { beginAt, late } = cycleStart(run, now);
  // The closed loop's rate (autotune, deadline, budget, pins) under the configured ceilings.
  const { grid, tick, rate } = gridAt(effectiveConfig(run), run.pace, beginAt, late);
  return { beginAt, late, rate, grid, tick, ...cycleSlots(grid, tick) };
}

/**
 * How many batch slots the next cycle of `run` has: the most deferred ranges worth reading
 * for {@link planCycle}. 0 in a zero-rate window, and for a held run until its next probe.
 */
export function cycleCapacity(run: RunState, now: number): number {
  if (run.status === "held") {
    const { beginAt } = cycleStart(run, now);
    return run.hold && run.hold.nextProbeAt !== null && beginAt >= run.hold.nextProbeAt ? 1 : 0;
  }
  return position(run, now).count;
}

/**
 * The span the next cycle plans fresh ranges from: the current one (`[floor, cursor]`), or, once the
 * cursor is below its floor, the first span `extend` queued (`taken`). Documents of earlier versions
 * (no `floor`, no `spans`) have one span, `[minId, cursor]`.
 */
export function currentSpan(run: Pick<RunState, "cursor" | "minId"> & Partial<Pick<RunState, "floor" | "spans">>): { cursor: bigint; floor: bigint; taken: boolean } {
  const cursor = BigInt(run.cursor);
  const floor = BigInt(run.floor ?? run.minId);
  const next = run.spans?.[0];
  if (cursor < floor && next !== undefined) return { cursor: BigInt(next.endId), floor: BigInt(next.beginId), taken: true };
  return { cursor, floor, taken: false };
}

/** The ids of the run not planned yet, ascending: what is left of the current span, and the spans `extend` queued. */
export function unplannedRanges(run: Pick<RunState, "cursor" | "minId"> & Partial<Pick<RunState, "floor" | "spans">>): IdRange[] {
  const cursor = BigInt(run.cursor);
  const floor = BigInt(run.floor ?? run.minId);
  const out: IdRange[] = cursor >= floor ? [{ beginId: floor, endId: cursor }] : [];
  for (const span of run.spans ?? []) out.push({ beginId: BigInt(span.beginId), endId: BigInt(span.endId) });
  return out.sort((a, b) => (a.beginId < b.beginId ? -1 : a.beginId > b.beginId ? 1 : 0));
}

/** How many ids {@link unplannedRanges} holds. */
export function idsUnplanned(run: Pick<RunState, "cursor" | "minId"> & Partial<Pick<RunState, "floor" | "spans">>): bigint {
  return unplannedRanges(run).reduce((sum, r) => sum + (r.endId - r.beginId + 1n), 0n);
}

/** The batches a plan enqueues (requeued first, then fresh), with their ranges. */
export function planRanges(run: Pick<RunState, "minId">, plan: CyclePlan): Array<RangeEntry & { kind: "requeued" | "fresh" }> {
  return [
    ...plan.requeue.map((e) => ({ ...fromStored(e), cycle: plan.cycle, kind: "requeued" as const })),
    // The plan's own floor: a span `extend` adds after the plan was stored does not move it.
    ...[...descendingRanges(BigInt(plan.cursor), BigInt(plan.floor ?? run.minId), plan.batchSize, plan.fresh)].map((r) => ({
      ...r,
      cycle: plan.cycle,
      kind: "fresh" as const,
    })),
  ];
}

/**
 * Plans the next cycle of a running or held backfill: a pure function of the stored run,
 * the deferred ranges to enqueue again (highest first; give at least
 * {@link cycleCapacity} of them when there are that many) and the time.
 *
 * - The cycle starts at the run's `nextTickAt`, or `now` when the tick is more than
 *   {@link LATE_TICK_MS} late: a late cycle starts a new grid and releases one cycle of
 *   slots at the rate from now, never the missed ones.
 * - The rate is the one in force at the cycle's start; slots sit on the grid of that rate
 *   (see pacing.ts), so the long-run rate is exact.
 * - Deferred ranges take the first slots, fresh ranges below the cursor the rest.
 * - A held run plans a probe cycle: one batch (the next fresh range, else a deferred one)
 *   once its probe is due, none before; the next tick comes at the next probe time.
 *
 * Every field a repeat needs (run times, attempts, priority) is in the plan, so a crash
 * after it is stored repeats exactly the same jobs.
 *
 * @example
 * ```ts
 * const run = (await store.get("reencrypt"))!.value as RunState;
 * const plan = planCycle(run, await store.listDeferred(run.name, run.runId, cycleCapacity(run, Date.now())), Date.now());
 * cycleJobs(run, plan).batches.length; // e.g. 6: three at :59 and three at :00 for 3/s over 2 s
 * ```
 */
export function planCycle(run: RunState, requeue: readonly RangeEntry[], now: number, options: CycleOptions = {}): CyclePlan {
  if (run.status !== "running" && run.status !== "held" && run.status !== "paused") {
    throw new SuperSpreaderError("INVALID_STATE", `backfill "${run.name}" is ${run.status}: only a running, held or paused run has a next cycle`);
  }
  if (!Number.isFinite(now)) throw new SuperSpreaderError("INVALID_ARGUMENT", `now must be epoch ms, got ${describeValue(now)}`, { field: "now" });
  // The batch size and rates the closed loop put in force (the config's without it): part of the stored plan.
  const config = effectiveConfig(run);
  // A cycle plans fresh ranges from one span; one that finds the current span exhausted takes the next.
  const span = currentSpan(run);
  const cursor = span.cursor;
  const minId = span.floor;
  const common = {
    cycle: run.cycle,
    batchSize: config.batchSize,
    cursor: cursor.toString(),
    floor: minId.toString(),
    ...(span.taken ? { spanTaken: true } : {}),
    spreadWithinSecond: config.spreadWithinSecond,
    priority: config.priority ?? DEFAULT_BATCH_PRIORITY,
    maxAttempts: config.maxAttempts,
    tickAttempts: options.tickAttempts ?? 25,
  };

  if (run.status === "held") {
    const { beginAt, late } = cycleStart(run, now);
    const hold = run.hold;
    const due = hold !== null && hold.nextProbeAt !== null && beginAt >= hold.nextProbeAt;
    const freshProbe = due && cursor >= minId;
    const requeued = due && !freshProbe ? requeue.slice(0, 1) : [];
    const probes = (hold?.probes ?? 0) + (due ? 1 : 0);
    const nextTickAt = due ? beginAt + probeIntervalMs(run, probes) : (hold?.nextProbeAt ?? beginAt + probeIntervalMs(run, 0));
    const fresh = freshProbe ? [...descendingRanges(cursor, minId, config.batchSize, 1)] : [];
    return {
      ...common,
      kind: "probe",
      beginAt,
      late,
      perSecond: "1",
      onPeak: rateAt(config, beginAt).onPeak,
      origin: beginAt,
      firstSlot: 0,
      slots: fresh.length + requeued.length,
      fresh: fresh.length,
      nextCursor: fresh[0] ? (fresh[0].beginId - 1n).toString() : common.cursor,
      requeue: requeued.map(toStored),
      nextTickAt,
      pace: null,
    };
  }

  const at = position(run, now);
  const requeued = requeue.slice(0, at.count);
  const fresh = [...descendingRanges(cursor, minId, config.batchSize, at.count - requeued.length)];
  const last = fresh[fresh.length - 1];
  const batches = requeued.length + fresh.length;
  const pace: StoredPace = {
    origin: at.grid.origin,
    perSecond: at.rate.perSecondExact,
    spreadWithinSecond: config.spreadWithinSecond,
    duration: config.duration,
    tick: at.tick + 1,
    ...(at.grid.shift ? { shift: at.grid.shift } : {}),
    lastSlotAt: batches > 0 ? slotAt(at.grid, at.first + batches - 1) : (run.pace?.lastSlotAt ?? null),
  };
  return {
    ...common,
    kind: "work",
    beginAt: at.beginAt,
    late: at.late,
    perSecond: at.rate.perSecondExact,
    onPeak: at.rate.onPeak,
    origin: at.grid.origin,
    ...(at.grid.shift ? { shift: at.grid.shift } : {}),
    firstSlot: at.first,
    slots: at.count,
    fresh: fresh.length,
    nextCursor: last ? (last.beginId - 1n).toString() : common.cursor,
    requeue: requeued.map(toStored),
    nextTickAt: at.nextStart,
    pace,
  };
}

/** A plan's jobs: the batches (with the outstanding entries recorded before they are enqueued) and the next tick. */
export interface CycleJobs {
  readonly batches: QueueJob[];
  /** One per batch, in the same order. */
  readonly outstanding: OutstandingEntry[];
  readonly tick: QueueJob;
}

/**
 * The jobs of a stored plan: its batches at their slot times, then the tick of the next
 * cycle. Deterministic: the same run and plan give the same jobs (ids, run times, attempts,
 * priorities), which is what makes a repeated enqueue after a crash a no-op.
 *
 * @example
 * ```ts
 * const { batches, tick } = cycleJobs(run, plan);
 * await queue.enqueue([...batches, tick]);
 * ```
 */
export function cycleJobs(run: RunState, plan: CyclePlan, options: CycleOptions = {}): CycleJobs {
  const grid: Grid = {
    origin: plan.origin,
    rate: toRational(Number(plan.perSecond), "perSecond"),
    duration: toRational(run.config.duration, "duration"),
    spreadWithinSecond: plan.spreadWithinSecond,
    shift: plan.shift ?? 0,
  };
  const reconcileAfterMs = options.reconcileAfterMs ?? 60_000;
  const batches: QueueJob[] = [];
  const outstanding: OutstandingEntry[] = [];
  planRanges(run, plan).forEach((range, k) => {
    const runAt = slotAt(grid, plan.firstSlot + k);
    batches.push({
      id: batchJobId(run.name, run.runId, plan.cycle, range),
      runAt,
      attempts: plan.maxAttempts,
      ...(plan.priority === null ? {} : { priority: plan.priority }),
      data: {
        kind: "batch",
        backfill: run.name,
        runId: run.runId,
        cycle: plan.cycle,
        beginId: range.beginId.toString(),
        endId: range.endId.toString(),
        scheduledAt: runAt,
        ...(plan.kind === "probe" ? { probe: true } : {}),
      },
    });
    outstanding.push({ beginId: range.beginId, endId: range.endId, cycle: plan.cycle, checkAt: runAt + reconcileAfterMs });
  });
  return { batches, outstanding, tick: tickJob(run, plan.cycle + 1, run.epoch, plan.nextTickAt, plan.tickAttempts ?? options.tickAttempts ?? 25) };
}

/** The tick job of `cycle` in generation `epoch`, due at `at`. */
export function tickJob(run: Pick<RunState, "name" | "runId">, cycle: number, epoch: number, at: number, attempts: number): QueueJob {
  return {
    id: tickJobId(run.name, run.runId, cycle, epoch),
    runAt: at,
    attempts,
    priority: TICK_PRIORITY,
    data: { kind: "tick", backfill: run.name, runId: run.runId, cycle, epoch, scheduledAt: at },
  };
}

/** The hold state after a probe cycle (what the tick stores with the plan's finalisation). */
export function holdAfter(run: RunState, plan: CyclePlan): HoldState | null {
  if (plan.kind !== "probe" || run.hold === null) return run.hold;
  const sent = plan.slots > 0;
  return { ...run.hold, probes: run.hold.probes + (sent ? 1 : 0), nextProbeAt: plan.nextTickAt };
}
