import { SuperSpreaderError, describeValue } from "./errors.js";
import type { IdRange } from "./ports.js";

/** Ids are kept below 10^20 so they fit 20 decimal digits (every 64-bit unsigned key does). */
export const MAX_ID = 10n ** 20n - 1n;

/** Anything a user may pass as an id: a bigint, a safe integer, or a decimal string. */
export type IdLike = bigint | number | string;

/**
 * Parses an id given as bigint, safe integer or decimal string, exactly.
 * Throws `INVALID_ARGUMENT` naming `field` for anything else (floats, unsafe
 * integers, negative numbers, `"1e3"`, `""`).
 *
 * @example
 * ```ts
 * parseId("9007199254740993", "initialId"); // 9007199254740993n
 * ```
 */
export function parseId(value: unknown, field: string): bigint {
  let id: bigint | undefined;
  if (typeof value === "bigint") id = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) id = BigInt(value);
  else if (typeof value === "string" && /^(0|[1-9][0-9]*)$/.test(value)) id = BigInt(value);
  if (id === undefined) {
    const hint =
      typeof value === "number" && Number.isInteger(value)
        ? " (integers beyond 2^53 are not exact as numbers: pass a bigint or a decimal string)"
        : "";
    throw new SuperSpreaderError(
      "INVALID_ARGUMENT",
      `${field} must be a non-negative integer id (bigint, safe integer or decimal string), got ${describeValue(value)}${hint}`,
      { field },
    );
  }
  if (id < 0n || id > MAX_ID) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${field} must be between 0 and ${MAX_ID}, got ${id}`, { field });
  }
  return id;
}

/** The id as a fixed-width, zero-padded 20-digit string: sorts lexicographically like the number. */
export function padId(id: bigint): string {
  return id.toString().padStart(20, "0");
}

/** How many ids an inclusive range holds. */
export function rangeSize(range: IdRange): bigint {
  return range.endId - range.beginId + 1n;
}

/** `"beginId..endId"`, for messages. */
export function formatRange(range: IdRange): string {
  return `${range.beginId}..${range.endId}`;
}

/**
 * Merges ranges into the ascending, disjoint, non-adjacent cover of the same ids.
 *
 * @example
 * ```ts
 * mergeRanges([{ beginId: 5n, endId: 9n }, { beginId: 1n, endId: 4n }]); // [{ beginId: 1n, endId: 9n }]
 * ```
 */
export function mergeRanges(ranges: readonly IdRange[]): IdRange[] {
  const sorted = [...ranges].sort((a, b) => (a.beginId < b.beginId ? -1 : a.beginId > b.beginId ? 1 : 0));
  const merged: { beginId: bigint; endId: bigint }[] = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    if (last && r.beginId <= last.endId + 1n) {
      if (r.endId > last.endId) last.endId = r.endId;
    } else {
      merged.push({ beginId: r.beginId, endId: r.endId });
    }
  }
  return merged;
}

/** The parts of `[minId, maxId]` not covered by `covered` (which need not be merged). */
export function findGaps(minId: bigint, maxId: bigint, covered: readonly IdRange[]): IdRange[] {
  const gaps: IdRange[] = [];
  let next = minId;
  for (const r of mergeRanges(covered)) {
    if (r.endId < next) continue;
    if (r.beginId > maxId) break;
    if (r.beginId > next) gaps.push({ beginId: next, endId: r.beginId - 1n });
    next = r.endId + 1n;
    if (next > maxId) break;
  }
  if (next <= maxId) gaps.push({ beginId: next, endId: maxId });
  return gaps;
}
