import { SuperSpreaderError, describeValue } from "./errors.js";

/** Where the runtime reads the time. Inject a {@link ManualClock} in tests. */
export interface Clock {
  /** Now, in epoch milliseconds. */
  now(): number;
  /**
   * Waits `ms` milliseconds of this clock (a batch waiting for its start slot); resolves early when
   * `signal` aborts. Without it, the runtime waits with `setTimeout`.
   */
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
}

/** The real clock (`Date.now`, `setTimeout`). */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
    }),
};

/**
 * A clock that moves only when told to: for deterministic tests of schedules. `sleep(ms)` moves it
 * forward by `ms` at once: time passes while a batch waits, as in a run with one worker.
 */
export interface ManualClock extends Clock {
  sleep(ms: number, signal: AbortSignal): Promise<void>;
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
    sleep: async (ms) => {
      if (Number.isFinite(ms) && ms > 0) current += ms;
    },
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
