/**
 * What the health indicators of both dialects share: option checks, thresholds → level,
 * the wording of reasons, reading a signal under the poll's AbortSignal, and `worstOf`.
 */
import { SuperSpreaderError, isSuperSpreaderError } from "@superspreader/core";
import { describeValue, didYouMean, invalidOption } from "@superspreader/core/adapter";
import type { HealthContext, HealthIndicator, HealthLevel, HealthReading } from "@superspreader/core";
import { is } from "drizzle-orm";
import { MySqlDatabase } from "drizzle-orm/mysql-core";
import { PgDatabase } from "drizzle-orm/pg-core";
import { reasonOf } from "./target.js";
import type { Dialect, DrizzleDatabase } from "./target.js";

/** A slow and a stop threshold; `null` turns that level off. A value at or above a threshold trips it. */
export interface Thresholds {
  readonly slow: number | null;
  readonly stop: number | null;
}

/** How a threshold option is checked and shown. */
export interface Unit {
  /** Whole numbers only (sessions, threads, bytes). */
  readonly whole?: boolean;
  /** Largest allowed value (ratios: 1). */
  readonly max?: number;
  /** Renders a value or threshold for a reason. */
  readonly format: (value: number) => string;
}

const RANK: Record<HealthLevel, number> = { ok: 0, slow: 1, stop: 2 };

/** The worse of two levels. */
export const worse = (a: HealthLevel, b: HealthLevel): HealthLevel => (RANK[b] > RANK[a] ? b : a);

/** -1, 0 or 1 as level `a` is better, as bad as, or worse than `b`. */
export const compareLevels = (a: HealthLevel, b: HealthLevel): number => Math.sign(RANK[a] - RANK[b]);

