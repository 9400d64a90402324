import { IANAZone } from "luxon";
import { validateStoredConfig, type BackfillConfig, type BackfillConfigInput, type RateAt } from "./config.js";
import { formatRational, toRational } from "./rational.js";
import { gridAt } from "./cycle.js";
import type { StoredPace } from "./doc.js";
import { cycleOffsetMs, firstCycleAtOrAfter, lastSlotBefore, slotOfBatch, slotsBefore } from "./pacing.js";
import { SuperSpreaderError, describeValue } from "./errors.js";
import { parseId, type IdLike } from "./ids.js";
import type { IdRange } from "./ports.js";
import type { PeakSchedule } from "./peak.js";
import { checkDuration } from "./spread.js";

const HOUR = 3_600_000;
const DAY = 86_400_000;
const WEEK = 7 * DAY;
/** How far ahead the calendar is walked cycle run by cycle run; a finish beyond it is extrapolated. */
const HORIZON_MS = Math.round(100 * 365.2425 * DAY);
/** A window pattern unchanged for this long never changes (every window is on, or none starts). */
const STEADY_MS = 8 * DAY;

/** Options of {@link estimate}. */
export interface EstimateOptions {
  /** The backfill's configuration (validated again here, so a stored or hand-written one both work). */
  config: BackfillConfig | BackfillConfigInput;
  /**
   * When the next cycle starts (Date or epoch ms): the status's `nextTickAt`, or now when the tick is late,
   * since a late tick starts its cycle when it runs.
   */
  from: Date | number;
  /** Fresh ids not planned yet: `cursor - minId + 1`, or 0 once the cursor is below `minId`. */
  idsRemaining: IdLike;
  /**
   * Ranges the next cycles enqueue again before fresh ones (the deferred ranges). Each takes one batch slot.
   * @default []
   */
  requeued?: readonly IdRange[];
  /**
   * Ids per second seen recently (see {@link observedRate}); gives the second estimate, `observedFinishAt`.
   * @default null
   */
  observed?: number | null;
  /**
   * The slot grid the next cycle continues (a run's stored pace), so the estimate lands on the very slots the
   * scheduler will use. Without it the walk starts a new grid at `from`, as a late or first cycle does.
   * @default null
   */
  grid?: StoredPace | null;
}

/** What {@link estimate} returns. Times are epoch ms. */
export interface Estimate {
  /**
   * When the last remaining batch is due to run, if every tick runs on time: `from` when nothing remains,
   * null when no cycle will ever plan a batch (every rate is 0, or no cycle starts inside a window whose rate
   * is above 0). Batches still in flight are not counted; add their processing time yourself.
   */
  readonly finishAt: number | null;
  /** Cycles from `from` up to and including the one that plans the last batch; 0 when nothing remains, null with `finishAt`. */
  readonly cyclesRemaining: number | null;
  /** Batch slots left: `ceil(idsRemaining / batchSize)` fresh batches plus one per requeued range. */
  readonly batchesRemaining: bigint;
  /** Ids those batches cover: `idsRemaining` plus the requeued ranges' ids. */
  readonly idsRemaining: bigint;
  /**
   * True when the finish lies more than 100 years after `from`: the calendar was walked for 100 years and the
   * rest extrapolated from that walk's average pace (exact to within a fraction of a week per century).
   */
  readonly extrapolated: boolean;
  /** `from` plus the remaining ids at the observed pace; null without an observation or when it is 0. */
  readonly observedFinishAt: number | null;
}

/** Options of {@link observedRate}. */
export interface ObservedRateOptions {
  /**
   * Minutes of buckets to average over, 1 to 60 (runs keep the last 60).
   * @default 15
   */
  windowMinutes?: number;
  /**
   * When the run started (epoch ms): a run younger than the window is measured from its start, not from
   * the beginning of its first minute bucket.
   * @default null (from the first bucket's minute)
   */
  startedAt?: number | null;
}

/** When the on/off-peak window changes next, and to what. */
export interface WindowChange {
  /** The first instant (epoch ms) of the new window. */
  readonly at: number;
  /** Whether that instant is on peak. */
  readonly onPeak: boolean;
}

