import { MAX_ID, mergeRanges, type IdRange } from "@superspreader/core";
import { describe, expect, it } from "vitest";
import { createRedisStateStore } from "../src/index.js";
import { countCommands, newClient, randomPrefix } from "./helpers.js";

const client = newClient();
const run = "r1";
const BIG = 2n ** 63n - 1n;

function fresh() {
  const prefix = randomPrefix();
  return { prefix, store: createRedisStateStore({ client, prefix }) };
}

/** A small deterministic PRNG, so a failure reproduces. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

const covered = (ledger: readonly IdRange[], r: IdRange): boolean => ledger.some((l) => l.beginId <= r.beginId && l.endId >= r.endId);

describe("markDone ledger", () => {
  it("merges out-of-order completions into one range", async () => {
    const { store } = fresh();
    const ranges = Array.from({ length: 60 }, (_, i) => ({ beginId: BigInt(i * 5), endId: BigInt(i * 5 + 4), cycle: 0 }));
    const random = lcg(7);
    const shuffled = [...ranges].sort(() => random() - 0.5);
    for (const r of shuffled) expect(await store.markDone("bf", run, r, 1_000)).toBe(true);
    expect(await store.listDone("bf", run)).toEqual([{ beginId: 0n, endId: 299n }]);
    expect(await store.metrics("bf", run)).toMatchObject({ batchesDone: 60, idsDone: "300" });
  });

  it("returns false for duplicates and covered sub-ranges and counts nothing for them", async () => {
    const { store } = fresh();
    expect(await store.markDone("bf", run, { beginId: 10n, endId: 20n, cycle: 0 }, 1)).toBe(true);
    expect(await store.markDone("bf", run, { beginId: 10n, endId: 20n, cycle: 0 }, 2)).toBe(false);
    expect(await store.markDone("bf", run, { beginId: 12n, endId: 12n, cycle: 0 }, 3)).toBe(false);
    expect(await store.markDone("bf", run, { beginId: 10n, endId: 10n, cycle: 0 }, 4)).toBe(false);
    expect(await store.markDone("bf", run, { beginId: 20n, endId: 20n, cycle: 0 }, 5)).toBe(false);
    // Partly new: counted, and merged with what it overlaps.
    expect(await store.markDone("bf", run, { beginId: 15n, endId: 25n, cycle: 0 }, 6)).toBe(true);
    expect(await store.markDone("bf", run, { beginId: 5n, endId: 9n, cycle: 0 }, 7)).toBe(true);
    expect(await store.listDone("bf", run)).toEqual([{ beginId: 5n, endId: 25n }]);
    expect(await store.metrics("bf", run)).toMatchObject({ batchesDone: 3, idsDone: "27", lastDoneAt: 7 });
  });

  it("swallows every range a wide completion spans", async () => {
    const { store } = fresh();
    for (const b of [10n, 30n, 50n, 70n]) await store.markDone("bf", run, { beginId: b, endId: b + 4n, cycle: 0 }, 1);
    await store.markDone("bf", run, { beginId: 100n, endId: 110n, cycle: 0 }, 1);
    // 12..69 touches 10..14 (overlap), swallows 30..34 and 50..54, and is adjacent to 70..74.
    expect(await store.markDone("bf", run, { beginId: 12n, endId: 69n, cycle: 0 }, 1)).toBe(true);
    expect(await store.listDone("bf", run)).toEqual([
      { beginId: 10n, endId: 74n },
      { beginId: 100n, endId: 110n },
    ]);
  });

  it("agrees with a reference model on 400 random completions", async () => {
    const { store } = fresh();
    const random = lcg(42);
    let model: IdRange[] = [];
    for (let i = 0; i < 400; i++) {
      const beginId = BigInt(Math.floor(random() * 3000));
      const range = { beginId, endId: beginId + BigInt(Math.floor(random() * 40)) };
      const expected = !covered(model, range);
      model = mergeRanges([...model, range]);
      expect(await store.markDone("bf", run, { ...range, cycle: i }, 1), `completion ${i}: ${range.beginId}..${range.endId}`).toBe(expected);
    }
    expect(await store.listDone("bf", run)).toEqual(model);
  });

  it("stays exact at 0, beyond 2^53, at 2^63-1 and beyond 64 bits", async () => {
    const { store } = fresh();
    const odd = 2n ** 53n + 1n;
    await store.markDone("bf", run, { beginId: 0n, endId: 0n, cycle: 0 }, 1);
    await store.markDone("bf", run, { beginId: odd, endId: odd, cycle: 0 }, 1);
    await store.markDone("bf", run, { beginId: odd + 2n, endId: odd + 2n, cycle: 0 }, 1);
    await store.markDone("bf", run, { beginId: BIG - 1n, endId: BIG, cycle: 0 }, 1);
    await store.markDone("bf", run, { beginId: BIG + 1n, endId: BIG + 1n, cycle: 0 }, 1); // adjacent across 2^63
    await store.markDone("bf", run, { beginId: MAX_ID, endId: MAX_ID, cycle: 0 }, 1);
    expect(await store.listDone("bf", run)).toEqual([
      { beginId: 0n, endId: 0n },
      { beginId: odd, endId: odd },
      { beginId: odd + 2n, endId: odd + 2n },
      { beginId: BIG - 1n, endId: BIG + 1n },
      { beginId: MAX_ID, endId: MAX_ID },
    ]);
    // Filling the one-id gap at 2^53+2 (not a double) joins its neighbours.
    expect(await store.markDone("bf", run, { beginId: odd + 1n, endId: odd + 1n, cycle: 0 }, 1)).toBe(true);
    expect((await store.listDone("bf", run))[1]).toEqual({ beginId: odd, endId: odd + 2n });
  });

  it("counts idsDone past the int64 range exactly", async () => {
    const { store } = fresh();
    expect(await store.markDone("bf", run, { beginId: 0n, endId: MAX_ID - 1n, cycle: 0 }, 1)).toBe(true);
    expect(await store.markDone("bf", run, { beginId: MAX_ID, endId: MAX_ID, cycle: 0 }, 1)).toBe(true);
    expect(await store.listDone("bf", run)).toEqual([{ beginId: 0n, endId: MAX_ID }]);
    const m = await store.metrics("bf", run);
    expect(m.idsDone).toBe((MAX_ID + 1n).toString()); // 10^20 > 2^64
    expect(m.recent).toEqual([{ minute: 0, ids: (MAX_ID + 1n).toString(), batches: 2, failures: 0, handlerMs: 0, lateMs: 0 }]);
  });

  it("keeps per-minute buckets for the last 60 minutes only", async () => {
    const { prefix, store } = fresh();
    const t0 = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 90; i++) await store.markDone("bf", run, { beginId: BigInt(i * 10), endId: BigInt(i * 10 + 9), cycle: 0 }, t0 + i * 60_000);
    const m = await store.metrics("bf", run);
    expect(m.recent).toHaveLength(60);
    expect(m.recent[0]).toEqual({ minute: t0 + 30 * 60_000, ids: "10", batches: 1, failures: 0, handlerMs: 0, lateMs: 0 });
    expect(m.recent[59]).toEqual({ minute: t0 + 89 * 60_000, ids: "10", batches: 1, failures: 0, handlerMs: 0, lateMs: 0 });
    // Bounded in Redis too, not just in the reply.
    expect(await client.hlen(`${prefix}:{bf}:run:${run}:minutes`)).toBe(60);
  });

  it("is exactly one Redis command per call", async () => {
    const { prefix } = fresh();
    const own = newClient(); // a fresh socket, so the first call sends EVAL and the next EVALSHA
    const store = createRedisStateStore({ client: own, prefix });
    const first = await countCommands(own, prefix, () => store.markDone("bf", run, { beginId: 1n, endId: 10n, cycle: 0 }, 1));
    const second = await countCommands(own, prefix, () => store.markDone("bf", run, { beginId: 11n, endId: 20n, cycle: 0 }, 1));
    const duplicate = await countCommands(own, prefix, () => store.markDone("bf", run, { beginId: 1n, endId: 20n, cycle: 0 }, 1));
    expect(first.map((c) => c[0]?.toLowerCase())).toEqual(["eval"]);
    expect(second.map((c) => c[0]?.toLowerCase())).toEqual(["evalsha"]);
    expect(duplicate).toHaveLength(1);
  });
});

describe("concurrency", () => {
  // Several connections, so the calls really race inside Redis rather than queue on one socket.
  const clients = Array.from({ length: 5 }, () => newClient());

  it("merges 200 concurrent adjacent completions into one range", async () => {
    const prefix = randomPrefix();
    const stores = clients.map((c) => createRedisStateStore({ client: c, prefix }));
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        stores[i % stores.length]!.markDone("bf", run, { beginId: BigInt(i * 7), endId: BigInt(i * 7 + 6), cycle: 0 }, 1_000),
      ),
    );
    expect(results.every(Boolean)).toBe(true);
    expect(await stores[0]!.listDone("bf", run)).toEqual([{ beginId: 0n, endId: 1399n }]);
    expect(await stores[0]!.metrics("bf", run)).toMatchObject({ batchesDone: 200, idsDone: "1400" });
  });

  it("lets exactly one of 50 concurrent compareAndSet on one version win", async () => {
    const prefix = randomPrefix();
    const stores = clients.map((c) => createRedisStateStore({ client: c, prefix }));
    expect(await stores[0]!.compareAndSet("bf", 0, { n: 0 })).toBe(1);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => stores[i % stores.length]!.compareAndSet("bf", 1, { n: i + 1 })));
    expect(results.filter((r) => r !== null)).toEqual([2]);
    const winner = results.indexOf(2);
    expect(await stores[0]!.get("bf")).toEqual({ version: 2, value: { n: winner + 1 } });
  });

  it("lets exactly one of 50 concurrent creations win", async () => {
    const prefix = randomPrefix();
    const stores = clients.map((c) => createRedisStateStore({ client: c, prefix }));
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => stores[i % stores.length]!.compareAndSet("bf", 0, { n: i })));
    expect(results.filter((r) => r !== null)).toEqual([1]);
    expect(await stores[0]!.list()).toEqual(["bf"]);
  });
});
