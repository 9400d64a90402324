import { SuperSpreaderError, describeValue } from "./errors.js";
import type { ShutdownMode } from "./ports.js";

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