/** Refuses option names the factory does not know (a typo in a threshold would silently use the default). */
export function checkOptions(options: unknown, factory: string, known: readonly string[]): Record<string, unknown> {
  if (typeof options !== "object" || options === null) {
    throw invalidOption("options", `of ${factory} must be an object such as { db }, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const guess = didYouMean(key, known);
    throw invalidOption(key, `is not an option of ${factory}${guess === null ? ` (it takes ${known.join(", ")})` : `; did you mean ${guess}?`}`);
  }
  return options as Record<string, unknown>;
}

/** The db option: a drizzle database of `dialect` (or one whose dialect cannot be told, typed structurally). */
export function dbOption(value: unknown, dialect: Dialect, factory: string): DrizzleDatabase {
  if (typeof value !== "object" || value === null || typeof (value as { execute?: unknown }).execute !== "function") {
    throw invalidOption("db", `of ${factory} must be a drizzle database, e.g. drizzle({ client: pool }), got ${describeValue(value)}`);
  }
  const other = dialect === "pg" ? is(value, MySqlDatabase) : is(value, PgDatabase);
  if (other) {
    const [want, got] = dialect === "pg" ? ["PostgreSQL", "MySQL"] : ["MySQL", "PostgreSQL"];
    throw invalidOption("db", `of ${factory} must be a ${want} database, got a ${got} one`);
  }
  return value as DrizzleDatabase;
}

/** One threshold: a positive number (whole if `unit.whole`, at most `unit.max`), null for "off", or the default. */
function threshold(value: unknown, field: string, fallback: number | null, unit: Unit): number | null {
  if (value === undefined) return fallback;
  if (value === null) return null;
  const kind = unit.whole ? "a whole number" : "a number";
  const range = unit.max === undefined ? "> 0" : `> 0 and ≤ ${unit.max}`;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || (unit.whole && !Number.isSafeInteger(value)) || (unit.max !== undefined && value > unit.max)) {
    throw invalidOption(field, `must be ${kind} ${range}, or null to turn that level off, got ${describeValue(value)}`);
  }
  return value;
}

/** A slow/stop pair of threshold options; slow must not exceed stop. */
export function thresholdOptions(
  options: Record<string, unknown>,
  fields: readonly [slow: string, stop: string],
  defaults: Thresholds,
  unit: Unit,
): Thresholds {
  const [slowField, stopField] = fields;
  const slow = threshold(options[slowField], slowField, defaults.slow, unit);
  const stop = threshold(options[stopField], stopField, defaults.stop, unit);
  if (slow !== null && stop !== null && slow > stop) {
    throw invalidOption(slowField, `(${slow}) must not exceed ${stopField} (${stop}): slow is the earlier warning`);
  }
  return { slow, stop };
}

/** A list of strings option (names to leave out), or `[]`. */
export function namesOption(value: unknown, field: string): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((name) => typeof name === "string")) {
    throw invalidOption(field, `must be an array of names (strings), got ${describeValue(value)}`);
  }
  return [...value] as string[];
}

/** A level option: "slow" or "stop". */
export function levelOption(value: unknown, field: string, fallback: "slow" | "stop"): "slow" | "stop" {
  if (value === undefined) return fallback;
  if (value !== "slow" && value !== "stop") throw invalidOption(field, `must be "slow" or "stop", got ${describeValue(value)}`);
  return value;
}

/**
 * The level `value` reaches, and how it compares with the threshold that decided it:
 * `bound` is `"≥ 1.5 s"` or `"< 1 s"` (empty with no thresholds), `text` is `"2.3 s ≥ 1.5 s"`.
 */
export function measure(value: number, thresholds: Thresholds, unit: Unit): { level: HealthLevel; bound: string; text: string } {
  const judged = (level: HealthLevel, bound: string) => ({ level, bound, text: bound === "" ? unit.format(value) : `${unit.format(value)} ${bound}` });
  if (thresholds.stop !== null && value >= thresholds.stop) return judged("stop", `≥ ${unit.format(thresholds.stop)}`);
  if (thresholds.slow !== null && value >= thresholds.slow) return judged("slow", `≥ ${unit.format(thresholds.slow)}`);
  const next = thresholds.slow ?? thresholds.stop;
  return judged("ok", next === null ? "" : `< ${unit.format(next)}`);
}

/** Rounds for reading: 2 significant digits below 10, one decimal below 100, whole above. */
export function round(value: number): string {
  const abs = Math.abs(value);
  return String(abs >= 100 ? Math.round(value) : abs >= 10 ? Number(value.toFixed(1)) : Number(value.toPrecision(2)));
}

export const SECONDS: Unit = { format: (v) => `${round(v)} s` };
export const COUNT: Unit = { whole: true, format: (v) => String(v) };
export const RATIO: Unit = { max: 1, format: (v) => `${round(v * 100)}%` };
export const BYTES: Unit = {
  whole: true,
  format: (v) => {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${round(v)} ${units[i]}`;
  },
};

/** `[name] 1 session` / `2 sessions`. */
export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/** Resolves like `promise`, or rejects as soon as `signal` fires (the query is left to finish on its own). */
function untilAborted<T>(promise: PromiseLike<T>, signal: AbortSignal | undefined, onAbort: () => Error): Promise<T> {
  if (signal === undefined) return Promise.resolve(promise);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(onAbort());
    if (signal.aborted) return abort();
    signal.addEventListener("abort", abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", abort);
        reject(error);
      },
    );
  });
}

/**
 * Runs an indicator's query under the poll's signal: an abort rejects at once (the query
 * cannot be cancelled through drizzle; ours take no locks and finish on their own), and a
 * driver failure becomes an `ADAPTER_ERROR` that names the indicator and what it read.
 */