/* ------------------------------------------------------------ the calendar */

/** Hour of day from ms since local midnight, computed exactly as `onPeakIn` computes it from luxon's fields. */
function hourOfDay(ms: number): number {
  const hour = Math.floor(ms / HOUR);
  const minute = Math.floor((ms % HOUR) / 60_000);
  const second = Math.floor((ms % 60_000) / 1000);
  const millisecond = ms % 1000;
  return hour + minute / 60 + second / 3600 + millisecond / 3_600_000;
}

/**
 * The first ms of a local day whose hour of day reaches `hours`, with the same floating-point comparison
 * `onPeakIn` makes, so a window edge such as 17.1 h lands on the very millisecond the runtime switches.
 */
function edgeMs(hours: number): number {
  let ms = Math.min(DAY, Math.max(0, Math.round(hours * HOUR)));
  while (ms > 0 && hourOfDay(ms - 1) >= hours) ms--;
  while (ms < DAY && hourOfDay(ms) < hours) ms++;
  return ms;
}

/** ISO weekday (1 = Monday) of a day counted from 1970-01-01, which was a Thursday. */
const weekdayOf = (day: number): number => ((((day % 7) + 7 + 3) % 7) + 1);

/**
 * A peak schedule compiled for walking: `onPeak(localMs)` mirrors `onPeakIn` on the zone's wall clock, and
 * `edges` are the ms of a local day where its value may change.
 */
interface Calendar {
  readonly zone: IANAZone;
  readonly edges: readonly number[];
  onPeak(localMs: number): boolean;
}

function compile(schedule: PeakSchedule): Calendar {
  const windows = schedule.windows.map(({ days, hours: [begin, end] }) => ({ days: new Set(days), begin, end }));
  const edges = new Set<number>([0]);
  for (const { begin, end } of windows) for (const h of [begin, end]) edges.add(edgeMs(h) % DAY);
  return {
    zone: IANAZone.create(schedule.timezone),
    edges: [...edges].sort((a, b) => a - b),
    onPeak(localMs) {
      const day = Math.floor(localMs / DAY);
      const hod = hourOfDay(localMs - day * DAY);
      const today = weekdayOf(day);
      const yesterday = today === 1 ? 7 : today - 1;
      return windows.some(({ days, begin, end }) =>
        begin < end ? days.has(today) && hod >= begin && hod < end : (days.has(today) && hod >= begin) || (days.has(yesterday) && hod < end),
      );
    },
  };
}

/**
 * The zone's UTC offset around an instant, as a span `[start, end)` over which it is constant. Found by
 * probing a week at a time and bisecting to the millisecond, on the assumption (true of every zone's future
 * rules) that no offset changes twice within a week. Spans are cached: the walk moves forward.
 */
function offsetTracker(zone: IANAZone) {
  const offsetMs = (t: number) => Math.round(zone.offset(t) * 60_000);
  // Spans found are kept per zone for the process (they never change): estimates over the same weeks,
  // such as a deadline's search through dozens of rates, find them again without asking luxon.
  let spans = SPANS.get(zone.name);
  if (!spans) {
    if (SPANS.size >= 64) SPANS.clear();
    spans = [];
    SPANS.set(zone.name, spans);
  }
  const known = spans;
  let start = 0;
  let end = 0;
  let offset = 0;
  return (t: number): { offset: number; end: number } => {
    if (t >= start && t < end) return { offset, end };
    const hit = known.find((s) => t >= s.start && t < s.end);
    if (hit) {
      ({ start, end, offset } = hit);
      return { offset, end };
    }
    offset = offsetMs(t);
    start = t;
    let lo = t;
    let hi = t;
    for (let week = 0; week < 53; week++) {
      hi = lo + WEEK;
      if (offsetMs(hi) !== offset) break;
      lo = hi;
    }
    if (hi === lo) {
      end = lo; // no change in a year: constant up to here, look again from there
    } else {
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (offsetMs(mid) === offset) lo = mid;
        else hi = mid;
      }
      end = hi;
    }
    if (known.length >= 4_096) known.length = 0;
    known.push({ start, end, offset });
    return { offset, end };
  };
}

