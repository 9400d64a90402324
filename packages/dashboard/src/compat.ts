import type { BackfillStatus, ChangeOptions, SuperSpreader } from "@superspreader/core";

/**
 * What the dashboard needs from a runtime: a `SuperSpreader` is one. `plan`, `eta`, `repair` and `pin`
 * are optional: a runtime without them (another copy of core, a wrapper) still shows and steers,
 * and the dashboard says what it cannot show instead of computing it itself.
 */
export type DashboardSpreader = Pick<
  SuperSpreader,
  "list" | "status" | "audit" | "pause" | "resume" | "cancel" | "retryFailed" | "updateConfig" | "start" | "on"
> &
  Partial<Pick<SuperSpreader, "plan" | "eta" | "repair" | "pin">>;

/**
 * A status as any runtime may return it: the fields newer cores added (`revision`, `hold`,
 * `watchdog`, `reconciled`, `control`) are read as possibly absent.
 */
export type AnyStatus = Omit<BackfillStatus, "revision" | "hold" | "watchdog" | "reconciled" | "control"> &
  Partial<Pick<BackfillStatus, "revision" | "hold" | "watchdog" | "reconciled" | "control">>;

/** The optional methods of a runtime, bound, each present only when the runtime has it. */
export function extrasOf(spreader: DashboardSpreader): Partial<Pick<SuperSpreader, "plan" | "eta" | "repair" | "pin">> {
  const extras: Partial<Pick<SuperSpreader, "plan" | "eta" | "repair" | "pin">> = {};
  if (typeof spreader.plan === "function") extras.plan = spreader.plan.bind(spreader);
  if (typeof spreader.eta === "function") extras.eta = spreader.eta.bind(spreader);
  if (typeof spreader.repair === "function") extras.repair = spreader.repair.bind(spreader);
  if (typeof spreader.pin === "function") extras.pin = spreader.pin.bind(spreader);
  return extras;
}

/**
 * Change options with the revision the operator saw: core checks it atomically with the write and
 * throws CONFLICT on a mismatch. Without a revision (a runtime that has none) the dashboard's own
 * check just before the call is all there is.
 */
export function changeOptions(actor: string, reason: string | undefined, expectedRevision: number | null): ChangeOptions {
  return {
    actor,
    ...(reason === undefined ? {} : { reason }),
    ...(expectedRevision === null ? {} : { expectedRevision }),
  };
}
