import { SuperSpreaderError, describeValue } from "./errors.js";
import { onPeakIn, parsePeak, type PeakInput, type PeakSchedule } from "./peak.js";
import { ceilProduct, formatRational, toRational } from "./rational.js";
import { checkBatchSize, checkDuration } from "./spread.js";
import { didYouMean } from "./suggest.js";

/** Most batches one cycle may plan; a larger cycle is almost certainly a typo in duration or rate. */
export const MAX_BATCHES_PER_CYCLE = 100_000;

/**
 * The shortest cycle (seconds). A cycle is a few state-store round trips and one enqueue;
 * shorter ones spend more time planning than the batches they plan, and below a millisecond
 * every cycle would start at the same instant.
 */
export const MIN_DURATION_SECONDS = 0.1;

/** Priority batch jobs get when the config sets none. Ticks always get priority 1, so they never wait behind batches. */
export const DEFAULT_BATCH_PRIORITY = 1_000;

/** When a burst of failures holds a run, and how it probes (see {@link BackfillConfigInput.hold}). */
export interface HoldPolicyInput {
  /**
   * Failed attempts in a row, with no range finished between them (across every worker), that hold the run.
   * @default 10
   */
  consecutiveFailures?: number;
  /**
   * Share of failed attempts among the attempts of the current and the previous minute that holds the run,
   * once `minAttempts` attempts were made in them (0 < errorRate ≤ 1).
   * @default 0.5
   */
  errorRate?: number;
  /** @default 20 */
  minAttempts?: number;
  /**
   * Seconds from the hold to the first probe (one batch); every failed probe doubles the wait.
   * @default 5
   */
  probeAfter?: number;
  /**
   * The longest wait between two probes (seconds).
   * @default 300
   */
  maxProbeInterval?: number;
}

/** A validated hold policy. */
export interface HoldPolicy {
  readonly consecutiveFailures: number;
  readonly errorRate: number;
  readonly minAttempts: number;
  readonly probeAfter: number;
  readonly maxProbeInterval: number;
}

const HOLD_DEFAULTS: HoldPolicy = { consecutiveFailures: 10, errorRate: 0.5, minAttempts: 20, probeAfter: 5, maxProbeInterval: 300 };

/** A backfill's configuration as written by users (in code, the CLI, or a stored update). */
export interface BackfillConfigInput {
  /** Ids per batch: each batch job gets an inclusive range of this many ids (a whole number ≥ 1). */
  batchSize: number;
  /**
   * Seconds of work each scheduler cycle enqueues, and the time between cycles (at least
   * {@link MIN_DURATION_SECONDS}, decimals allowed). Batches sit on one grid per rate, so the
   * long-run rate is exact whatever the product `duration × perSecond`.
   */
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
   * Queue priority of batch jobs, 1 (first) to 2,097,151 (last), on queues that have priorities:
   * orders this backfill's batches against other backfills' on the same queue. Ticks always get
   * priority 1, so a tick never waits behind batches (batches at 1 share it with them, in order
   * of run time). `null` means {@link DEFAULT_BATCH_PRIORITY}.
   * @default null
   */
  priority?: number | null;
  /**
   * Spread run times evenly within each second instead of starting a second's batches together.
   * @default false
   */
  spreadWithinSecond?: boolean;
  /**
   * Holds the run (status `held`, no attempts spent, batches deferred) when batches fail in a
   * burst — a database outage — then probes with one batch at a growing, capped interval and
   * resumes by itself when a probe succeeds. `false` turns it off.
   * @default { consecutiveFailures: 10, errorRate: 0.5, minAttempts: 20, probeAfter: 5, maxProbeInterval: 300 }
   */
  hold?: HoldPolicyInput | HoldPolicy | false;
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
  /** `null` when holds are off. */
  readonly hold: HoldPolicy | null;
}

const KEYS = [
  "batchSize",
  "duration",
  "perSecondOnPeak",
  "perSecondOffPeak",
  "peak",
  "maxAttempts",
  "priority",
  "spreadWithinSecond",
  "hold",
];
const HOLD_KEYS = Object.keys(HOLD_DEFAULTS);

