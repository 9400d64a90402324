import { SuperSpreaderError, describeValue } from "./errors.js";
import { onPeakIn, parsePeak, type PeakInput, type PeakSchedule } from "./peak.js";
import { ceilProduct, formatRational, toRational } from "./rational.js";
import { checkBatchSize, checkDuration } from "./spread.js";

/** Most batches one cycle may plan; a larger cycle is almost certainly a typo in duration or rate. */
export const MAX_BATCHES_PER_CYCLE = 100_000;

/** A backfill's configuration as written by users (in code, the CLI, or a stored update). */
export interface BackfillConfigInput {
  /** Ids per batch: each batch job gets an inclusive range of this many ids (a whole number ≥ 1). */
  batchSize: number;
  /** Seconds of work each scheduler cycle enqueues, and the time between cycles (> 0, decimals allowed). */
  duration: number;
  /** Batches per second while on peak (≥ 0, decimals such as 7.5 are exact; 0 = no work on peak). */
  perSecondOnPeak: number;
  /** Batches per second while off peak (≥ 0; 0 = no work off peak). */
  perSecondOffPeak: number;
  /**
   * On-peak windows. Without it, every instant is off peak.
   * @default null
   */
  peak?: PeakInput | PeakSchedule | null;
  /**
   * Runs of a batch's handler before its range is recorded as failed.
   * @default 3
   */
  maxAttempts?: number;
  /**
   * Queue priority of batch jobs, 1 (first) to 2,097,151 (last), on queues that have priorities.
   * @default null (the queue's default)
   */
  priority?: number | null;
  /**
   * Spread run times evenly within each second instead of starting a second's batches together.
   * @default false
   */
  spreadWithinSecond?: boolean;
}

/** A validated configuration: plain JSON, as stored. */
export interface BackfillConfig {
  readonly batchSize: number;
  readonly duration: number;
  readonly perSecondOnPeak: number;
  readonly perSecondOffPeak: number;
  readonly peak: PeakSchedule | null;
  readonly maxAttempts: number;
  readonly priority: number | null;
  readonly spreadWithinSecond: boolean;
}

const KEYS = ["batchSize", "duration", "perSecondOnPeak", "perSecondOffPeak", "peak", "maxAttempts", "priority", "spreadWithinSecond"];

function checkRate(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new SuperSpreaderError("INVALID_CONFIG", `${field} must be a finite number of batches per second ≥ 0, got ${describeValue(value)}`, {
      field,
    });
  }
  return value;
}

/**
 * Validates a configuration and returns its normal form. Throws `INVALID_CONFIG`
 * naming the first bad field and its value; nothing is written before this passes.
 *
 * @example
 * ```ts
 * const config = validateConfig({
 *   batchSize: 70, duration: 180, perSecondOnPeak: 3, perSecondOffPeak: 7.5,
 *   peak: { timezone: "America/Los_Angeles", days: "Mon-Fri", hours: [5, 17] },
 * });
 * ```
 */
export function validateConfig(input: unknown): BackfillConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new SuperSpreaderError("INVALID_CONFIG", `config must be an object, got ${describeValue(input)}`, { field: "config" });
  }
  const raw = input as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!KEYS.includes(key)) {
      throw new SuperSpreaderError("INVALID_CONFIG", `config.${key} is not a known field (expected one of ${KEYS.join(", ")})`, { field: key });
    }
  }
  const batchSize = checkBatchSize(raw.batchSize);
  const durationR = checkDuration(raw.duration);
  const perSecondOnPeak = checkRate(raw.perSecondOnPeak, "perSecondOnPeak");
  const perSecondOffPeak = checkRate(raw.perSecondOffPeak, "perSecondOffPeak");
  for (const field of ["perSecondOnPeak", "perSecondOffPeak"] as const) {
    const perCycle = ceilProduct(durationR, toRational(field === "perSecondOnPeak" ? perSecondOnPeak : perSecondOffPeak, field));
    if (perCycle > BigInt(MAX_BATCHES_PER_CYCLE)) {
      throw new SuperSpreaderError(
        "INVALID_CONFIG",
        `duration × ${field} plans ${perCycle} batches per cycle, more than ${MAX_BATCHES_PER_CYCLE}: shorten duration or raise batchSize`,
        { field },
      );
    }
  }
  const peak = raw.peak === undefined || raw.peak === null ? null : parsePeak(raw.peak);
  const maxAttempts = raw.maxAttempts ?? 3;
  if (typeof maxAttempts !== "number" || !Number.isSafeInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 1000) {
    throw new SuperSpreaderError("INVALID_CONFIG", `maxAttempts must be a whole number from 1 to 1000, got ${describeValue(maxAttempts)}`, {
      field: "maxAttempts",
    });
  }
  const priority = raw.priority ?? null;
  if (priority !== null && (typeof priority !== "number" || !Number.isSafeInteger(priority) || priority < 1 || priority > 2_097_151)) {
    throw new SuperSpreaderError("INVALID_CONFIG", `priority must be a whole number from 1 to 2097151 or null, got ${describeValue(priority)}`, {
      field: "priority",
    });
  }
  const spreadWithinSecond = raw.spreadWithinSecond ?? false;
  if (typeof spreadWithinSecond !== "boolean") {
    throw new SuperSpreaderError("INVALID_CONFIG", `spreadWithinSecond must be true or false, got ${describeValue(spreadWithinSecond)}`, {
      field: "spreadWithinSecond",
    });
  }
  return {
    batchSize,
    duration: raw.duration as number,
    perSecondOnPeak,
    perSecondOffPeak,
    peak,
    maxAttempts,
    priority: priority as number | null,
    spreadWithinSecond,
  };
}

/** The rate in force at an instant. */
export interface RateAt {
  /** Batches per second. */
  readonly perSecond: number;
  /** The same rate as an exact decimal string ("7.5"). */
  readonly perSecondExact: string;
  readonly onPeak: boolean;
}

/**
 * The rate a cycle starting at `at` uses: on-peak inside a peak window, off-peak otherwise.
 *
 * @example
 * ```ts
 * rateAt(config, new Date()).perSecond; // 3 on weekdays 05:00–17:00 in Los Angeles, else 7.5
 * ```
 */
export function rateAt(config: BackfillConfig, at: Date | number): RateAt {
  const onPeak = config.peak !== null && onPeakIn(config.peak, at);
  const perSecond = onPeak ? config.perSecondOnPeak : config.perSecondOffPeak;
  return { perSecond, perSecondExact: formatRational(toRational(perSecond, "perSecond")), onPeak };
}
