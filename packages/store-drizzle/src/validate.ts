import { SuperSpreaderError } from "@superspreader/core";
import type { ConfigChange, FailedRange, OutstandingEntry, RangeEntry } from "@superspreader/core";
import { checkEntry, checkTime, describeValue, invalidOption } from "@superspreader/core/adapter";

/*
 * Argument checks core's adapter helpers do not have yet (store-redis keeps its own copy of the
 * same rules; both should move to @superspreader/core/adapter). Names, run ids, ranges, entries,
 * limits and times use core's, so what the in-memory store accepts this one accepts too.
 */

export function checkVersion(version: unknown): asserts version is number {
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw invalidOption("expectedVersion", `must be a whole number ≥ 0 (0 means "must not exist yet"), got ${describeValue(version)}`);
  }
}

/** `JSON.stringify(value)`, or INVALID_ARGUMENT when the value has no JSON form. */
export function jsonOf(value: unknown, field: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${field} must be JSON-serialisable: ${(error as Error).message}`, { field, cause: error });
  }
  if (json === undefined) throw invalidOption(field, `must be JSON-serialisable, got ${describeValue(value)}`);
  return json;
}

const isRecord = (v: unknown): boolean => typeof v === "object" && v !== null && !Array.isArray(v);

export function checkChange(change: ConfigChange): void {
  if (!isRecord(change)) throw invalidOption("change", `must be an object, got ${describeValue(change)}`);
  checkTime(change.at, "change.at");
  const wrong: Array<[string, unknown, boolean, string]> = [
    ["change.actor", change.actor, typeof change.actor === "string", "a string"],
    ["change.reason", change.reason, change.reason === undefined || typeof change.reason === "string", "a string when given"],
    ["change.changes", change.changes, isRecord(change.changes), "an object of { from, to } per field"],
  ];
  for (const [field, value, ok, expected] of wrong) if (!ok) throw invalidOption(field, `must be ${expected}, got ${describeValue(value)}`);
}

export function checkFailed(failure: FailedRange): void {
  checkEntry(failure, "failure");
  for (const field of ["error", "errorName"] as const) {
    if (typeof failure[field] !== "string") throw invalidOption(`failure.${field}`, `must be a string, got ${describeValue(failure[field])}`);
  }
  if (!Number.isSafeInteger(failure.attempts) || failure.attempts < 0) {
    throw invalidOption("failure.attempts", `must be a whole number ≥ 0, got ${describeValue(failure.attempts)}`);
  }
  checkTime(failure.at, "failure.at");
}

/** A list of entries, each checked (and with `withCheckAt`, its `checkAt` too), before anything is sent. */
export function checkList(entries: readonly RangeEntry[], withCheckAt = false): void {
  if (!Array.isArray(entries)) throw invalidOption("entries", `must be an array, got ${describeValue(entries)}`);
  entries.forEach((entry, i) => {
    checkEntry(entry, `entries[${i}]`);
    if (withCheckAt) checkTime((entry as OutstandingEntry).checkAt, `entries[${i}].checkAt`);
  });
}
