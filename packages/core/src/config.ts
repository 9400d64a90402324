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

/** The closed loop (see {@link BackfillConfigInput.autotune}). */
export interface AutotuneInput {
  /**
   * Moves the batch size toward a target handler time (the Ruby original's 100 ms tolerance),
   * within bounds; `false` keeps the config's batch size.
   * @default { targetMs: 100, min: 1, max: 100_000 }
   */
  batchSize?: { targetMs?: number; min?: number; max?: number } | false;
  /**
   * Lowers the rate under the configured ceilings when workers cannot keep up (batches starting
   * late, a queue backlog, a slow tick) or a health indicator says slow, and raises it back; `false`
   * keeps the configured rates.
   * @default { minShare: 0.05, latenessMs: 2000, tickMs: 1500 }
   */
  rate?: { minShare?: number; latenessMs?: number; tickMs?: number } | false;
}

/** A validated autotune policy. */
export interface AutotunePolicy {
  readonly batchSize: { readonly targetMs: number; readonly min: number; readonly max: number } | null;
  readonly rate: { readonly minShare: number; readonly latenessMs: number; readonly tickMs: number } | null;
}

/** How a backfill's health indicators are polled and acted on (see {@link BackfillConfigInput.health}). */
export interface HealthPolicy {
  /** Seconds between two polls; a `stop` stops batches from starting within this. */
  readonly interval: number;
  /** Seconds a poll may take before it counts as unreadable. */
  readonly timeout: number;
  /** Seconds without a readable signal after which it counts as `stop` (fail closed). */
  readonly failClosedAfter: number;
  /** Seconds a `stop` holds the run before the signal is looked at again. */
  readonly stopHold: number;
}

/** Several backfills writing one database share this budget (see {@link BackfillConfigInput.budget}). */
export interface BudgetPolicy {
  /** Names the budget: backfills with the same key share it (e.g. the database's name). */
  readonly key: string;
  /** Batches per second all of them together may start. */
  readonly perSecond: number;
  /** This backfill's share, relative to the others' weights. */
  readonly weight: number;
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
  /**
   * The closed loop: the batch size moves toward a target handler time and the rate comes down
   * (under the configured rates, which become ceilings) when workers or the database's health
   * indicators say so, every change recorded like an operator's. `{}` turns both on with defaults.
   * @default null (off: the configured batch size and rates)
   */
  autotune?: AutotuneInput | AutotunePolicy | false | null;
  /**
   * How the backfill's health indicators (`define(name, { health })`) are polled: every
   * `interval` s, each poll given `timeout` s; `stop` holds the run for `stopHold` s (GitLab holds
   * ten minutes); a signal unreadable for `failClosedAfter` s counts as `stop`.
   * @default { interval: 1, timeout: 5, failClosedAfter: 10, stopHold: 600 }
   */
  health?: Partial<HealthPolicy>;
  /**
   * A rate budget shared with the other backfills of the same `key` (one database): together they
   * start at most `perSecond` batches a second, each getting a share by `weight`.
   * @default null
   */
  budget?: { key: string; perSecond: number; weight?: number } | null;
  /**
   * Deadline mode: an ISO instant (or epoch ms) by which the run should finish. The runtime
   * derives the rate through the peak calendar within the configured ceilings, again every cycle,
   * and refuses a deadline the ceilings cannot meet, saying what rate would.
   * @default null
   */
  finishBy?: string | number | null;
  /**
   * Catch-up: when the run has planned every range of its id space, the tick reads the source's
   * `maxId()` again and, when rows were inserted above the id space, extends the run to them (as
   * `spreader.extend(name)` does) before it completes. A table that keeps growing keeps the run going.
   * @default false
   */
  autoExtend?: boolean;
  /**
   * Collected output (RocketJob's collect_output): a handler may return a small JSON result per batch
   * (counts, ids it skipped, rows it could not fix), kept per run in the state store with the batch's
   * completion and read with `spreader.output(name)` or `superspreader output NAME`. A run keeps its first
   * results up to `maxBytes` of JSON (later ones are counted as dropped); a single result above
   * `maxEntryBytes` fails its batch with an error saying so. Off (`null`) ignores what handlers return, so
   * handlers written before it that happen to return something are not affected. `{}` turns it on.
   * @default null (off; `{}` means { maxBytes: 1048576, maxEntryBytes: 16384 })
   */
  output?: { maxBytes?: number; maxEntryBytes?: number } | null;
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
  /** `null` when the loop is off. */
  readonly autotune: AutotunePolicy | null;
  readonly health: HealthPolicy;
  readonly budget: BudgetPolicy | null;
  /** The deadline (epoch ms), or null. */
  readonly finishBy: number | null;
  /** Extend the run to rows inserted above its id space when it reaches the bottom. */
  readonly autoExtend: boolean;
  /** Collected output's bounds (UTF-8 bytes of JSON), or null when handlers' results are ignored. */
  readonly output: OutputPolicy | null;
}

