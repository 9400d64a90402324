import { SuperSpreaderError, describeValue } from "./errors.js";
import type { JobState } from "./ports.js";

/*
 * Pieces every queue adapter and worker runner needs, kept once (the BullMQ and Bee-Queue
 * adapters had a copy each).
 */

const JOB_STATES: ReadonlySet<string> = new Set(["waiting", "delayed", "active", "completed", "failed", "missing"]);

/**
 * Checks `JobQueue.lookup`'s argument before anything is sent: an array of job ids (strings).
 *
 * @example
 * ```ts
 * async lookup(ids) { checkLookupIds(ids); if (ids.length === 0) return []; … }
 * ```
 */
export function checkLookupIds(ids: unknown): asserts ids is readonly string[] {
  if (!Array.isArray(ids) || ids.some((id) => typeof id !== "string")) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `ids must be an array of job ids (strings), got ${describeValue(ids)}`, { field: "ids" });
  }
}

/**
 * Checks the states a lookup script answered: one known state per id asked, in order.
 *
 * @example
 * ```ts
 * return checkLookupStates(replies.flat(), ids.length);
 * ```
 */
export function checkLookupStates(states: readonly unknown[], count: number): JobState[] {
  for (const state of states) {
    if (typeof state !== "string" || !JOB_STATES.has(state)) throw new Error(`unexpected job state ${describeValue(state)} from the lookup script`);
  }
  if (states.length !== count) throw new Error(`the lookup script answered ${states.length} states for ${count} ids`);
  return states as JobState[];
}

/**
 * Resolves true when `promise` settles (either way) within `ms`, false when the time runs out
 * first. What a runner's `close()` waits with.
 *
 * @example
 * ```ts
 * if (!(await settlesWithin(running, shutdownTimeoutMs))) abortAll();
 * ```
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The wait before the retry that follows failed attempt `attempt` (1 for the first run):
 * `delayMs · 2^(attempt-1)`, at most `maxDelayMs`. A function of the attempt only, so it is the
 * same after a crash.
 *
 * @example
 * ```ts
 * cappedBackoffMs(1, 1_000, 60_000); // 1000
 * cappedBackoffMs(12, 1_000, 60_000); // 60000
 * ```
 */
export function cappedBackoffMs(attempt: number, delayMs: number, maxDelayMs: number): number {
  // 2^1024 is Infinity: past the cap the exponent no longer matters.
  const grown = delayMs * 2 ** Math.min(Math.max(0, attempt - 1), 64);
  return Math.min(maxDelayMs, Number.isFinite(grown) ? grown : maxDelayMs);
}

const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EPIPE", "EAI_AGAIN", "ECONNABORTED"]);

/**
 * True for an error that says the connection to the server is down (refused, reset, timed out,
 * closed), as opposed to an error of the work itself. A talking worker prints those once per
 * outage instead of once per retry.
 *
 * @example
 * ```ts
 * connection.on("error", (e) => (isConnectionError(e) ? reporter.connectionLost(e) : reporter.workerError(e)));
 * ```
 */
export function isConnectionError(error: unknown): boolean {
  for (let e = error as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown } | null, depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === "string" && CONNECTION_CODES.has(e.code)) return true;
    if (typeof e.message === "string" && /Connection is closed|connect ECONNREFUSED|Socket closed unexpectedly|Stream isn't writeable|The client is closed/i.test(e.message)) {
      return true;
    }
    if (Array.isArray(e.errors) && e.errors.some(isConnectionError)) return true;
    e = e.cause as typeof e;
  }
  return false;
}
