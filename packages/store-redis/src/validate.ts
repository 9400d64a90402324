import { SuperSpreaderError } from "@superspreader/core";
import type { ConfigChange, FailedRange, OutstandingEntry, RangeEntry } from "@superspreader/core";
import { checkEntry, checkTime, describeValue, invalidOption } from "@superspreader/core/adapter";

/*
 * The rules only this store has. Names, run ids, ranges, entries, limits and times are
 * checked with core's adapter helpers, so what the in-memory store accepts this one
 * accepts too. Core's names allow neither `{` nor `}`, which would move the Cluster hash
 * tag, nor `:`, which separates key parts.
 */

export function checkPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== "string" || prefix.length === 0 || /[{}]/.test(prefix)) {
    throw invalidOption(
      "prefix",
      `must be a non-empty string without "{" or "}" (the store puts the backfill name in a {hash tag}), got ${describeValue(prefix)}`,
    );
  }
}

export function checkClient(client: unknown): void {
  if (typeof client !== "object" || client === null || typeof (client as { defineCommand?: unknown }).defineCommand !== "function") {
    throw invalidOption("client", `must be an ioredis Redis or Cluster instance, got ${describeValue(client)}`);
  }
}

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
