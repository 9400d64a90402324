import { wholeNumberOption } from "./options.js";
import type { JobProcessor, WatchdogAction } from "./ports.js";

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
  /** Called after each run that did not fail (the store and the queue answered). @default ignored */
  onSuccess?: () => void;
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
        options.onSuccess?.();
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