function checkPositive(value: unknown, field: string, what: string, max = Number.POSITIVE_INFINITY): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new SuperSpreaderError("INVALID_CONFIG", `${field} must be ${what}, got ${describeValue(value)}`, { field });
  }
  return value;
}

function parseHold(value: unknown): HoldPolicy | null {
  if (value === false || value === null) return null;
  if (value === undefined || value === true) return HOLD_DEFAULTS;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new SuperSpreaderError("INVALID_CONFIG", `hold must be an object of thresholds or false, got ${describeValue(value)}`, { field: "hold" });
  }
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!HOLD_KEYS.includes(key)) {
      const hint = didYouMean(key, HOLD_KEYS);
      throw new SuperSpreaderError(
        "INVALID_CONFIG",
        `hold.${key} is not a known field${hint ? `: did you mean ${hint}?` : ""} (expected one of ${HOLD_KEYS.join(", ")})`,
        { field: `hold.${key}` },
      );
    }
  }
  const whole = (key: keyof HoldPolicy) => {
    const v = raw[key] ?? HOLD_DEFAULTS[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
      throw new SuperSpreaderError("INVALID_CONFIG", `hold.${key} must be a whole number ≥ 1, got ${describeValue(v)}`, { field: `hold.${key}` });
    }
    return v;
  };
  const policy: HoldPolicy = {
    consecutiveFailures: whole("consecutiveFailures"),
    errorRate: checkPositive(raw.errorRate ?? HOLD_DEFAULTS.errorRate, "hold.errorRate", "a share of attempts above 0 and at most 1", 1),
    minAttempts: whole("minAttempts"),
    probeAfter: checkPositive(raw.probeAfter ?? HOLD_DEFAULTS.probeAfter, "hold.probeAfter", "a number of seconds > 0", 86_400),
    maxProbeInterval: checkPositive(raw.maxProbeInterval ?? HOLD_DEFAULTS.maxProbeInterval, "hold.maxProbeInterval", "a number of seconds > 0", 86_400),
  };
  if (policy.maxProbeInterval < policy.probeAfter) {
    throw new SuperSpreaderError(
      "INVALID_CONFIG",
      `hold.maxProbeInterval must be at least hold.probeAfter (${policy.probeAfter}), got ${describeValue(policy.maxProbeInterval)}`,
      { field: "hold.maxProbeInterval" },
    );
  }
  return policy;
}

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
  return validate(input, false);
}

/**
 * Validates a config read back from the store. The same checks, but a time zone that an
 * earlier version accepted (an abbreviation such as "EST", a link such as "US/Pacific") is
 * kept, so a stored backfill never turns unreadable; new input must use canonical names.
 */
export function validateStoredConfig(input: unknown): BackfillConfig {
  return validate(input, true);
}

function validate(input: unknown, stored: boolean): BackfillConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new SuperSpreaderError("INVALID_CONFIG", `config must be an object, got ${describeValue(input)}`, { field: "config" });
  }
  const raw = input as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!KEYS.includes(key)) {
      const hint = didYouMean(key, KEYS);
      throw new SuperSpreaderError(
        "INVALID_CONFIG",
        `config.${key} is not a known field${hint ? `: did you mean ${hint}?` : ""} (expected one of ${KEYS.join(", ")})`,
        { field: key },
      );
    }
  }
  const batchSize = checkBatchSize(raw.batchSize);
  const durationR = checkDuration(raw.duration);
  if ((raw.duration as number) < MIN_DURATION_SECONDS) {
    throw new SuperSpreaderError(
      "INVALID_CONFIG",
      `duration must be at least ${MIN_DURATION_SECONDS} seconds (the shortest cycle), got ${describeValue(raw.duration)}`,
      { field: "duration" },
    );
  }
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
  const peak = raw.peak === undefined || raw.peak === null ? null : parsePeak(raw.peak, "peak", stored);
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
  const hold = parseHold(raw.hold);
  return {
    batchSize,
    duration: raw.duration as number,
    perSecondOnPeak,
    perSecondOffPeak,
    peak,
    maxAttempts,
    priority: priority as number | null,
    spreadWithinSecond,
    hold,
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
