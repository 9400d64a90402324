import { MAX_ID, SuperSpreaderError } from "@superspreader/core";
import type { ConfigChange, FailedRange, IdRange, RangeEntry } from "@superspreader/core";

// Same alphabets as core's in-memory store, so a name valid there is valid here. Neither
// allows `{` or `}`, which would move the Cluster hash tag, nor `:`, which separates key parts.
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const RUN_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** A value for an error message: strings quoted, bigints with `n`. (core's describeValue is not exported.) */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value !== "object" || value === null) return String(value);
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
  } catch {
    return Object.prototype.toString.call(value);
  }
}

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

export function checkName(name: unknown): asserts name is string {
  if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
    throw invalid(
      "name",
      `must be 1–100 characters of letters, digits, "_", "." or "-" starting with a letter or digit, got ${describeValue(name)}`,
    );
  }
}

export function checkRunId(runId: unknown): asserts runId is string {
  if (typeof runId !== "string" || !RUN_ID_PATTERN.test(runId)) {
    throw invalid("runId", `must be 1–64 characters of letters, digits, "_" or "-", got ${describeValue(runId)}`);
  }
}

export function checkRange(range: IdRange, field: string): void {
  const { beginId, endId } = (range ?? {}) as Partial<IdRange>;
  if (typeof beginId !== "bigint" || typeof endId !== "bigint" || beginId < 0n || endId < beginId || endId > MAX_ID) {
    throw invalid(field, `must have bigint ids with 0 ≤ beginId ≤ endId ≤ ${MAX_ID}, got ${describeValue({ beginId, endId })}`);
  }
}

export function checkEntry(entry: RangeEntry, field: string): void {
  checkRange(entry, field);
  if (!Number.isSafeInteger(entry.cycle) || entry.cycle < 0) {
    throw invalid(`${field}.cycle`, `must be a whole number ≥ 0, got ${describeValue(entry.cycle)}`);
  }
}

export function checkLimit(limit: unknown): asserts limit is number {
  if (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 1) {
    throw invalid("limit", `must be a whole number ≥ 1, got ${describeValue(limit)}`);
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
