import { SuperSpreaderError, describeValue } from "./errors.js";

/** Where the runtime reads the time. Inject a {@link ManualClock} in tests. */
export interface Clock {
  /** Now, in epoch milliseconds. */
  now(): number;
}

/** The real clock (`Date.now`). */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to: for deterministic tests of schedules. */
export interface ManualClock extends Clock {
  /** Moves to `ms` (epoch ms); never backwards. */
  set(ms: number): void;
  /** Moves forward by `ms` milliseconds. */
  advance(ms: number): void;
}

/**
 * Creates a {@link ManualClock} starting at `start`.
 *
 * @example
 * ```ts
 * const clock = createManualClock(Date.parse("2026-11-16T22:51:59Z"));
 * clock.advance(1_000);
 * ```
 */
export function createManualClock(start: number | Date = 0): ManualClock {
  let current = typeof start === "number" ? start : start.getTime();
  if (!Number.isFinite(current)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `start must be a finite time, got ${describeValue(start)}`, { field: "start" });
  }
  return {
    now: () => current,
    set(ms) {
      if (!Number.isFinite(ms)) throw new SuperSpreaderError("INVALID_ARGUMENT", `ms must be finite, got ${describeValue(ms)}`, { field: "ms" });
      if (ms > current) current = ms;
    },
    advance(ms) {
      if (!Number.isFinite(ms) || ms < 0) {
        throw new SuperSpreaderError("INVALID_ARGUMENT", `ms must be a finite number ≥ 0, got ${describeValue(ms)}`, { field: "ms" });
      }
      current += ms;
    },
  };
}
