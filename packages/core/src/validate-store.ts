import { SuperSpreaderError } from "./errors.js";
import { describeValue } from "./errors.js";
import { invalidOption } from "./options.js";
import type { ConfigChange, FailedRange, OutputEntry, OutstandingEntry, RangeEntry } from "./ports.js";
import { checkEntry, checkLimit, checkRange, checkTime } from "./validate-args.js";

/*
 * The argument checks every StateStore makes before it writes anything, in one place so that each
 * store (in memory, Redis, SQL) rejects the same values with the same error, naming the field.
 */

/**
 * Checks a compare-and-set's expected version: a whole number ≥ 0 (0 = must not exist yet).
 *
 * @example
 * ```ts
 * checkExpectedVersion(expectedVersion); // throws INVALID_ARGUMENT naming "expectedVersion"
 * ```
 */
export function checkExpectedVersion(version: unknown): asserts version is number {
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw invalidOption("expectedVersion", `must be a whole number ≥ 0 (0 means "must not exist yet"), got ${describeValue(version)}`);
  }
}

/** `JSON.stringify(value)`, or INVALID_ARGUMENT when the value has no JSON form. */
export function toJson(value: unknown, field: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${field} must be JSON-serialisable: ${(error as Error).message}`, { field, cause: error });
  }
  if (json === undefined) throw invalidOption(field, `must be JSON-serialisable, got ${describeValue(value)}`);
  return json;
}

/** Checks a config history entry: time, actor, optional reason, and `{ from, to }` changes. */
export function checkConfigChange(change: ConfigChange): void {
  if (typeof change !== "object" || change === null) throw invalidOption("change", `must be an object, got ${describeValue(change)}`);
  checkTime(change.at, "change.at");
  if (typeof change.actor !== "string") throw invalidOption("change.actor", `must be a string, got ${describeValue(change.actor)}`);
  if (change.reason !== undefined && typeof change.reason !== "string") {
    throw invalidOption("change.reason", `must be a string when given, got ${describeValue(change.reason)}`);
  }
  if (typeof change.changes !== "object" || change.changes === null || Array.isArray(change.changes)) {
    throw invalidOption("change.changes", `must be an object of { from, to } per field, got ${describeValue(change.changes)}`);
  }
}

/** Checks a failed range before it is recorded: the entry, its error and name, attempts and time. */
export function checkFailure(failure: FailedRange): void {
  checkEntry(failure, "failure");
  if (typeof failure.error !== "string") throw invalidOption("failure.error", `must be a string, got ${describeValue(failure.error)}`);
  if (typeof failure.errorName !== "string") {
    throw invalidOption("failure.errorName", `must be a string, got ${describeValue(failure.errorName)}`);
  }
  if (!Number.isSafeInteger(failure.attempts) || failure.attempts < 0) {
    throw invalidOption("failure.attempts", `must be a whole number ≥ 0, got ${describeValue(failure.attempts)}`);
  }
  checkTime(failure.at, "failure.at");
}

/** A list of entries, each checked (and with `withCheckAt`, its `checkAt` too), before anything is sent. */
export function checkEntries(entries: readonly RangeEntry[], withCheckAt = false): void {
  if (!Array.isArray(entries)) throw invalidOption("entries", `must be an array, got ${describeValue(entries)}`);
  entries.forEach((entry, i) => {
    checkEntry(entry, `entries[${i}]`);
    if (withCheckAt) checkTime((entry as OutstandingEntry).checkAt, `entries[${i}].checkAt`);
  });
}

/**
 * Checks `addOutput`'s arguments before anything is written: the range, time and JSON text of the entry,
 * and the bound. Returns the result's UTF-8 length, which the store counts.
 *
 * @example
 * ```ts
 * const bytes = checkOutput(entry, maxBytes); // throws INVALID_ARGUMENT naming "entry.result" or "maxBytes"
 * ```
 */
export function checkOutput(entry: OutputEntry, maxBytes: number): number {
  if (typeof entry !== "object" || entry === null) throw invalidOption("entry", `must be an object, got ${describeValue(entry)}`);
  checkRange(entry, "entry");
  checkTime(entry.at, "entry.at");
  if (typeof entry.result !== "string") throw invalidOption("entry.result", `must be JSON text, got ${describeValue(entry.result)}`);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw invalidOption("maxBytes", `must be a whole number of bytes ≥ 1, got ${describeValue(maxBytes)}`);
  return new TextEncoder().encode(entry.result).length;
}

/**
 * Checks `listOutput`'s cursor (a whole number ≥ 0) and limit.
 *
 * @example
 * ```ts
 * checkOutputPage(cursor, limit); // throws INVALID_ARGUMENT naming "cursor" or "limit"
 * ```
 */
export function checkOutputPage(cursor: number, limit: number): void {
  if (!Number.isSafeInteger(cursor) || cursor < 0) throw invalidOption("cursor", `must be a whole number ≥ 0 (0, or a page's next), got ${describeValue(cursor)}`);
  checkLimit(limit);
}
