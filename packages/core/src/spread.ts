import { SuperSpreaderError, describeValue } from "./errors.js";
import { parseId, type IdLike } from "./ids.js";
import { cycleSlots, slotAt, type Grid } from "./pacing.js";
import { toRational, type Rational } from "./rational.js";

/** Options of {@link spread}. */
export interface SpreadOptions {
  /** The highest id of this cycle: the first batch ends here. */
  initialId: IdLike;
  /** Ids per batch (a positive integer). */
  batchSize: number;
  /** Batches per second; decimals such as 7.5 or 0.3 are exact. 0 plans nothing. */
  perSecond: number;
  /** Seconds of work in the cycle (> 0); decimals allowed. */
  duration: number;
  /** When the cycle starts: batch k runs at `beginAt + floor(k / perSecond)` seconds. */
  beginAt: Date | number;
  /**
   * The lowest id; ranges never go below it.
   * @default 1
   */
  minId?: IdLike;
  /**
   * Spread run times evenly inside each second (batch k at `beginAt + floor(k * 1000 / perSecond)` ms)
   * instead of starting all of a second's batches on the whole second.
   * @default false
   */
  spreadWithinSecond?: boolean;
}

/** One planned batch: an inclusive id range and when it runs. */
export interface SpreadBatch {
  readonly beginId: bigint;
  readonly endId: bigint;
  readonly runAt: Date;
}

/**
 * Consecutive ranges of `batchSize` ids going down from `endId`, clamped at `minId`,
 * at most `count` of them.
 */
export function* descendingRanges(endId: bigint, minId: bigint, batchSize: number, count: number): Generator<{ beginId: bigint; endId: bigint }> {
  const size = BigInt(batchSize);
  let end = endId;
  for (let k = 0; k < count && end >= minId; k++) {
    const begin = end - size + 1n > minId ? end - size + 1n : minId;
    yield { beginId: begin, endId: end };
    end = begin - 1n;
  }
}

export function checkBatchSize(value: unknown, field = "batchSize"): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new SuperSpreaderError("INVALID_CONFIG", `${field} must be a whole number ≥ 1, got ${describeValue(value)}`, { field });
  }
  return value;
}

export function checkDuration(value: unknown, field = "duration"): Rational {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new SuperSpreaderError("INVALID_CONFIG", `${field} must be a finite number of seconds > 0, got ${describeValue(value)}`, { field });
  }
  return toRational(value, field);
}

function toMs(value: Date | number, field: string): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${field} must be a valid Date or epoch-ms number, got ${describeValue(value)}`, { field });
  }
  return ms;
}

/**
 * Plans one cycle, the first of a run: the batches, highest ids first, each an inclusive
 * range of `batchSize` ids (the last one clamped at `minId`), contiguous, with batch k at
 * `beginAt + floor(k / perSecond)` seconds. The cycle holds the slots that run before
 * `beginAt + duration`: `ceil(duration × perSecond)` for whole-second durations (in
 * whole-second mode a fractional duration rounds up to the seconds it touches), or fewer
 * when ids run out. The next cycle starts at `beginAt + duration` with the id below the
 * last batch's `beginId`; later cycles continue the same slot grid (see `planCycle`), so
 * the rate over many cycles is exactly `perSecond`.
 *
 * @example
 * ```ts
 * // The README example: 6 batches, 3 at 22:51:59 and 3 at 22:52:00.
 * const batches = spread({
 *   initialId: 100_000_000n, batchSize: 100, perSecond: 3, duration: 2,
 *   beginAt: new Date("2020-11-16T22:51:59Z"),
 * });
 * batches[0]; // { beginId: 99999901n, endId: 100000000n, runAt: 2020-11-16T22:51:59.000Z }
 * ```
 */
export function spread(options: SpreadOptions): SpreadBatch[] {
  const initialId = parseId(options.initialId, "initialId");
  const minId = options.minId === undefined ? 1n : parseId(options.minId, "minId");
  const batchSize = checkBatchSize(options.batchSize);
  const duration = checkDuration(options.duration);
  const rate = toRational(options.perSecond, "perSecond");
  const beginAtMs = toMs(options.beginAt, "beginAt");
  if (options.spreadWithinSecond !== undefined && typeof options.spreadWithinSecond !== "boolean") {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `spreadWithinSecond must be a boolean, got ${describeValue(options.spreadWithinSecond)}`, {
      field: "spreadWithinSecond",
    });
  }
  if (rate.num === 0n) return [];
  // The first cycle of a grid at beginAt: exactly the cycle the scheduler plans when a run starts.
  const grid: Grid = { origin: beginAtMs, rate, duration, spreadWithinSecond: options.spreadWithinSecond ?? false };
  const batches: SpreadBatch[] = [];
  let k = 0;
  for (const range of descendingRanges(initialId, minId, batchSize, cycleSlots(grid, 0).count)) {
    batches.push({ ...range, runAt: new Date(slotAt(grid, k++)) });
  }
  return batches;
}
