import type { ConfigChange, FailedRange, RangeEntry } from "@superspreader/core";
import { NAME_PATTERN, SuperSpreaderError, checkLimit, checkName, checkRange, checkRunId, describeValue } from "@superspreader/core";

// The argument rules are core's, so a name valid in the in-memory store is valid here. Neither
// allows `{` or `}`, which would move the Cluster hash tag, nor `:`, which separates key parts.
export { checkLimit, checkName, checkRange, checkRunId, describeValue };

function invalid(field: string, message: string): SuperSpreaderError {
  return new SuperSpreaderError("INVALID_ARGUMENT", `${field} ${message}`, { field });
}

export function checkPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== "string" || prefix.length === 0 || /[{}]/.test(prefix)) {
    throw invalid(
      "prefix",
      `must be a non-empty string without "{" or "}" (the store puts the backfill name in a {hash tag}), got ${describeValue(prefix)}`,
    );
  }
}

export function checkClient(client: unknown): void {
  if (typeof client !== "object" || client === null || typeof (client as { defineCommand?: unknown }).defineCommand !== "function") {
    throw invalid("client", `must be an ioredis Redis or Cluster instance, got ${describeValue(client)}`);
  }
}

export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name);
}




export function checkEntry(entry: RangeEntry, field: string): void {
  checkRange(entry, field);
  if (!Number.isSafeInteger(entry.cycle) || entry.cycle < 0) {
    throw invalid(`${field}.cycle`, `must be a whole number ≥ 0, got ${describeValue(entry.cycle)}`);
  }
}


export function checkTime(value: unknown, field: string): asserts value is number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(field, `must be epoch milliseconds (a whole number ≥ 0), got ${describeValue(value)}`);
  }
}

export function checkExpectedVersion(version: unknown): asserts version is number {
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw invalid("expectedVersion", `must be a whole number ≥ 0 (0 means "must not exist yet"), got ${describeValue(version)}`);
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
  if (json === undefined) throw invalid(field, `must be JSON-serialisable, got ${describeValue(value)}`);
  return json;
}

export function checkConfigChange(change: ConfigChange): void {
  if (typeof change !== "object" || change === null) throw invalid("change", `must be an object, got ${describeValue(change)}`);
  if (typeof change.at !== "number" || !Number.isFinite(change.at)) {
    throw invalid("change.at", `must be epoch milliseconds, got ${describeValue(change.at)}`);
  }
  if (typeof change.actor !== "string") throw invalid("change.actor", `must be a string, got ${describeValue(change.actor)}`);
  if (change.reason !== undefined && typeof change.reason !== "string") {
    throw invalid("change.reason", `must be a string when given, got ${describeValue(change.reason)}`);
  }
  if (typeof change.changes !== "object" || change.changes === null || Array.isArray(change.changes)) {
    throw invalid("change.changes", `must be an object of { from, to } per field, got ${describeValue(change.changes)}`);
  }
}

export function checkFailure(failure: FailedRange): void {
  checkEntry(failure, "failure");
  if (typeof failure.error !== "string") throw invalid("failure.error", `must be a string, got ${describeValue(failure.error)}`);
  if (typeof failure.errorName !== "string") {
    throw invalid("failure.errorName", `must be a string, got ${describeValue(failure.errorName)}`);
  }
  if (!Number.isSafeInteger(failure.attempts) || failure.attempts < 0) {
    throw invalid("failure.attempts", `must be a whole number ≥ 0, got ${describeValue(failure.attempts)}`);
  }
  if (typeof failure.at !== "number" || !Number.isFinite(failure.at)) {
    throw invalid("failure.at", `must be epoch milliseconds, got ${describeValue(failure.at)}`);
  }
}