/** Bounds of a run's collected output (see {@link BackfillConfigInput.output}). */
export interface OutputPolicy {
  /** UTF-8 bytes of result JSON a run keeps, at most. */
  readonly maxBytes: number;
  /** UTF-8 bytes of one batch's result JSON, at most. */
  readonly maxEntryBytes: number;
}

/** Bounds a config's `output: {}` takes. */
export const OUTPUT_DEFAULTS: OutputPolicy = { maxBytes: 1_048_576, maxEntryBytes: 16_384 };

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
  "autotune",
  "health",
  "budget",
  "finishBy",
  "autoExtend",
  "output",
];
const HOLD_KEYS = Object.keys(HOLD_DEFAULTS);

function checkPositive(value: unknown, field: string, what: string, max = Number.POSITIVE_INFINITY): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new SuperSpreaderError("INVALID_CONFIG", `${field} must be ${what}, got ${describeValue(value)}`, { field });
  }
  return value;
}

const HEALTH_DEFAULTS: HealthPolicy = { interval: 1, timeout: 5, failClosedAfter: 10, stopHold: 600 };

/** Fields of an object config value: an object of known keys, else INVALID_CONFIG naming the field. */
function objectOf(value: unknown, field: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SuperSpreaderError("INVALID_CONFIG", `${field} must be an object, got ${describeValue(value)}`, { field });
  }
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!keys.includes(key)) {
      const hint = didYouMean(key, keys);
      throw new SuperSpreaderError("INVALID_CONFIG", `${field}.${key} is not a known field${hint ? `: did you mean ${hint}?` : ""} (expected one of ${keys.join(", ")})`, {
        field: `${field}.${key}`,
      });
    }
  }
  return raw;
}

function wholeAtLeast(value: unknown, field: string, min: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new SuperSpreaderError("INVALID_CONFIG", `${field} must be a whole number ≥ ${min}, got ${describeValue(value)}`, { field });
  }
  return value;
}

function parseAutotune(value: unknown): AutotunePolicy | null {
  if (value === undefined || value === null || value === false) return null;
  const raw = objectOf(value, "autotune", ["batchSize", "rate"]);
  let batchSize: AutotunePolicy["batchSize"] = null;
  if (raw.batchSize !== false && raw.batchSize !== null) {
    const b = raw.batchSize === undefined ? {} : objectOf(raw.batchSize, "autotune.batchSize", ["targetMs", "min", "max"]);
    const targetMs = checkPositive(b.targetMs ?? 100, "autotune.batchSize.targetMs", "a number of milliseconds > 0", 3_600_000);
    const min = wholeAtLeast(b.min ?? 1, "autotune.batchSize.min", 1);
    const max = wholeAtLeast(b.max ?? 100_000, "autotune.batchSize.max", 1);
    if (max < min) throw new SuperSpreaderError("INVALID_CONFIG", `autotune.batchSize.max must be at least autotune.batchSize.min (${min}), got ${max}`, { field: "autotune.batchSize.max" });
    batchSize = { targetMs, min, max };
  }
  let rate: AutotunePolicy["rate"] = null;
  if (raw.rate !== false && raw.rate !== null) {
    const r = raw.rate === undefined ? {} : objectOf(raw.rate, "autotune.rate", ["minShare", "latenessMs", "tickMs"]);
    rate = {
      minShare: checkPositive(r.minShare ?? 0.05, "autotune.rate.minShare", "a share of the ceiling above 0 and at most 1", 1),
      latenessMs: checkPositive(r.latenessMs ?? 2_000, "autotune.rate.latenessMs", "a number of milliseconds > 0", 86_400_000),
      tickMs: checkPositive(r.tickMs ?? 1_500, "autotune.rate.tickMs", "a number of milliseconds > 0", 86_400_000),
    };
  }
  return { batchSize, rate };
}

