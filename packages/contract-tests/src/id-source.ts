import type { IdSource } from "@superspreader/core";
import { afterEach, describe, expect, it } from "vitest";

/** What an IdSource factory returns for a given set of ids. */
export interface IdSourceHarness {
  source: IdSource;
  cleanup?: () => Promise<void>;
}

/** Opt-outs, each for a documented limit of the source. */
export interface IdSourceContractOptions {
  /** The source's column cannot hold ids beyond 2^53 (e.g. a 32-bit integer column): skip that test. */
  skipBigIds?: boolean;
}

const BIG = 9_223_372_036_854_775_807n;

/**
 * The IdSource conformance suite. `factory(ids)` must return a source whose rows
 * have exactly these ids (a fresh table filled with them, for a database source).
 *
 * @example
 * ```ts
 * import { describeIdSourceContract } from "@superspreader/contract-tests";
 * describeIdSourceContract("memory", async (ids) => ({ source: createMemoryIdSource({ ids }) }));
 * ```
 */
export function describeIdSourceContract(
  name: string,
  factory: (ids: readonly bigint[]) => Promise<IdSourceHarness>,
  options: IdSourceContractOptions = {},
): void {
  describe(`IdSource contract: ${name}`, () => {
    let harness: IdSourceHarness | undefined;
    const open = async (ids: readonly bigint[]) => {
      harness = await factory(ids);
      return harness.source;
    };
    afterEach(async () => {
      await harness?.cleanup?.();
      harness = undefined;
    });

    it("returns null bounds for an empty source", async () => {
      const source = await open([]);
      expect(await source.minId()).toBeNull();
      expect(await source.maxId()).toBeNull();
    });

    it("returns the smallest and largest id as bigints", async () => {
      const source = await open([70n, 5n, 1000n, 6n]);
      expect(await source.minId()).toBe(5n);
      expect(await source.maxId()).toBe(1000n);
    });

    it.skipIf(options.skipBigIds === true)("keeps ids beyond 2^53 exact", async () => {
      const source = await open([9_007_199_254_740_993n, BIG]);
      expect(await source.minId()).toBe(9_007_199_254_740_993n);
      expect(await source.maxId()).toBe(BIG);
      if (source.capabilities.countRange) {
        expect(await source.capabilities.countRange(BIG, BIG)).toBe(1n);
        expect(await source.capabilities.countRange(9_007_199_254_740_994n, BIG - 1n)).toBe(0n);
      }
    });

    it("counts rows in an inclusive range when it can", async () => {
      const source = await open([1n, 2n, 3n, 10n, 11n, 50n]);
      const count = source.capabilities.countRange;
      if (!count) return;
      expect(await count(1n, 3n)).toBe(3n);
      expect(await count(3n, 10n)).toBe(2n);
      expect(await count(12n, 49n)).toBe(0n);
      expect(await count(0n, 100n)).toBe(6n);
    });
  });
}
