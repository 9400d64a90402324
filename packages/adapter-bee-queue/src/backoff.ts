import type BeeQueue from "bee-queue";
import { describeValue, invalidOption, wholeNumberOption, cappedBackoffMs } from "@superspreader/core/adapter";
import { readDelivery } from "./envelope.js";

/** How Bee-Queue spaces the retries of a failed job. */
export interface BeeQueueBackoff {
  /**
   * `"exponential"`: wait `delayMs`, then twice that, … at most `maxDelayMs`; `"fixed"`: wait
   * `delayMs` every time; `"immediate"`: retry at once.
   */
  readonly type: "exponential" | "fixed" | "immediate";
  /**
   * First (or every, for `"fixed"`) wait in ms; a whole number ≥ 1, at most `maxDelayMs`. Ignored by `"immediate"`.
   * @default 1000
   */
  readonly delayMs?: number;
  /**
   * The longest wait before a retry (ms): an exponential backoff stops growing here, so a tick
   * retried through a long outage still tries about once a minute rather than hours apart.
   * @default 60000
   */
  readonly maxDelayMs?: number;
}

/**
 * The Bee-Queue backoff strategy of a capped exponential backoff. Bee-Queue's own `exponential`
 * doubles without bound, so jobs carry this strategy with `delay` and `maxDelay`, and every
 * worker registers it ({@link registerBackoff}).
 */
export const CAPPED_EXPONENTIAL = "superspreader-exponential";

/** A job's `options.backoff` as Bee-Queue stores it. */
export type StoredBackoff =
  | { readonly strategy: "immediate" }
  | { readonly strategy: "fixed"; readonly delay: number }
  | { readonly strategy: typeof CAPPED_EXPONENTIAL; readonly delay: number; readonly maxDelay: number };

/** Validates a `backoff` option and turns it into Bee-Queue job options. */
export function backoffOption(value: unknown, field = "backoff"): StoredBackoff {
  if (value === undefined) return { strategy: CAPPED_EXPONENTIAL, delay: 1_000, maxDelay: 60_000 };
  if (typeof value !== "object" || value === null) {
    throw invalidOption(field, `must be { type: "exponential" | "fixed" | "immediate", delayMs?, maxDelayMs? }, got ${describeValue(value)}`);
  }
  const { type, delayMs, maxDelayMs } = value as { type?: unknown; delayMs?: unknown; maxDelayMs?: unknown };
  if (type !== "exponential" && type !== "fixed" && type !== "immediate") {
    throw invalidOption(`${field}.type`, `must be "exponential", "fixed" or "immediate", got ${describeValue(type)}`);
  }
  if (type === "immediate") return { strategy: "immediate" };
  // Bee-Queue refuses a delay of 0 for its delayed strategies.
  const delay = wholeNumberOption(delayMs, `${field}.delayMs`, 1_000, 1);
  const maxDelay = wholeNumberOption(maxDelayMs, `${field}.maxDelayMs`, 60_000, 1);
  if (delay > maxDelay) throw invalidOption(`${field}.delayMs`, `must not exceed ${field}.maxDelayMs (${maxDelay}), got ${delay}`);
  return type === "fixed" ? { strategy: "fixed", delay } : { strategy: CAPPED_EXPONENTIAL, delay, maxDelay };
}

/** The wait before retry n: core's capped exponential, `delayMs · 2^(n-1)` up to `maxDelayMs`. */
export const cappedDelay = cappedBackoffMs;

/**
 * Bee-Queue calls a strategy with the job before it counts the failure, so the attempt that
 * failed follows from the remaining retries, as the worker numbers attempts. Unlike Bee-Queue's
 * own exponential strategy, nothing is doubled in the stored options: the wait is a function of
 * the attempt, the same after a crash.
 */
export function cappedStrategy(job: BeeQueue.Job<unknown>): number {
  const backoff = (job.options as { backoff?: { delay?: unknown; maxDelay?: unknown } }).backoff;
  if (typeof backoff?.delay !== "number" || typeof backoff.maxDelay !== "number") return -1;
  const { attempt } = readDelivery(job.id, job.data, (job.options as { retries?: unknown }).retries);
  return cappedDelay(attempt, backoff.delay, backoff.maxDelay);
}

/** Teaches a Bee-Queue instance the capped strategy; a worker needs it to retry the jobs of createBeeQueueJobQueue. */
export function registerBackoff(queue: BeeQueue): void {
  queue.backoffStrategies.set(CAPPED_EXPONENTIAL, cappedStrategy);
}