function parseHealth(value: unknown): HealthPolicy {
  if (value === undefined || value === null) return HEALTH_DEFAULTS;
  const raw = objectOf(value, "health", Object.keys(HEALTH_DEFAULTS));
  const seconds = (key: keyof HealthPolicy) => checkPositive(raw[key] ?? HEALTH_DEFAULTS[key], `health.${key}`, "a number of seconds > 0", 86_400);
  return { interval: seconds("interval"), timeout: seconds("timeout"), failClosedAfter: seconds("failClosedAfter"), stopHold: seconds("stopHold") };
}

function parseBudget(value: unknown): BudgetPolicy | null {
  if (value === undefined || value === null) return null;
  const raw = objectOf(value, "budget", ["key", "perSecond", "weight"]);
  if (typeof raw.key !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(raw.key)) {
    throw new SuperSpreaderError("INVALID_CONFIG", `budget.key must be 1–100 letters, digits, "_", "." or "-" naming the shared budget (e.g. the database), got ${describeValue(raw.key)}`, {
      field: "budget.key",
    });
  }
  const perSecond = checkRate(raw.perSecond, "budget.perSecond");
  const weight = checkPositive(raw.weight ?? 1, "budget.weight", "a number > 0", 1_000_000);
  return { key: raw.key, perSecond, weight };
}

function parseFinishBy(value: unknown): number | null {
  if (value === undefined || value === null) return null;
  const ms = typeof value === "number" ? value : typeof value === "string" && /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) {
    throw new SuperSpreaderError("INVALID_CONFIG", `finishBy must be an ISO 8601 instant ("2026-12-24T00:00:00Z") or epoch ms, got ${describeValue(value)}`, { field: "finishBy" });
  }
  return ms;
}

function parseOutput(value: unknown): OutputPolicy | null {
  if (value === undefined || value === null) return null;
  const raw = objectOf(value, "output", ["maxBytes", "maxEntryBytes"]);
  // 256 MiB: Redis strings and most drivers' packets stop well before a run's results would.
  const maxBytes = wholeAtLeast(raw.maxBytes ?? OUTPUT_DEFAULTS.maxBytes, "output.maxBytes", 1);
  if (maxBytes > 268_435_456) throw new SuperSpreaderError("INVALID_CONFIG", `output.maxBytes must be at most 268435456 (256 MiB), got ${maxBytes}`, { field: "output.maxBytes" });
  const maxEntryBytes = wholeAtLeast(raw.maxEntryBytes ?? Math.min(OUTPUT_DEFAULTS.maxEntryBytes, maxBytes), "output.maxEntryBytes", 1);
  if (maxEntryBytes > maxBytes) {
    throw new SuperSpreaderError("INVALID_CONFIG", `output.maxEntryBytes must be at most output.maxBytes (${maxBytes}), got ${maxEntryBytes}`, { field: "output.maxEntryBytes" });
  }
  return { maxBytes, maxEntryBytes };
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
  const autotune = parseAutotune(raw.autotune);
  const health = parseHealth(raw.health);
  const budget = parseBudget(raw.budget);
  const finishBy = parseFinishBy(raw.finishBy);
  const output = parseOutput(raw.output);
  const autoExtend = raw.autoExtend ?? false;
  if (typeof autoExtend !== "boolean") {
    throw new SuperSpreaderError("INVALID_CONFIG", `autoExtend must be true or false, got ${describeValue(autoExtend)}`, { field: "autoExtend" });
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
    hold,
    autotune,
    health,
    budget,
    finishBy,
    autoExtend,
    output,
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
