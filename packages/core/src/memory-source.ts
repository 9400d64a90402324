import { SuperSpreaderError } from "./errors.js";
import { parseId, type IdLike } from "./ids.js";
import type { IdSource } from "./ports.js";

/** Options of {@link createMemoryIdSource}: a dense range of ids, or an explicit list. */
export type MemoryIdSourceOptions =
  | {
      /** Smallest id (inclusive). */
      minId: IdLike;
      /** Largest id (inclusive). */
      maxId: IdLike;
    }
  | {
      /** The ids, in any order; duplicates are ignored. */
      ids: readonly IdLike[];
    };

/**
 * An IdSource over ids held in memory: a dense range `[minId, maxId]` or an explicit
 * (possibly sparse) list. For tests, demos, and backfills over a known id space.
 *
 * @example
 * ```ts
 * const source = createMemoryIdSource({ minId: 1n, maxId: 1_000_000n });
 * ```
 */
export function createMemoryIdSource(options: MemoryIdSourceOptions): IdSource {
  if ("ids" in options) {
    const ids = [...new Set(options.ids.map((id, i) => parseId(id, `ids[${i}]`)))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const lowerBound = (x: bigint): number => {
      let lo = 0;
      let hi = ids.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((ids[mid] as bigint) < x) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    return {
      capabilities: {
        countRange: async (beginId, endId) => BigInt(Math.max(0, lowerBound(endId + 1n) - lowerBound(beginId))),
      },
      minId: async () => ids[0] ?? null,
      maxId: async () => ids[ids.length - 1] ?? null,
    };
  }
  const minId = parseId(options.minId, "minId");
  const maxId = parseId(options.maxId, "maxId");
  if (maxId < minId) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `maxId (${maxId}) must be ≥ minId (${minId})`, { field: "maxId" });
  }
  return {
    capabilities: {
      countRange: async (beginId, endId) => {
        const lo = beginId > minId ? beginId : minId;
        const hi = endId < maxId ? endId : maxId;
        return hi >= lo ? hi - lo + 1n : 0n;
      },
    },
    minId: async () => minId,
    maxId: async () => maxId,
  };
}