/** Offset spans found so far, by zone name. */
const SPANS = new Map<string, Array<{ start: number; end: number; offset: number }>>();

/**
 * Splits time into stretches of one window: `at(t)` says whether `t` is on peak and until when (exclusive)
 * that holds at least; `end` may stop short at an offset change or after {@link STEADY_MS}, never late.
 */
function windowWalker(schedule: PeakSchedule | null): (t: number) => { onPeak: boolean; end: number } {
  if (schedule === null) return () => ({ onPeak: false, end: Number.POSITIVE_INFINITY });
  const calendar = compile(schedule);
  const offsets = offsetTracker(calendar.zone);
  const { edges } = calendar;
  return (t) => {
    const span = offsets(t);
    const local = t + span.offset;
    const onPeak = calendar.onPeak(local);
    let day = Math.floor(local / DAY);
    let i = edges.findIndex((e) => day * DAY + e > local);
    if (i < 0) {
      day++;
      i = 0;
    }
    for (;;) {
      const edgeLocal = day * DAY + (edges[i] as number);
      const edge = edgeLocal - span.offset;
      if (edge >= span.end) return { onPeak, end: span.end };
      if (calendar.onPeak(edgeLocal) !== onPeak || edgeLocal - local >= STEADY_MS) return { onPeak, end: edge };
      if (++i === edges.length) {
        day++;
        i = 0;
      }
    }
  };
}

/* ---------------------------------------------------------------- checks */

function toMs(value: unknown, field: string): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${field} must be a valid Date or epoch-ms number, got ${describeValue(value)}`, { field });
  }
  return ms;
}

function checkRanges(value: unknown, field: string): readonly IdRange[] {
  if (!Array.isArray(value)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${field} must be an array of { beginId, endId } ranges, got ${describeValue(value)}`, { field });
  }
  value.forEach((range: Partial<IdRange> | null, i) => {
    if (typeof range?.beginId !== "bigint" || typeof range.endId !== "bigint" || range.beginId < 0n || range.endId < range.beginId) {
      throw new SuperSpreaderError("INVALID_ARGUMENT", `${field}[${i}] must have bigint ids with 0 ≤ beginId ≤ endId, got ${describeValue(range)}`, {
        field: `${field}[${i}]`,
      });
    }
  });
  return value as readonly IdRange[];
}

/* ------------------------------------------------------------------- API */

/**
 * Estimates when a backfill finishes by walking its remaining batches through the peak calendar the way the
 * scheduler will: cycles start every `duration` seconds from `from`, each at the rate in force when it starts
 * (on or off peak, 0 in a zero-rate window, following the zone's daylight saving time), and plan the slots of
 * their rate's grid that fall inside them, so a window holds `rate × its length` batches within one. Runs of
 * cycles in one window are jumped over arithmetically, so billions of cycles cost no more than a few thousand
 * windows. Exact, given ticks that run on time.
 *
 * @example
 * ```ts
 * const status = await spreader.status("reencrypt-messages");
 * const { deferred } = await spreader.audit("reencrypt-messages");
 * const eta = estimate({
 *   config: status.config,
 *   from: Math.max(status.nextTickAt, Date.now()),
 *   idsRemaining: status.cursor >= status.minId ? status.cursor - status.minId + 1n : 0n,
 *   requeued: deferred,
 *   observed: observedRate(status.metrics, Date.now()),
 * });
 * eta.finishAt; // e.g. 1794960000000 (2026-11-18T00:00:00Z)
 * ```
 */
