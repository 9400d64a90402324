import { SuperSpreaderError, parseId } from "@superspreader/core";
import type { IdLike, IdRange } from "@superspreader/core";
import type { SQLWrapper } from "drizzle-orm";
import { readBound } from "./id-source.js";
import { kindOf, reasonOf, resolveTarget } from "./target.js";
import type { TargetOptions } from "./target.js";

/** The window handed to a `run` callback. */
export interface BatchWindow extends IdRange {
  /** `options.signal`, or a signal that never fires: stop early at your own risk (the window is then not done). */
  readonly signal: AbortSignal;
}

/** Reported after every finished window. Counts cover this call only (on a resumed run, what remained). */
export interface BatchProgress {
  /** First id of the window just finished (inclusive). */
  readonly beginId: bigint;
  /** Last id of the window just finished (inclusive). */
  readonly endId: bigint;
  /** Windows finished so far, this one included. */
  readonly windowsDone: number;
  /** Windows this call will run in all. */
  readonly windowsTotal: number;
  /** Ids covered by the finished windows (an id span, not a row count). */
  readonly idsDone: bigint;
  /** Ids this call covers in all. */
  readonly idsTotal: bigint;
  /** The first id not yet done: pass it as `resumeFrom` to continue after an interruption; `null` once finished. */
  readonly resumeFrom: bigint | null;
}

/** What {@link batchExecute} did. */
export interface BatchSummary {
  /** Windows run. */
  readonly windows: number;
  /** Ids covered by those windows (an id span, not a row count). */
  readonly ids: bigint;
  /** Wall-clock time, in milliseconds. */
  readonly ms: number;
  /** `false` when `signal` stopped the run before the last window. */
  readonly completed: boolean;
  /** The first id not yet done (pass it as `resumeFrom`), or `null` when completed. */
  readonly resumeFrom: bigint | null;
}

/** Options of {@link batchExecute}. Exactly one of `statement` and `run` is required. */
export interface BatchExecuteOptions extends TargetOptions {
  /** Ids per window (at least 1). Windows are inclusive: `[begin, begin + windowSize - 1]`. */
  windowSize: IdLike;
  /** `"up"` runs from the lowest id to the highest, `"down"` the other way. @default "up" */
  direction?: "up" | "down" | undefined;
  /** Lowest id to cover. @default MIN(column) within `where` */
  beginId?: IdLike | undefined;
  /** Highest id to cover. @default MAX(column) within `where` */
  endId?: IdLike | undefined;
  /**
   * Builds the statement for a window; it is run with `db.execute`. Return `sql\`…\``
   * or a query builder (`db.update(t).set(…).where(idRange(…))`). `where` only narrows
   * the bounds: apply your scope in the statement too.
   * @default undefined
   */
  statement?: ((window: IdRange) => SQLWrapper) | undefined;
  /** Processes a window; awaited before the next one starts. @default undefined */
  run?: ((window: BatchWindow) => Promise<void>) | undefined;
  /** Milliseconds to wait between two windows (not before the first, not after the last). @default 0 */
  pauseMs?: number | undefined;
  /** Called (and awaited) after every window, e.g. to log or to persist `resumeFrom`. @default undefined */
  onProgress?: ((progress: BatchProgress) => void | Promise<void>) | undefined;
  /**
   * The first id not yet done, from an earlier interrupted call (`BatchProgress.resumeFrom`
   * or `BatchSummary.resumeFrom`): windows start there instead of at the bound.
   * From a bare "last id done" `n`, pass `n + 1` going up and `n - 1` going down.
   * @default undefined (start at the bound)
   */
  resumeFrom?: IdLike | undefined;
  /** Stops the run cleanly between windows; the summary then has `completed: false`. @default undefined */
  signal?: AbortSignal | undefined;
}

function invalid(field: string, message: string): SuperSpreaderError {
  return new SuperSpreaderError("INVALID_ARGUMENT", `batchExecute: ${message}`, { field });
}

function optionalId(value: IdLike | undefined, field: string): bigint | undefined {
  return value === undefined ? undefined : parseId(value, field);
}

const larger = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const smaller = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** Resolves after `ms`, or as soon as `signal` fires. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Runs over a table in windows of `windowSize` ids, synchronously (one window at a
 * time): for migrations and scripts, where a queue would be overkill. Each window
 * `[beginId, endId]` is inclusive and windows never overlap, so `BETWEEN` in your
 * statement processes each id once. Stops cleanly between windows when `signal`
 * fires; a failing window rejects with an `ADAPTER_ERROR` (the driver's error as
 * `cause`) that says which `resumeFrom` continues from that window.
 *
 * @example
 * ```ts
 * const db = drizzle({ client: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * const summary = await batchExecute({
 *   db, table: users, column: users.id, windowSize: 10_000, pauseMs: 100,
 *   statement: ({ beginId, endId }) =>
 *     db.update(users).set({ emailLower: sql`lower(${users.email})` }).where(idRange(users.id, beginId, endId)),
 *   onProgress: (p) => console.log(`${p.windowsDone}/${p.windowsTotal}, resumeFrom ${p.resumeFrom}`),
 * });
 * ```
 */
