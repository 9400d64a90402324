import type { Rational } from "./rational.js";

/*
 * The slot grid. While the rate stays the same, batches sit on one grid that starts at
 * `origin`: slot j runs at `origin + floor(j / rate)` seconds (whole-second mode) or
 * `origin + floor(j * 1000 / rate)` ms (spread mode), and cycle i of the grid starts at
 * `origin + floor(i * duration)` and plans exactly the slots whose run time falls before the
 * next cycle's start. So the batches started over any window are `rate × window` within one,
 * whatever `duration × rate` is: the fraction is carried by the grid instead of being rounded
 * up every cycle. A new grid starts when the rate, the spread mode or the duration changes,
 * and when a tick runs late (it starts its cycle when it runs, without catching up).
 *
 * All of it is integer arithmetic on exact fractions, so nothing drifts.
 */

/** A grid: where it starts and how fast slots and cycles come. */
export interface Grid {
  /** Epoch ms of slot 0 and of cycle 0. */
  readonly origin: number;
  /** Batches per second, exact. */
  readonly rate: Rational;
  /** Cycle length in seconds, exact. */
  readonly duration: Rational;
  readonly spreadWithinSecond: boolean;
  /**
   * Ms from the origin to slot 0 (default 0). A grid that replaces another mid-run (a new rate) is
   * shifted so that its first slot comes no sooner after the old grid's last one than its own spacing:
   * a rate that changes every cycle then never releases an extra batch at each change.
   */
  readonly shift?: number;
}

const floorDiv = (n: bigint, d: bigint): bigint => n / d; // operands are never negative here
const ceilDiv = (n: bigint, d: bigint): bigint => (n + d - 1n) / d;

/** Ms from the grid's origin to the start of its cycle `i`: `floor(i × duration × 1000)`. */
export function cycleOffsetMs(grid: Grid, i: number): number {
  return Number(floorDiv(BigInt(i) * grid.duration.num * 1000n, grid.duration.den));
}

/** Ms from the grid's origin to slot `j`. */
export function slotOffsetMs(grid: Grid, j: number): number {
  const { num, den } = grid.rate;
  const k = BigInt(j);
  return (grid.shift ?? 0) + Number(grid.spreadWithinSecond ? floorDiv(k * 1000n * den, num) : floorDiv(k * den, num) * 1000n);
}

/** How many slots run strictly before `offsetMs` after the origin (0 for a zero rate). */
export function slotsBefore(grid: Grid, offsetMs: number): number {
  const { num, den } = grid.rate;
  const shifted = offsetMs - (grid.shift ?? 0);
  if (num === 0n || shifted <= 0) return 0;
  const delta = BigInt(Math.ceil(shifted));
  // floor(j·1000·den/num) < Δ  ⇔  j < Δ·num / (1000·den)
  if (grid.spreadWithinSecond) return Number(ceilDiv(delta * num, 1000n * den));
  // floor(j·den/num)·1000 < Δ  ⇔  floor(j·den/num) < ceil(Δ/1000) =: S  ⇔  j < S·num/den
  const seconds = ceilDiv(delta, 1000n);
  return Number(ceilDiv(seconds * num, den));
}

/** The slots of cycle `i`: `[first, first + count)`, and when the cycle after it starts (epoch ms). */
export function cycleSlots(grid: Grid, i: number): { first: number; count: number; nextStart: number } {
  const startMs = cycleOffsetMs(grid, i);
  const nextMs = cycleOffsetMs(grid, i + 1);
  const first = slotsBefore(grid, startMs);
  return { first, count: slotsBefore(grid, nextMs) - first, nextStart: grid.origin + nextMs };
}

/** Run time (epoch ms) of slot `j` of the grid. */
export function slotAt(grid: Grid, j: number): number {
  return grid.origin + slotOffsetMs(grid, j);
}

/**
 * The first cycle of the grid that starts at or after `t` (epoch ms): the smallest `i` with
 * `origin + floor(i × duration × 1000) >= t`.
 */
export function firstCycleAtOrAfter(grid: Grid, t: number): number {
  const delta = t - grid.origin;
  if (delta <= 0) return 0;
  const { num, den } = grid.duration;
  // floor(i·num·1000/den) >= Δ  ⇔  i·num·1000/den >= Δ (Δ is a whole number of ms)  ⇔  i >= Δ·den/(num·1000)
  const d = BigInt(Math.ceil(delta));
  return Number(ceilDiv(d * den, num * 1000n));
}

/**
 * The slot holding the `n`-th batch (1-based) counted from slot `from`, and the cycle that plans it.
 */
export function slotOfBatch(grid: Grid, from: number, n: number): { slot: number; at: number; cycle: number } {
  const slot = from + n - 1;
  const at = slotAt(grid, slot);
  // The cycle whose window [start_i, start_{i+1}) holds the slot's run time.
  let cycle = Math.max(0, firstCycleAtOrAfter(grid, at + 1) - 1);
  while (cycleOffsetMs(grid, cycle) + grid.origin > at) cycle--;
  return { slot, at, cycle };
}

/** The spacing (ms) of a grid's slots: 1/rate, or a second in whole-second mode at 1/s or more. */
function spacingMs(grid: Pick<Grid, "rate" | "spreadWithinSecond">): number {
  const { num, den } = grid.rate;
  return !grid.spreadWithinSecond && num >= den ? 1000 : Number((1000n * den + num - 1n) / num);
}

/**
 * The shift (ms) a new grid of `rate` starting at `origin` needs so that its first slot comes one
 * spacing of its rate (a second, in whole-second mode at a rate of 1/s or more) after the last batch
 * planned before it (`lastSlotAt`, epoch ms), and never before the origin. 0 at rate 0 or with no
 * batch before.
 */
export function shiftAfter(lastSlotAt: number | null, next: Pick<Grid, "rate" | "spreadWithinSecond">, origin: number): number {
  if (lastSlotAt === null || next.rate.num === 0n) return 0;
  return Math.max(0, lastSlotAt + spacingMs(next) - origin);
}

/** The run time of the last slot of `grid` before its cycle `tick`, or null when it has none. */
export function lastSlotBefore(grid: Grid, tick: number): number | null {
  const planned = slotsBefore(grid, cycleOffsetMs(grid, tick));
  return planned === 0 ? null : slotAt(grid, planned - 1);
}
