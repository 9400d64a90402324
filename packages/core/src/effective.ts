import { rateAt, type BackfillConfig, type RateAt } from "./config.js";
import type { BackfillDoc } from "./doc.js";

/* ------------------------------------------------------- rate and batch size */

/**
 * A rate under a ceiling, rounded down to 4 significant digits (so a grid's rate is a short exact
 * decimal, and 0.0021/s is as fine-grained as 21/s); the ceiling itself when it is not below it.
 */
export function under(value: number, ceiling: number): number {
  if (!(value > 0)) return 0;
  if (value >= ceiling) return ceiling;
  const scale = 10 ** (3 - Math.floor(Math.log10(value)));
  return Number((Math.floor(value * scale * (1 + 1e-12)) / scale).toPrecision(12));
}

/**
 * The config a run's next cycles are planned with: the stored one with the closed loop applied. The
 * batch size is the pinned one, else the loop's, else the config's. The configured rates are ceilings
 * of both the batches per second and, at the config's batch size, the ids per second (batches larger
 * than the config's come fewer a second); each is scaled by the loop's share (the smaller of
 * autotune's factor and the deadline's share), or capped by an operator's pinned rate instead, then
 * capped by the shared budget. The same config gives
 * the planner its grid and `estimate` its ETA, so both see the rate in force.
 *
 * @example
 * ```ts
 * const status = await spreader.status("reencrypt");
 * effectiveConfig({ config: status.config, control: status.control }).perSecondOnPeak; // e.g. 2.55 under a 3/s ceiling
 * ```
 */
export function effectiveConfig(run: Pick<BackfillDoc, "config" | "control">): BackfillConfig {
  const { config, control } = run;
  if (control === null) return config;
  const share = Math.min(config.autotune?.rate ? control.factor : 1, control.deadlineShare ?? 1);
  const batchSize = control.pins.batchSize ?? (config.autotune?.batchSize ? control.batchSize : null) ?? config.batchSize;
  // Larger batches than the config's come at fewer batches per second: the configured rate bounds the
  // jobs per second and, at the config's batch size, the ids per second.
  const sizing = Math.min(1, config.batchSize / batchSize);
  const rate = (configured: number): number => {
    const ceiling = configured * sizing;
    let r = control.pins.perSecond !== null ? Math.min(ceiling, control.pins.perSecond) : ceiling * share;
    if (control.budgetCap !== null) r = Math.min(r, control.budgetCap);
    return under(r, configured);
  };
  const perSecondOnPeak = rate(config.perSecondOnPeak);
  const perSecondOffPeak = rate(config.perSecondOffPeak);
  if (perSecondOnPeak === config.perSecondOnPeak && perSecondOffPeak === config.perSecondOffPeak && batchSize === config.batchSize) return config;
  return { ...config, perSecondOnPeak, perSecondOffPeak, batchSize };
}

/** The rate a cycle starting at `at` runs at (see {@link effectiveConfig}). */
export function effectiveRate(run: Pick<BackfillDoc, "config" | "control">, at: number): RateAt {
  return rateAt(effectiveConfig(run), at);
}

/** The batch size the next cycle plans with (see {@link effectiveConfig}). */
export function effectiveBatchSize(run: Pick<BackfillDoc, "config" | "control">): number {
  return effectiveConfig(run).batchSize;
}