export async function readSignal<T>(factory: string, what: string, context: HealthContext | undefined, run: () => PromiseLike<T>): Promise<T> {
  const signal = context?.signal;
  const aborted = () =>
    new SuperSpreaderError("ADAPTER_ERROR", `${factory}: reading ${what} was aborted (${reasonOf(signal?.reason)})`, { cause: signal?.reason });
  if (signal?.aborted) throw aborted();
  try {
    return await untilAborted(run(), signal, aborted);
  } catch (error) {
    if (isSuperSpreaderError(error)) throw error;
    throw new SuperSpreaderError("ADAPTER_ERROR", `${factory}: reading ${what} failed: ${reasonOf(error)}`, { cause: error });
  }
}

/** The rows of `db.execute()`: node-postgres and PGlite give `{ rows }`, postgres.js an array, mysql2 `[rows, fields]`. */
export function rowsOf(result: unknown, dialect: Dialect): Array<Record<string, unknown>> {
  if (dialect === "mysql" && Array.isArray(result) && Array.isArray(result[0])) return result[0] as Array<Record<string, unknown>>;
  if (Array.isArray(result)) return result as Array<Record<string, unknown>>;
  const rows = (result as { rows?: unknown } | null)?.rows;
  if (Array.isArray(rows)) return rows as Array<Record<string, unknown>>;
  throw new Error(`unexpected result from db.execute(): ${describeValue(result)}`);
}

/** A json column: parsed by node-postgres, PGlite and postgres.js, a string from other drivers. */
export function json<T>(value: unknown): T {
  return (typeof value === "string" ? JSON.parse(value) : value) as T;
}

/** An indicator that cannot read its signal (a missing privilege, table or heartbeat): it throws, and the runtime fails closed. */
export function signalError(factory: string, message: string): SuperSpreaderError {
  return new SuperSpreaderError("ADAPTER_ERROR", `${factory}: ${message}`);
}

/**
 * One indicator from several, polled together with the same context: the worst level wins
 * (`stop` over `slow` over `ok`), the value is that of the first indicator at the worst level,
 * and the reasons of the indicators at that level are joined with `"; "`. When one indicator
 * throws, the result is still `stop` if another says stop (the hold is certain either way);
 * otherwise the combined indicator throws too, since it cannot vouch for "ok" (the runtime
 * then fails closed after its timeout).
 *
 * @example
 * ```ts
 * const db = drizzle({ client: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * const health = worstOf([
 *   createPgReplicationLagIndicator({ db }),
 *   createPgAutovacuumIndicator({ db, table: messages }),
 * ]);
 * await health({ backfill: "reencrypt", signal: AbortSignal.timeout(2_000) });
 * // { level: "stop", reason: "autovacuum is vacuuming public.messages (scanning heap, 40% of 1200 blocks, 3.1 s)", value: 1 }
 * ```
 */
export function worstOf(indicators: readonly HealthIndicator[]): HealthIndicator {
  if (!Array.isArray(indicators) || indicators.length === 0) {
    throw invalidOption("indicators", `of worstOf must be a non-empty array of health indicators, got ${describeValue(indicators)}`);
  }
  indicators.forEach((indicator, i) => {
    if (typeof indicator !== "function") throw invalidOption(`indicators[${i}]`, `must be a health indicator (a function), got ${describeValue(indicator)}`);
  });
  const list = [...indicators];
  return async (context) => {
    const results = await Promise.allSettled(list.map((indicator) => indicator(context)));
    const readings: HealthReading[] = [];
    const failures: unknown[] = [];
    for (const result of results) {
      if (result.status === "fulfilled") readings.push(result.value);
      else failures.push(result.reason);
    }
    const level = readings.reduce<HealthLevel>((acc, r) => worse(acc, r.level), "ok");
    if (failures.length > 0 && level !== "stop") {
      const messages = failures.map((f) => reasonOf(f)).join("; ");
      throw new SuperSpreaderError("ADAPTER_ERROR", `worstOf: ${failures.length} of ${list.length} indicators failed: ${messages}`, { cause: failures[0] });
    }
    const worst = readings.filter((r) => r.level === level);
    return { level, reason: worst.map((r) => r.reason).join("; "), value: worst[0]?.value ?? null };
  };
}
