import { SuperSpreaderError, describeValue } from "./errors.js";
import { MAX_ID } from "./ids.js";
import type { IdRange, QueueJob, RangeEntry } from "./ports.js";

/**
 * Backfill names become parts of Redis keys and job ids, so they are restricted
 * to a safe alphabet: letters, digits, `_`, `.` and `-`, starting with a letter
 * or digit, at most 100 characters.
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

export function checkName(name: unknown, field = "name"): asserts name is string {
  if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
    throw new SuperSpreaderError(
      "INVALID_ARGUMENT",
      `${field} must be 1–100 characters of letters, digits, "_", "." or "-" starting with a letter or digit, got ${describeValue(name)}`,
      { field },
    );
  }
}

export function checkRunId(runId: unknown): asserts runId is string {
  if (typeof runId !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(runId)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `runId must be 1–64 characters of letters, digits, "_" or "-", got ${describeValue(runId)}`, {
      field: "runId",
    });
  }
}

export function checkRange(range: IdRange, field = "range"): void {
  if (typeof range?.beginId !== "bigint" || typeof range.endId !== "bigint" || range.beginId < 0n || range.endId < range.beginId || range.endId > MAX_ID) {
    throw new SuperSpreaderError(
      "INVALID_ARGUMENT",
      `${field} must have bigint ids with 0 ≤ beginId ≤ endId ≤ ${MAX_ID}, got ${describeValue({ beginId: range?.beginId, endId: range?.endId })}`,
      { field },
    );
  }
}

/** A range with the cycle that carried it: the range checks, and a whole-number cycle ≥ 0. */
export function checkEntry(entry: RangeEntry, field = "entry"): void {
  checkRange(entry, field);
  if (!Number.isSafeInteger(entry.cycle) || entry.cycle < 0) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${field}.cycle must be a whole number ≥ 0, got ${describeValue(entry.cycle)}`, {
      field: `${field}.cycle`,
    });
  }
}

/** An instant or duration in ms: a finite number. */
export function checkTime(value: unknown, field: string): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${field} must be a finite number of epoch ms, got ${describeValue(value)}`, { field });
  }
}

/** A start rate limit: `perSecond` a finite number ≥ 0 or null, `burst` a whole number ≥ 1. */
export function checkStartRate(perSecond: unknown, burst: unknown): void {
  if (perSecond !== null && (typeof perSecond !== "number" || !Number.isFinite(perSecond) || perSecond < 0)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `perSecond must be a finite number ≥ 0 or null, got ${describeValue(perSecond)}`, { field: "perSecond" });
  }
  if (!Number.isSafeInteger(burst) || (burst as number) < 1) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `burst must be a whole number ≥ 1, got ${describeValue(burst)}`, { field: "burst" });
  }
}

/** A batch's timing: whole milliseconds ≥ 0 for `handlerMs` and `lateMs`. */
export function checkTiming(timing: { readonly handlerMs: unknown; readonly lateMs: unknown; readonly slotAt?: unknown }): void {
  for (const field of ["handlerMs", "lateMs"] as const) {
    const v = timing?.[field];
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      throw new SuperSpreaderError("INVALID_ARGUMENT", `timing.${field} must be a whole number of ms ≥ 0, got ${describeValue(v)}`, { field: `timing.${field}` });
    }
  }
  const slotAt = timing.slotAt;
  if (slotAt !== undefined && (typeof slotAt !== "number" || !Number.isFinite(slotAt))) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `timing.slotAt must be epoch ms, got ${describeValue(slotAt)}`, { field: "timing.slotAt" });
  }
}

export function checkLimit(limit: unknown): void {
  if (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 1) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `limit must be a whole number ≥ 1, got ${describeValue(limit)}`, { field: "limit" });
  }
}

/** Job ids: what every supported queue accepts (BullMQ rejects `:` and purely numeric ids). */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_.-]{1,200}$/;

/**
 * Checks a job against the JobQueue port's rules; adapters call it for every job
 * before writing any, so a bad job writes nothing.
 *
 * @example
 * ```ts
 * for (const job of jobs) assertValidJob(job);
 * ```
 */
export function assertValidJob(job: QueueJob): void {
  const where = `job ${describeValue(job?.id)}`;
  if (typeof job?.id !== "string" || !JOB_ID_PATTERN.test(job.id) || /^[0-9]+$/.test(job.id)) {
    throw new SuperSpreaderError(
      "INVALID_ARGUMENT",
      `${where}: id must be 1–200 characters of letters, digits, "_", "." or "-" and not purely numeric`,
      { field: "id" },
    );
  }
  if (typeof job.runAt !== "number" || !Number.isFinite(job.runAt)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${where}: runAt must be a finite epoch-ms number, got ${describeValue(job.runAt)}`, {
      field: "runAt",
    });
  }
  if (!Number.isSafeInteger(job.attempts) || job.attempts < 1) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${where}: attempts must be a whole number ≥ 1, got ${describeValue(job.attempts)}`, {
      field: "attempts",
    });
  }
  if (job.priority !== undefined && (!Number.isSafeInteger(job.priority) || job.priority < 1 || job.priority > 2_097_151)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${where}: priority must be a whole number from 1 to 2097151, got ${describeValue(job.priority)}`, {
      field: "priority",
    });
  }
  if (typeof job.data !== "object" || job.data === null) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${where}: data must be an object`, { field: "data" });
  }
}
