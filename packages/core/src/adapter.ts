/**
 * `@superspreader/core/adapter`: what authors of queues, stores, sources, worker runners and
 * operator tools (the CLI, the dashboard) need, kept out of the user-facing entry. Every adapter of this repository checks its
 * options and port arguments with these, so a bad option reads the same everywhere: an
 * `INVALID_ARGUMENT` error naming the field and the value.
 *
 * @module
 */
import { SuperSpreaderError, describeValue } from "./errors.js";
import type { JobProcessor, ShutdownMode, WatchdogAction } from "./ports.js";

export {
  assertValidJob,
  checkEntry,
  checkLimit,
  checkName,
  checkRange,
  checkRunId,
  checkTime,
  JOB_ID_PATTERN,
  NAME_PATTERN,
} from "./validate-args.js";
export { describeValue } from "./errors.js";
export { didYouMean } from "./suggest.js";

/**
 * The error for a bad option: `[superspreader] <field> <message>`, code `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * if (typeof options.prefix !== "string") throw invalidOption("prefix", `must be a string, got ${describeValue(options.prefix)}`);
 * ```
 */
export function invalidOption(field: string, message: string): SuperSpreaderError {
  return new SuperSpreaderError("INVALID_ARGUMENT", `${field} ${message}`, { field });
}

/**
 * A whole-number option in `[min, max]`, or `fallback` when it is absent.
 *
 * @example
 * ```ts
 * const concurrency = wholeNumberOption(options.concurrency, "concurrency", 1, 1);
 * ```
 */
export function wholeNumberOption(value: unknown, field: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw invalidOption(field, `must be a whole number ${range}, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * A boolean option, or `fallback` when it is absent.
 *
 * @example
 * ```ts
 * const activate = booleanOption(options.activateDelayedJobs, "activateDelayedJobs", true);
 * ```
 */
export function booleanOption(value: unknown, field: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw invalidOption(field, `must be true or false, got ${describeValue(value)}`);
  return value;
}

/**
 * A function option (a hook), or `fallback` when it is absent.
 *
 * @example
 * ```ts
 * const onError = functionOption(options.onError, "onError", (error) => console.error(error));
 * ```
 */
export function functionOption<F extends (...args: never[]) => unknown>(value: unknown, field: string, fallback: F): F {
  if (value === undefined) return fallback;
  if (typeof value !== "function") throw invalidOption(field, `must be a function, got ${describeValue(value)}`);
  return value as F;
}

/**
 * A URL option whose scheme is one of `protocols` (e.g. `["redis:", "rediss:"]`), returned as given.
 * The message never shows a password.
 *
 * @example
 * ```ts
 * const url = urlOption(process.env.REDIS_URL, "redis", ["redis:", "rediss:"]);
 * ```
 */
export function urlOption(value: unknown, field: string, protocols: readonly string[]): string {
  const shown = typeof value === "string" ? JSON.stringify(value.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@")) : describeValue(value);
  let url: URL | null = null;
  if (typeof value === "string") {
    try {
      url = new URL(value);
    } catch {
      url = null;
    }
  }
  if (url === null || !protocols.includes(url.protocol)) {
    throw invalidOption(field, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(" or ")}, got ${shown}`);
  }
  return value as string;
}

/**
 * The `shutdown` option of a worker runner: `"drain"` (let running batches finish within
 * `shutdownTimeoutMs`, then abort them) or `"abort"` (abort them at once).
 *
 * @example
 * ```ts
 * const shutdown = shutdownOption(options.shutdown);
 * ```
 */
export function shutdownOption(value: unknown, field = "shutdown"): ShutdownMode {
  if (value === undefined) return "drain";
  if (value !== "drain" && value !== "abort") throw invalidOption(field, `must be "drain" or "abort", got ${describeValue(value)}`);
  return value;
}

/** Options of {@link startWatchdog}. */
export interface WatchdogOptions {
  /**
   * Ms between two runs of `processor.watchdog()`; `0` turns it off. A random tenth is
   * added to each wait so many workers do not look at the same instant.
   * @default 5000
   */
  intervalMs?: number;
  /** Called with each error of a run (the loop goes on). */
  onError: (error: unknown) => void;
  /** Called with what each run did, when it did something. @default ignored */
  onAction?: (actions: WatchdogAction[]) => void;
}

/** A running watchdog loop. */
export interface WatchdogHandle {
  /** Stops the loop and waits for a run in progress. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Runs `processor.watchdog()` now and then every `intervalMs`, so a worker runner revives
 * dead tick chains and carries out requested starts by itself. Every worker runner of this
 * repository starts one; a runner of your own should too.
 *
 * @example
 * ```ts
 * const watchdog = startWatchdog(spreader, { intervalMs: 5_000, onError: (e) => console.error(e) });
 * // … on shutdown:
 * await watchdog.stop();
 * ```
 */
export function startWatchdog(processor: JobProcessor, options: WatchdogOptions): WatchdogHandle {
  const intervalMs = wholeNumberOption(options.intervalMs, "watchdogIntervalMs", 5_000, 0);
  let stopped = intervalMs === 0 || typeof processor.watchdog !== "function";
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(tick, ms);
    timer.unref?.();
  };
  const tick = () => {
    running = (async () => {
      try {
        const actions = await processor.watchdog();
        if (actions.length > 0) options.onAction?.(actions);
      } catch (error) {
        options.onError(error);
      }
    })();
    void running.then(() => schedule(intervalMs + Math.floor(Math.random() * (intervalMs / 10))));
  };
  schedule(0);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