export function estimate(options: EstimateOptions): Estimate {
  if (typeof options !== "object" || options === null) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `options must be { config, from, idsRemaining }, got ${describeValue(options)}`, { field: "options" });
  }
  const config = validateStoredConfig(options.config);
  const from = toMs(options.from, "from");
  const fresh = parseId(options.idsRemaining, "idsRemaining");
  const requeued = checkRanges(options.requeued ?? [], "requeued");
  const observed = options.observed ?? null;
  if (observed !== null && (typeof observed !== "number" || !Number.isFinite(observed) || observed < 0)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `observed must be ids per second (a finite number ≥ 0) or null, got ${describeValue(observed)}`, {
      field: "observed",
    });
  }
  const size = BigInt(config.batchSize);
  const idsRemaining = requeued.reduce((sum, r) => sum + r.endId - r.beginId + 1n, fresh);
  const batchesRemaining = (fresh + size - 1n) / size + BigInt(requeued.length);
  const observedFinishAt = observed === null || observed === 0 ? null : from + Math.ceil((Number(idsRemaining) / observed) * 1000);
  return { ...walk(config, from, batchesRemaining, options.grid ?? null), batchesRemaining, idsRemaining, observedFinishAt };
}

/**
 * When the last of `batchesRemaining` batches runs, for a validated config (what {@link estimate} does after
 * checking its options; the deadline search calls it for many rates).
 */
export function walk(config: BackfillConfig, from: number, batchesRemaining: bigint, pace: StoredPace | null): Pick<Estimate, "finishAt" | "cyclesRemaining" | "extrapolated"> {
  const result = {};
  if (batchesRemaining === 0n) return { ...result, finishAt: from, cyclesRemaining: 0, extrapolated: false };
  const never = { ...result, finishAt: null, cyclesRemaining: null, extrapolated: false };

  checkDuration(config.duration);
  const rates = [config.perSecondOffPeak, config.perSecondOnPeak];
  if (rates.every((r) => r === 0)) return never;
  const windows = windowWalker(config.peak);

  // Walk the calendar a window at a time, cutting cycles and slots on the same grids the
  // planner uses (cycle.ts, pacing.ts): a window's cycles continue one grid, the first cycle
  // of a new window starts a new grid on the old one's cycle boundary.
  let left = batchesRemaining;
  let cycles = 0;
  let t = from;
  const rateIn = (onPeak: boolean): RateAt => {
    const perSecond = onPeak ? config.perSecondOnPeak : config.perSecondOffPeak;
    return { perSecond, perSecondExact: formatRational(toRational(perSecond, "perSecond")), onPeak };
  };
  let { grid, tick, rate } = gridAt(config, pace, from, false, rateIn(windows(from).onPeak));
  let lastSlotAt = pace?.lastSlotAt ?? null;
  while (t - from < HORIZON_MS) {
    const window = windows(t);
    // Cycles of this grid starting in [t, window.end): all of them run at this window's rate.
    const endTick = window.end === Number.POSITIVE_INFINITY ? null : Math.max(tick + 1, firstCycleAtOrAfter(grid, window.end));
    const first = slotsBefore(grid, cycleOffsetMs(grid, tick));
    const available = endTick === null ? null : slotsBefore(grid, cycleOffsetMs(grid, endTick)) - first;
    if (grid.rate.num > 0n && (available === null || left <= BigInt(available))) {
      const last = slotOfBatch(grid, first, Number(left));
      return { ...result, finishAt: last.at, cyclesRemaining: cycles + (last.cycle - tick) + 1, extrapolated: false };
    }
    if (endTick === null) return never;
    left -= BigInt(available ?? 0);
    cycles += endTick - tick;
    t = grid.origin + cycleOffsetMs(grid, endTick);
    // The planner goes on with the same grid when the rate did not change (a window edge that
    // only moved the walk, such as a daylight-saving change), and starts a new one when it did.
    lastSlotAt = lastSlotBefore(grid, endTick) ?? lastSlotAt;
    const next: StoredPace = { origin: grid.origin, perSecond: rate.perSecondExact, spreadWithinSecond: config.spreadWithinSecond, duration: config.duration, tick: endTick, shift: grid.shift ?? 0, lastSlotAt };
    ({ grid, tick, rate } = gridAt(config, next, t, false, rateIn(windows(t).onPeak)));
  }
  const consumed = batchesRemaining - left;
  if (consumed === 0n) return never;
  const restMs = Number((left * BigInt(t - from) + consumed - 1n) / consumed);
  const durationMs = Math.max(1, Math.round(config.duration * 1000));
  return { ...result, finishAt: t + restMs, cyclesRemaining: cycles + Math.ceil(restMs / durationMs), extrapolated: true };
}

