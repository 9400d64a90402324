import { MAX_ID, createMemoryStateStore, type OutstandingEntry, type RangeEntry, type StateStore } from "@superspreader/core";
import { describe, expect, it } from "vitest";
import { createRedisStateStore } from "../src/index.js";
import { countCommands, newClient, randomPrefix } from "./helpers.js";

const client = newClient();
const run = "r1";
const ODD = 2n ** 53n + 1n; // not a double
const out = (beginId: bigint, endId: bigint, cycle: number, checkAt: number): OutstandingEntry => ({ beginId, endId, cycle, checkAt });
const entry = (beginId: bigint, endId: bigint, cycle: number): RangeEntry => ({ beginId, endId, cycle });

function fresh() {
  const prefix = randomPrefix();
  return { prefix, store: createRedisStateStore({ client, prefix }), key: (k: string) => `${prefix}:{bf}:run:${run}:${k}` };
}

describe("outstanding entries", () => {
  it("stay exact at 0, beyond 2^53 and at the largest id, through add, list, touch, markDone and reclaim", async () => {
    const { store } = fresh();
    const edges = [out(0n, 0n, 0, 1), out(ODD, ODD, 1, 2), out(MAX_ID - 1n, MAX_ID, Number.MAX_SAFE_INTEGER, 3), out(ODD + 1n, ODD + 2n, 2, 4)];
    await store.addOutstanding("bf", run, edges);
    expect(await store.listOutstanding("bf", run, 10, 10)).toEqual(edges);
    await store.touchOutstanding("bf", run, [entry(ODD, ODD, 1)], 7);
    expect(await store.markDone("bf", run, entry(MAX_ID - 1n, MAX_ID, Number.MAX_SAFE_INTEGER), 5)).toBe(true);
    expect(await store.markDone("bf", run, entry(0n, 0n, 0), 5)).toBe(true);
    expect(await store.listOutstanding("bf", run, 10, 10)).toEqual([out(ODD + 1n, ODD + 2n, 2, 4), out(ODD, ODD, 1, 7)]);
    // The ledger now covers 2^53+1 (another cycle's completion), so only the other entry moves.
    await store.markDone("bf", run, entry(ODD, ODD, 9), 5);
    expect(await store.reclaimOutstanding("bf", run, [entry(ODD, ODD, 1), entry(ODD + 1n, ODD + 2n, 2)])).toEqual([entry(ODD + 1n, ODD + 2n, 2)]);
    expect(await store.listDeferred("bf", run, 10)).toEqual([entry(ODD + 1n, ODD + 2n, 2)]);
    expect(await store.listOutstanding("bf", run, 10, 10)).toEqual([]);
  });

  it("are listed earliest first and, at the same checkAt, highest end first, then lowest cycle, as the in-memory store does", async () => {
    const redis = fresh().store;
    const memory = createMemoryStateStore();
    const entries = [
      out(1n, 10n, 5, 100),
      out(11n, 20n, 3, 100),
      out(11n, 20n, 1, 100),
      out(MAX_ID - 9n, MAX_ID, 2, 100),
      out(21n, 30n, 0, 50),
      out(31n, 40n, 0, 150),
    ];
    for (const store of [redis, memory]) await store.addOutstanding("bf", run, entries);
    for (const limit of [1, 2, 3, 6, 10]) {
      expect(await redis.listOutstanding("bf", run, 120, limit), `limit ${limit}`).toEqual(await memory.listOutstanding("bf", run, 120, limit));
    }
    expect((await redis.listOutstanding("bf", run, 1_000, 10)).map((e) => `${e.endId}/${e.cycle}`)).toEqual([
      "30/0",
      `${MAX_ID}/2`,
      "20/1",
      "20/3",
      "10/5",
      "40/0",
    ]);
  });

  it("keep any finite checkAt exactly: fractional, negative and huge ones", async () => {
    const { store } = fresh();
    const odd = [out(1n, 1n, 0, -5.25), out(2n, 2n, 0, 0.1), out(3n, 3n, 0, 1_764_547_200_000.5), out(4n, 4n, 0, 1e300)];
    await store.addOutstanding("bf", run, odd);
    expect(await store.listOutstanding("bf", run, Number.MAX_VALUE, 10)).toEqual(odd);
    expect(await store.listOutstanding("bf", run, 0.1, 10)).toEqual(odd.slice(0, 2));
    await store.touchOutstanding("bf", run, [entry(4n, 4n, 0)], -1e-300);
    expect(await store.listOutstanding("bf", run, 0, 10)).toEqual([out(1n, 1n, 0, -5.25), out(4n, 4n, 0, -1e-300)]);
  });

  it("reclaims a long list in one call, once per entry even when listed twice, in the order given", async () => {
    const { store } = fresh();
    const many = Array.from({ length: 1_200 }, (_, i) => out(BigInt(i * 10 + 1), BigInt(i * 10 + 10), i % 3, i));
    await store.addOutstanding("bf", run, many);
    await store.markDone("bf", run, entry(11n, 20n, 1), 1); // recorded meanwhile
    const asked = [...many].reverse().map(({ beginId, endId, cycle }) => ({ beginId, endId, cycle }));
    const moved = await store.reclaimOutstanding("bf", run, [...asked, asked[0] as RangeEntry]);
    expect(moved).toEqual(asked.filter((e) => e.beginId !== 11n));
    expect(await store.listOutstanding("bf", run, Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
    expect(await store.metrics("bf", run)).toMatchObject({ batchesLost: 1_199, batchesDeferred: 1_199 });
  });

  it("reclaims onto a deferred entry that already exists without counting it deferred twice", async () => {
    const { store } = fresh();
    await store.addOutstanding("bf", run, [out(1n, 10n, 2, 1)]);
    await store.addDeferred("bf", run, entry(1n, 10n, 2)); // clears the outstanding entry
    await store.addOutstanding("bf", run, [out(1n, 10n, 2, 1)]); // a repeated enqueue records it again
    expect(await store.reclaimOutstanding("bf", run, [entry(1n, 10n, 2)])).toEqual([entry(1n, 10n, 2)]);
    expect(await store.metrics("bf", run)).toMatchObject({ batchesLost: 1, batchesDeferred: 1 });
    expect(await store.listDeferred("bf", run, 10)).toEqual([entry(1n, 10n, 2)]);
  });

  it("store checkAt as the score of a compact member", async () => {
    const { store, key } = fresh();
    await store.addOutstanding("bf", run, [out(5n, 9n, 3, 1_764_547_200_000)]);
    expect(await client.zrange(key("outstanding"), "0", "-1", "WITHSCORES")).toEqual([
      "99999999999999999990:0000000000000003:00000000000000000005",
      "1764547200000",
    ]);
  });
});

describe("failure counts", () => {
  it("read buckets written by the previous version, and keep the two-part form while a minute has no failures", async () => {
    const { store, key } = fresh();
    const t0 = Date.UTC(2026, 10, 22, 12, 0, 0);
    // As the previous version left a run: "<ids>:<batches>" buckets, no new counters, no outstanding set.
    await client.hset(key("metrics"), "batchesDone", "3", "idsDone", "30", "lastDoneAt", String(t0 + 1_000));
    await client.hset(key("minutes"), String(t0 - 60_000), "20:2", String(t0), "10:1");
    expect(await store.metrics("bf", run)).toMatchObject({
      batchesDone: 3,
      batchesLost: 0,
      consecutiveFailures: 0,
      recent: [
        { minute: t0 - 60_000, ids: "20", batches: 2, failures: 0, handlerMs: 0, lateMs: 0 },
        { minute: t0, ids: "10", batches: 1, failures: 0, handlerMs: 0, lateMs: 0 },
      ],
    });
    expect(await store.recordFailure("bf", run, t0 + 2_000)).toEqual({ consecutive: 1, recentFailures: 1, recentDone: 3 });
    expect(await store.markDone("bf", run, entry(31n, 40n, 0), t0 + 3_000)).toBe(true);
    expect(await store.markDone("bf", run, entry(41n, 50n, 0), t0 + 61_000)).toBe(true);
    expect(await client.hgetall(key("minutes"))).toEqual({ [t0 - 60_000]: "20:2", [t0]: "20:2:1", [t0 + 60_000]: "10:1" });
    expect((await store.metrics("bf", run)).consecutiveFailures).toBe(0);
  });

  it("count in the bucket of any finite time, as the in-memory store does", async () => {
    const redis = fresh().store;
    const memory = createMemoryStateStore();
    for (const store of [redis, memory]) {
      await store.markDone("bf", run, entry(1n, 10n, 0), 1.5);
      await store.recordFailure("bf", run, -0.5);
      await store.recordFailure("bf", run, 59_999.9);
    }
    expect(await redis.metrics("bf", run)).toEqual(await memory.metrics("bf", run));
    expect((await redis.metrics("bf", run)).recent).toEqual([
      { minute: -60_000, ids: "0", batches: 0, failures: 1, handlerMs: 0, lateMs: 0 },
      { minute: 0, ids: "10", batches: 1, failures: 1, handlerMs: 0, lateMs: 0 },
    ]);
    expect((await redis.metrics("bf", run)).lastDoneAt).toBe(1.5);
  });

  it("are reset by a repeated completion too, and only rewritten when not already 0", async () => {
    const { store, key } = fresh();
    await store.markDone("bf", run, entry(1n, 10n, 0), 1);
    await store.recordFailure("bf", run, 2);
    expect(await store.markDone("bf", run, entry(1n, 10n, 1), 3)).toBe(false);
    expect(await client.hget(key("metrics"), "consecutiveFailures")).toBe("0");
    // A repeat with nothing to reset and no outstanding entry writes nothing.
    const before = await Promise.all(["metrics", "done", "minutes"].map((k) => client.dump(key(k))));
    expect(await store.markDone("bf", run, entry(1n, 10n, 2), 4)).toBe(false);
    expect(await Promise.all(["metrics", "done", "minutes"].map((k) => client.dump(key(k))))).toEqual(before);
    expect(await client.exists(key("outstanding"))).toBe(0);
  });
});

describe("one round trip per call", () => {
  it("for every new method, and none for an empty list", async () => {
    const { prefix } = fresh();
    const own = newClient();
    const store = createRedisStateStore({ client: own, prefix });
    const e = entry(1n, 10n, 0);
    const sent = async (action: (s: StateStore) => Promise<unknown>) => (await countCommands(own, prefix, () => action(store))).map((c) => c[0]?.toLowerCase());
    // The first call of each script on a connection may add an EVAL after EVALSHA's NOSCRIPT; warm them up.
    await store.recordFailure("bf", run, 1);
    await store.listOutstanding("bf", run, 1, 1);
    await store.reclaimOutstanding("bf", run, [e]);
    expect(await sent((s) => s.addOutstanding("bf", run, [{ ...e, checkAt: 5 }, out(11n, 20n, 0, 6)]))).toEqual(["zadd"]);
    expect(await sent((s) => s.listOutstanding("bf", run, 10, 10))).toEqual(["evalsha"]);
    expect(await sent((s) => s.touchOutstanding("bf", run, [e], 8))).toEqual(["zadd"]);
    expect(await sent((s) => s.reclaimOutstanding("bf", run, [e, entry(11n, 20n, 0)]))).toEqual(["evalsha"]);
    expect(await sent((s) => s.recordFailure("bf", run, 9))).toEqual(["evalsha"]);
    expect(await sent((s) => s.addOutstanding("bf", run, []))).toEqual([]);
    expect(await sent((s) => s.touchOutstanding("bf", run, [], 1))).toEqual([]);
    expect(await sent((s) => s.reclaimOutstanding("bf", run, []))).toEqual([]);
  });
});

describe("concurrency", () => {
  // Several connections, so the calls really race inside Redis rather than queue on one socket.
  const clients = Array.from({ length: 5 }, () => newClient());

  it("records each of 300 entries exactly once while completions, deferrals and reclaims race for them", async () => {
    const prefix = randomPrefix();
    const stores = clients.map((c) => createRedisStateStore({ client: c, prefix }));
    const entries = Array.from({ length: 300 }, (_, i) => entry(BigInt(i * 10 + 1), BigInt(i * 10 + 10), i % 4));
    await stores[0]!.addOutstanding("bf", run, entries.map((e) => ({ ...e, checkAt: 1 })));
    const results = await Promise.all(
      entries.flatMap((e, i) => [
        i % 3 === 0 ? stores[i % 5]!.addDeferred("bf", run, e).then(() => "deferred") : stores[i % 5]!.markDone("bf", run, e, 60_000).then(() => "done"),
        stores[(i + 2) % 5]!.reclaimOutstanding("bf", run, [e]).then((moved) => (moved.length === 1 ? "reclaimed" : "none")),
      ]),
    );
    const reclaimed = results.filter((r) => r === "reclaimed").length;
    const m = await stores[0]!.metrics("bf", run);
    expect(m.batchesLost).toBe(reclaimed);
    expect(m.batchesDone).toBe(200);
    expect(await stores[0]!.listOutstanding("bf", run, 10, 1_000)).toEqual([]);
    // A deferral either came first (its own entry) or found the reclaimed one: one deferred entry per deferred range,
    // and a completed range is deferred only when its reclaim came first.
    const deferred = await stores[0]!.listDeferred("bf", run, 1_000);
    const deferredRanges = entries.filter((_, i) => i % 3 === 0).length;
    expect(deferred.length).toBe(deferredRanges + results.filter((r, k) => r === "reclaimed" && Math.floor(k / 2) % 3 !== 0).length);
    expect(m.batchesDeferred).toBe(deferred.length);
  });

  it("counts failures exactly while completions reset them", async () => {
    const prefix = randomPrefix();
    const stores = clients.map((c) => createRedisStateStore({ client: c, prefix }));
    const counts = await Promise.all(Array.from({ length: 100 }, (_, i) => stores[i % 5]!.recordFailure("bf", run, 120_000 + i)));
    expect(counts.map((c) => c.consecutive).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(Math.max(...counts.map((c) => c.recentFailures))).toBe(100);
    await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => stores[i % 5]!.markDone("bf", run, entry(BigInt(i * 10), BigInt(i * 10 + 9), 0), 130_000)),
    ]);
    expect(await stores[0]!.recordFailure("bf", run, 140_000)).toEqual({ consecutive: 1, recentFailures: 101, recentDone: 20 });
  });
});
