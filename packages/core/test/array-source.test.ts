import { describe, expect, it } from "vitest";
import { createArraySource, createIterableSource } from "../src/index.js";
import { world } from "./harness.js";

const config = { batchSize: 10, duration: 2, perSecondOnPeak: 10, perSecondOffPeak: 10 };

describe("array and iterable sources", () => {
  it("maps ids 1..n to the items: every item handled once, with the ledger, audit and output of a table", async () => {
    const accounts = Array.from({ length: 95 }, (_, i) => `acc_${i + 1}`);
    const source = createArraySource(accounts);
    const seen = new Map<string, number>();
    const w = world();
    w.spreader.define("accounts", {
      source,
      config: { ...config, output: {} },
      async handle(batch) {
        const items = source.itemsOf(batch);
        for (const account of items) seen.set(account, (seen.get(account) ?? 0) + 1);
        return { handled: items.length };
      },
    });
    await w.spreader.start("accounts");
    await w.run();
    expect([...seen.keys()].sort()).toEqual([...accounts].sort());
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    const status = await w.spreader.status("accounts");
    expect(status).toMatchObject({ status: "completed", minId: 1n, initialId: 95n });
    expect(status.progress.idsDone).toBe(95n);
    expect((await w.spreader.audit("accounts")).complete).toBe(true);
    const output = await w.spreader.output("accounts");
    // Highest ids first, from 95 down: the last batch, 1..5, holds 5 items.
    expect(output.entries.map((e) => [e.beginId, JSON.parse(e.result)]).at(-1)).toEqual([1n, { handled: 5 }]);
    expect(output.count).toBe(10);
  });

  it("clips ranges to 1..n, counts rows, snapshots the array and completes an empty one at once", async () => {
    const items = ["a", "b", "c"];
    const source = createArraySource(items);
    items.push("d");
    expect(source.length).toBe(3);
    expect(await source.maxId()).toBe(3n);
    expect(source.itemsOf({ beginId: 2n, endId: 10n })).toEqual(["b", "c"]);
    expect(source.itemsOf({ beginId: 4n, endId: 10n })).toEqual([]);
    expect(source.itemsOf({ beginId: 0n, endId: 1n })).toEqual(["a"]);
    expect(await source.capabilities.countRange!(0n, 100n)).toBe(3n);
    expect(() => source.itemsOf({ beginId: 3n, endId: 1n })).toThrow("range must have bigint ids with 0 ≤ beginId ≤ endId");
    const empty = createArraySource([]);
    expect([await empty.minId(), await empty.maxId()]).toEqual([null, null]);
    const w = world();
    w.spreader.define("nothing", { source: empty, config, handle: async () => {} });
    expect((await w.spreader.start("nothing")).status).toBe("completed");
  });

  it("materialises an async iterable once, in order, within maxItems", async () => {
    let reads = 0;
    async function* pages() {
      for (let page = 0; page < 3; page++) {
        reads += 1;
        for (let i = 0; i < 4; i++) yield { id: `row-${page * 4 + i}` };
      }
    }
    const source = await createIterableSource(pages());
    expect(reads).toBe(3);
    expect(source.length).toBe(12);
    expect(source.itemsOf({ beginId: 11n, endId: 12n })).toEqual([{ id: "row-10" }, { id: "row-11" }]);
    expect((await createIterableSource(new Set([1, 2, 2, 3]))).itemsOf({ beginId: 1n, endId: 9n })).toEqual([1, 2, 3]);
    await expect(createIterableSource(pages(), { maxItems: 5 })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      field: "maxItems",
      message: expect.stringContaining("iterable holds more than maxItems (5) items"),
    });
  });

  it("rejects what is not a list or an iterable, naming it", async () => {
    expect(() => createArraySource("abc" as never)).toThrow('items must be an array, got "abc" (for an iterable, use createIterableSource)');
    await expect(createIterableSource(42 as never)).rejects.toThrow("iterable must be an iterable or async iterable, got 42");
    await expect(createIterableSource([], { maxItems: -1 })).rejects.toThrow("maxItems must be a whole number ≥ 0, got -1");
  });
});
