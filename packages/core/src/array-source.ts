import { SuperSpreaderError, describeValue } from "./errors.js";
import type { IdRange, IdSource } from "./ports.js";
import { checkRange } from "./validate-args.js";

/**
 * An {@link IdSource} over a list held in memory: ids `1..length` stand for the items, item `id - 1` for id
 * `id`. A handler gets its batch's items with {@link ArraySource.itemsOf}; pacing, the ledger, audit, ETA and
 * collected output work as for a table.
 */
export interface ArraySource<T> extends IdSource {
  /** How many items (the largest id). */
  readonly length: number;
  /**
   * The items of a range, in id order: ids outside `1..length` have none.
   *
   * @example
   * ```ts
   * async handle(batch) { for (const account of source.itemsOf(batch)) await notify(account); }
   * ```
   */
  itemsOf(range: IdRange): T[];
}

/** Options of {@link createIterableSource}. */
export interface IterableSourceOptions {
  /**
   * The most items read from the iterable; one more is an error (`INVALID_ARGUMENT`), so an endless or
   * unexpectedly huge stream fails at start instead of exhausting the memory.
   * @default 10_000_000
   */
  readonly maxItems?: number;
}

/**
 * A source over an array: ids `1..items.length` map to the items (a snapshot: later changes to the array are
 * not seen). Every process that runs the backfill's batches must build the same list in the same order (the
 * same file, the same query with an ORDER BY), since a batch finds its items by id.
 *
 * @example
 * ```ts
 * const accounts = createArraySource(["acc_17", "acc_42", "acc_99"]);
 * spreader.define("notify-accounts", {
 *   source: accounts,
 *   config: { batchSize: 100, duration: 10, perSecondOnPeak: 1, perSecondOffPeak: 5 },
 *   async handle(batch) {
 *     for (const account of accounts.itemsOf(batch)) await notify(account);
 *   },
 * });
 * ```
 */
export function createArraySource<T>(items: readonly T[]): ArraySource<T> {
  if (!Array.isArray(items)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `items must be an array, got ${describeValue(items)} (for an iterable, use createIterableSource)`, { field: "items" });
  }
  const list: readonly T[] = [...items];
  const n = BigInt(list.length);
  // The part of [beginId, endId] inside 1..n, as array indexes [from, to); empty when outside.
  const span = (beginId: bigint, endId: bigint): [number, number] => {
    const lo = beginId < 1n ? 1n : beginId;
    const hi = endId > n ? n : endId;
    return hi < lo ? [0, 0] : [Number(lo) - 1, Number(hi)];
  };
  return {
    length: list.length,
    capabilities: {
      countRange: async (beginId, endId) => {
        const [from, to] = span(beginId, endId);
        return BigInt(to - from);
      },
    },
    minId: async () => (list.length === 0 ? null : 1n),
    maxId: async () => (list.length === 0 ? null : n),
    itemsOf(range) {
      checkRange(range);
      const [from, to] = span(range.beginId, range.endId);
      return list.slice(from, to);
    },
  };
}

/**
 * A source over an iterable or async iterable (lines of a CSV file, pages of an API, a cursor over a query),
 * **materialised**: read to the end once, here, into an array source. Batches run in any order (highest ids
 * first, retried, requeued after a crash), each needing its items by id at once; a stream cannot seek back to
 * them without being read again from the start, so it is read once and kept. For lists too large to hold,
 * write them to a table and use a table source. As with {@link createArraySource}, every process must read
 * the same items in the same order.
 *
 * @example
 * ```ts
 * import { createReadStream } from "node:fs";
 * import { createInterface } from "node:readline";
 * const lines = await createIterableSource(createInterface({ input: createReadStream("accounts.csv") }));
 * spreader.define("import-accounts", { source: lines, config, handle: async (batch) => importRows(lines.itemsOf(batch)) });
 * ```
 */
export async function createIterableSource<T>(iterable: Iterable<T> | AsyncIterable<T>, options: IterableSourceOptions = {}): Promise<ArraySource<T>> {
  const maxItems = options.maxItems ?? 10_000_000;
  if (!Number.isSafeInteger(maxItems) || maxItems < 0) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `maxItems must be a whole number ≥ 0, got ${describeValue(maxItems)}`, { field: "maxItems" });
  }
  const it = iterable as Partial<Iterable<T> & AsyncIterable<T>> | null;
  if (it === null || typeof it !== "object" || (typeof it[Symbol.asyncIterator] !== "function" && typeof it[Symbol.iterator] !== "function")) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `iterable must be an iterable or async iterable, got ${describeValue(iterable)}`, { field: "iterable" });
  }
  const items: T[] = [];
  for await (const item of iterable) {
    if (items.length === maxItems) {
      throw new SuperSpreaderError("INVALID_ARGUMENT", `iterable holds more than maxItems (${maxItems}) items: raise maxItems, or write them to a table and use a table source`, {
        field: "maxItems",
      });
    }
    items.push(item);
  }
  return createArraySource(items);
}