/**
 * Ids per second finished recently, from a run's per-minute buckets (`status.metrics.recent`): the ids of
 * the buckets in the last `windowMinutes`, over the time since the first of them (or since `startedAt`, when
 * later). Null when nothing finished in that window.
 *
 * @example
 * ```ts
 * const status = await spreader.status("reencrypt-messages");
 * observedRate(status.metrics, Date.now(), { startedAt: status.startedAt }); // e.g. 212.4
 * ```
 */
export function observedRate(metrics: { readonly recent: ReadonlyArray<{ readonly minute: number; readonly ids: string }> }, now: Date | number, options: ObservedRateOptions = {}): number | null {
  const nowMs = toMs(now, "now");
  const windowMinutes = options.windowMinutes ?? 15;
  if (!Number.isSafeInteger(windowMinutes) || windowMinutes < 1 || windowMinutes > 60) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `windowMinutes must be a whole number from 1 to 60, got ${describeValue(windowMinutes)}`, {
      field: "windowMinutes",
    });
  }
  const since = Math.floor(nowMs / 60_000) * 60_000 - windowMinutes * 60_000;
  const buckets = (metrics?.recent ?? []).filter((b) => b.minute >= since && b.minute <= nowMs);
  if (buckets.length === 0) return null;
  const first = Math.max(Math.min(...buckets.map((b) => b.minute)), options.startedAt ?? Number.NEGATIVE_INFINITY);
  const ids = buckets.reduce((sum, b) => sum + Number(b.ids), 0);
  return nowMs > first ? ids / ((nowMs - first) / 1000) : null;
}

/**
 * When the window changes next after `at` (off peak to on peak or back), following the zone's daylight saving
 * time. Null when it never changes: no peak schedule, or windows covering the whole week.
 *
 * @example
 * ```ts
 * const next = nextWindowChange(status.config, Date.now());
 * // { at: 1795438800000, onPeak: true }: Monday 2026-11-23 05:00 in Los Angeles
 * ```
 */
export function nextWindowChange(config: BackfillConfig | BackfillConfigInput, at: Date | number): WindowChange | null {
  const valid = validateStoredConfig(config);
  const start = toMs(at, "at");
  const windows = windowWalker(valid.peak);
  const first = windows(start);
  let t = start;
  let window = first;
  // A week with no change is a week in which every window is on or none is.
  while (window.end - start <= 2 * WEEK) {
    t = window.end;
    window = windows(t);
    if (window.onPeak !== first.onPeak) return { at: t, onPeak: window.onPeak };
  }
  return null;
}

/** The window in force at an instant and the next change, as {@link rateWindow} reports it. */
export interface RateWindow {
  readonly onPeak: boolean;
  /** Batches per second in force. */
  readonly perSecond: number;
  /** When the window changes next, to what, and the rate then; null when it never changes. */
  readonly next: { readonly at: number; readonly onPeak: boolean; readonly perSecond: number } | null;
}

/**
 * The rate in force at `at`, and when and to what it changes next (through the peak calendar,
 * daylight saving time included). What status pages show as "off peak (7.5/s) until Mon 05:00, then 3/s".
 *
 * @example
 * ```ts
 * rateWindow(status.config, Date.now());
 * // { onPeak: false, perSecond: 7.5, next: { at: 1795438800000, onPeak: true, perSecond: 3 } }
 * ```
 */
export function rateWindow(config: BackfillConfig | BackfillConfigInput, at: Date | number): RateWindow {
  const valid = validateStoredConfig(config);
  const start = toMs(at, "at");
  const onPeak = valid.peak !== null && windowWalker(valid.peak)(start).onPeak;
  const rate = (peak: boolean) => (peak ? valid.perSecondOnPeak : valid.perSecondOffPeak);
  const change = nextWindowChange(valid, start);
  return { onPeak, perSecond: rate(onPeak), next: change && { at: change.at, onPeak: change.onPeak, perSecond: rate(change.onPeak) } };
}