export async function batchExecute(options: BatchExecuteOptions): Promise<BatchSummary> {
  const target = resolveTarget(options, "batchExecute");
  const { statement, run, onProgress, signal } = options;
  const windowSize = parseId(options.windowSize, "windowSize");
  if (windowSize < 1n) throw invalid("windowSize", `windowSize must be at least 1, got ${windowSize}`);
  const direction = options.direction ?? "up";
  if (direction !== "up" && direction !== "down") {
    throw invalid("direction", `direction must be "up" or "down", got ${kindOf(direction)}`);
  }
  const pauseMs = options.pauseMs ?? 0;
  if (typeof pauseMs !== "number" || !Number.isFinite(pauseMs) || pauseMs < 0) {
    throw invalid("pauseMs", `pauseMs must be a finite number of milliseconds ≥ 0, got ${kindOf(pauseMs)}`);
  }
  if ((statement === undefined) === (run === undefined)) {
    throw invalid(
      statement === undefined ? "statement" : "run",
      "pass exactly one of statement (a function returning the SQL for a window) and run (an async function processing a window)",
    );
  }
  for (const [field, fn] of [["statement", statement], ["run", run], ["onProgress", onProgress]] as const) {
    if (fn !== undefined && typeof fn !== "function") throw invalid(field, `${field} must be a function, got ${kindOf(fn)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalid("signal", `signal must be an AbortSignal (e.g. from new AbortController()), got ${kindOf(signal)}`);
  }
  const givenBegin = optionalId(options.beginId, "beginId");
  const givenEnd = optionalId(options.endId, "endId");
  const resumeFrom = optionalId(options.resumeFrom, "resumeFrom");
  if (givenBegin !== undefined && givenEnd !== undefined && givenBegin > givenEnd) {
    throw invalid("endId", `endId (${givenEnd}) must be ≥ beginId (${givenBegin})`);
  }

  const startedAt = performance.now();
  const summary = (windows: number, ids: bigint, next: bigint | null): BatchSummary => ({
    windows,
    ids,
    ms: Math.round(performance.now() - startedAt),
    completed: next === null,
    resumeFrom: next,
  });

  const low = givenBegin ?? (await readBound(target, "min"));
  const high = givenEnd ?? (await readBound(target, "max"));
  if (low === null || high === null || low > high) return summary(0, 0n, null);
  const up = direction === "up";
  // The first id not yet done; windows walk from it towards the far bound.
  let next: bigint | null = up ? low : high;
  if (resumeFrom !== undefined) {
    next = up ? (resumeFrom > high ? null : larger(resumeFrom, low)) : resumeFrom < low ? null : smaller(resumeFrom, high);
  }
  if (next === null) return summary(0, 0n, null);

  const idsTotal = up ? high - next + 1n : next - low + 1n;
  const windowsTotal = Number((idsTotal + windowSize - 1n) / windowSize);
  const windowSignal = signal ?? new AbortController().signal;
  let windows = 0;
  let ids = 0n;
  while (next !== null) {
    if (windows > 0 && pauseMs > 0) await pause(pauseMs, signal);
    if (signal?.aborted) break;
    const beginId: bigint = up ? next : larger(next - windowSize + 1n, low);
    const endId: bigint = up ? smaller(next + windowSize - 1n, high) : next;
    const query = statement?.({ beginId, endId });
    // A string would run as raw SQL through db.execute: refuse it rather than invite interpolated ids and names.
    if (statement !== undefined && typeof (query as Partial<SQLWrapper> | undefined)?.getSQL !== "function") {
      throw invalid("statement", `statement must return drizzle SQL (sql\`…\` or a query builder), got ${kindOf(query)}`);
    }
    try {
      if (query !== undefined) await target.db.execute(query);
      else await run?.({ beginId, endId, signal: windowSignal });
    } catch (error) {
      const reason = reasonOf(error);
      throw new SuperSpreaderError(
        "ADAPTER_ERROR",
        `batchExecute: window ${beginId}..${endId} of ${target.label} failed: ${reason}. ` +
          `Fix the cause, then call batchExecute again with resumeFrom: ${up ? beginId : endId}n to continue from this window`,
        { cause: error },
      );
    }
    windows += 1;
    ids += endId - beginId + 1n;
    next = up ? (endId < high ? endId + 1n : null) : beginId > low ? beginId - 1n : null;
    await onProgress?.({ beginId, endId, windowsDone: windows, windowsTotal, idsDone: ids, idsTotal, resumeFrom: next });
  }
  return summary(windows, ids, next);
}
