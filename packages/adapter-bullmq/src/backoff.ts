import { describeValue, invalidOption, wholeNumberOption, cappedBackoffMs } from "@superspreader/core/adapter";
import type { BackoffOptions } from "bullmq";

/** Delay between a failed attempt and the next one. */
export interface BullMQBackoff {
  /** `"exponential"` waits `delayMs · 2^(n-1)` before retry n, at most `maxDelayMs`; `"fixed"` waits `delayMs` every time. */
  readonly type: "exponential" | "fixed";
  /** Base delay in milliseconds (a whole number ≥ 0, at most `maxDelayMs`). */
  readonly delayMs: number;
  /**
   * The longest wait before a retry (ms): an exponential backoff stops growing here, so a tick
   * retried through a long outage still tries about once a minute rather than hours apart.
   * @default 60000
   */
  readonly maxDelayMs?: number;
}

/** The default backoff: 1 s, 2 s, 4 s, … capped at a minute. */
export const DEFAULT_BACKOFF = { type: "exponential", delayMs: 1_000, maxDelayMs: 60_000 } as const;

/**
 * The custom BullMQ backoff type of a capped exponential backoff. BullMQ's own `exponential`
 * has no cap, so jobs carry this type, `delay` and `maxDelay`, and the worker's
 * `settings.backoffStrategy` ({@link cappedBackoffStrategy}) computes the wait.
 */
export const CAPPED_EXPONENTIAL = "superspreader-exponential";

/** The backoff as BullMQ job options store it. */
export type StoredBackoff = { type: "fixed"; delay: number } | { type: typeof CAPPED_EXPONENTIAL; delay: number; maxDelay: number };

/** Validates a `backoff` option and turns it into BullMQ job options. */
export function backoffOption(value: unknown, field = "backoff"): StoredBackoff {
  if (value === undefined) return { type: CAPPED_EXPONENTIAL, delay: DEFAULT_BACKOFF.delayMs, maxDelay: DEFAULT_BACKOFF.maxDelayMs };
  if (typeof value !== "object" || value === null) {
    throw invalidOption(field, `must be { type: "exponential" | "fixed", delayMs, maxDelayMs? }, got ${describeValue(value)}`);
  }
  const { type, delayMs, maxDelayMs } = value as { type?: unknown; delayMs?: unknown; maxDelayMs?: unknown };
  if (type !== "exponential" && type !== "fixed") {
    throw invalidOption(`${field}.type`, `must be "exponential" or "fixed", got ${describeValue(type)}`);
  }
  if (delayMs === undefined) throw invalidOption(`${field}.delayMs`, "is required (base delay in milliseconds)");
  const delay = wholeNumberOption(delayMs, `${field}.delayMs`, 0, 0);
  const maxDelay = wholeNumberOption(maxDelayMs, `${field}.maxDelayMs`, DEFAULT_BACKOFF.maxDelayMs, 0);
  if (delay > maxDelay) {
    throw invalidOption(`${field}.delayMs`, `must not exceed ${field}.maxDelayMs (${maxDelay}), got ${delay}`);
  }
  return type === "fixed" ? { type, delay } : { type: CAPPED_EXPONENTIAL, delay, maxDelay };
}

/** The wait before retry n: core's capped exponential, `delayMs · 2^(n-1)` up to `maxDelayMs`. */
export const cappedDelay = cappedBackoffMs;

/**
 * The worker's `settings.backoffStrategy`: BullMQ calls it for backoff types it does not know
 * itself, with the number of the attempt that failed.
 */
export function cappedBackoffStrategy(attemptsMade: number, type?: string, _error?: Error, job?: { opts: { backoff?: number | BackoffOptions } }): number {
  const backoff = job?.opts.backoff as { delay?: unknown; maxDelay?: unknown } | undefined;
  if (type !== CAPPED_EXPONENTIAL || typeof backoff?.delay !== "number" || typeof backoff.maxDelay !== "number") {
    throw new Error(`[superspreader] unknown backoff ${describeValue(job?.opts.backoff ?? type)}: only jobs of createBullMQJobQueue belong on this queue`);
  }
  return cappedDelay(attemptsMade, backoff.delay, backoff.maxDelay);
}
