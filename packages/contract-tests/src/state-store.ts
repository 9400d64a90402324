import type { FailedRange, OutstandingEntry, StateStore } from "@superspreader/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { randomSuffix } from "./util.js";

/** What a StateStore factory returns: a fresh store (fresh key prefix) and how to clean it up. */
export interface StateStoreHarness {
  store: StateStore;
  cleanup?: () => Promise<void>;
}

const BIG = 9_223_372_036_854_775_807n; // 2^63 - 1: PostgreSQL's and MySQL's largest bigint

/**
 * The StateStore conformance suite. Call it at the top level of a test file; the
 * factory is called before every test and must return a store that shares no
 * state with earlier ones (a random key prefix, not a flushed server).
 *
 * @example
 * ```ts
 * import { describeStateStoreContract } from "@superspreader/contract-tests";
 * describeStateStoreContract("redis", async () => {
 *   const client = new Redis(process.env.SUPERSPREADER_REDIS_URL!);
 *   const store = createRedisStateStore({ client, prefix: `t${Math.random()}` });
 *   return { store, cleanup: async () => void client.disconnect() };
 * });
 * ```
 */
export function describeStateStoreContract(name: string, factory: () => Promise<StateStoreHarness>): void {
  describe(`StateStore contract: ${name}`, () => {
    let harness: StateStoreHarness;
    let store: StateStore;
    let bf: string;
    const run = "run1";

    beforeEach(async () => {
      harness = await factory();
      store = harness.store;
      bf = `bf-${randomSuffix()}`;
    });
    afterEach(async () => {
      await store.close();
      await harness.cleanup?.();
    });

    describe("documents", () => {
      it("returns null for an unknown name", async () => {
        expect(await store.get(bf)).toBeNull();
      });

      it("creates with expectedVersion 0, then versions every write", async () => {
        const doc = { a: 1, b: "two", c: [1, null, { d: true }], big: "123456789012345678901" };
        expect(await store.compareAndSet(bf, 0, doc)).toBe(1);
        expect(await store.get(bf)).toEqual({ version: 1, value: doc });
        expect(await store.compareAndSet(bf, 1, { a: 2 })).toBe(2);
        expect(await store.get(bf)).toEqual({ version: 2, value: { a: 2 } });
      });

      it("refuses a stale version and keeps the stored document", async () => {
        await store.compareAndSet(bf, 0, { n: 1 });
        expect(await store.compareAndSet(bf, 0, { n: "create again" })).toBeNull();
        expect(await store.compareAndSet(bf, 5, { n: "future" })).toBeNull();
        expect(await store.get(bf)).toEqual({ version: 1, value: { n: 1 } });
      });

      it("lets exactly one of many concurrent writers of the same version win", async () => {
        await store.compareAndSet(bf, 0, { n: 0 });
        const results = await Promise.all(Array.from({ length: 25 }, (_, i) => store.compareAndSet(bf, 1, { n: i + 1 })));
        expect(results.filter((r) => r !== null)).toEqual([2]);
        const winner = results.findIndex((r) => r !== null);
        expect(await store.get(bf)).toEqual({ version: 2, value: { n: winner + 1 } });
      });

      it("lists stored names, sorted", async () => {
        const names = [`${bf}-b`, `${bf}-a`, `${bf}-c`];
        for (const n of names) await store.compareAndSet(n, 0, { n });
        const listed = (await store.list()).filter((n) => n.startsWith(bf));
        expect(listed).toEqual([...names].sort());
      });

      it("rejects an invalid name before writing", async () => {
        await expect(store.compareAndSet("", 0, {})).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
        await expect(store.get("a b")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      });
    });

    describe("config audit trail", () => {
      it("returns changes newest first, limited", async () => {
        expect(await store.listConfigChanges(bf, 10)).toEqual([]);
        for (let i = 0; i < 3; i++) {
          await store.appendConfigChange(bf, { at: 1000 + i, actor: "cli", changes: { batchSize: { from: i, to: i + 1 } } });
        }
        await store.appendConfigChange(bf, { at: 2000, actor: "ops", reason: "db load", changes: { duration: { from: 10, to: 20 } } });
        const changes = await store.listConfigChanges(bf, 2);
        expect(changes).toEqual([
          { at: 2000, actor: "ops", reason: "db load", changes: { duration: { from: 10, to: 20 } } },
          { at: 1002, actor: "cli", changes: { batchSize: { from: 2, to: 3 } } },
        ]);
      });
    });

    describe("ledger", () => {
      it("records a range once and merges neighbours in any order", async () => {
        expect(await store.listDone(bf, run)).toEqual([]);
        expect(await store.markDone(bf, run, { beginId: 201n, endId: 300n, cycle: 0 }, 1_000)).toBe(true);
        expect(await store.markDone(bf, run, { beginId: 1n, endId: 100n, cycle: 0 }, 1_000)).toBe(true);
        expect(await store.markDone(bf, run, { beginId: 1n, endId: 100n, cycle: 0 }, 1_000)).toBe(false);
        expect(await store.listDone(bf, run)).toEqual([
          { beginId: 1n, endId: 100n },
          { beginId: 201n, endId: 300n },
        ]);
        expect(await store.markDone(bf, run, { beginId: 101n, endId: 200n, cycle: 0 }, 1_000)).toBe(true);
        expect(await store.listDone(bf, run)).toEqual([{ beginId: 1n, endId: 300n }]);
        expect(await store.markDone(bf, run, { beginId: 150n, endId: 160n, cycle: 0 }, 1_000)).toBe(false);
      });

      it("keeps ids beyond 2^53 exact", async () => {
        const top = { beginId: BIG - 99n, endId: BIG };
        const below = { beginId: BIG - 199n, endId: BIG - 100n };
        const odd = { beginId: 9_007_199_254_740_993n, endId: 9_007_199_254_740_993n };
        expect(await store.markDone(bf, run, { ...top, cycle: 0 }, 1)).toBe(true);
        expect(await store.markDone(bf, run, { ...odd, cycle: 0 }, 1)).toBe(true);
        expect(await store.markDone(bf, run, { ...below, cycle: 0 }, 1)).toBe(true);
        expect(await store.listDone(bf, run)).toEqual([odd, { beginId: BIG - 199n, endId: BIG }]);
        const m = await store.metrics(bf, run);
        expect(m.idsDone).toBe("201");
      });

      it("merges 100 concurrent adjacent completions into one range", async () => {
        await Promise.all(
          Array.from({ length: 100 }, (_, i) => store.markDone(bf, run, { beginId: BigInt(i * 10 + 1), endId: BigInt(i * 10 + 10), cycle: 0 }, 5)),
        );
        expect(await store.listDone(bf, run)).toEqual([{ beginId: 1n, endId: 1000n }]);
        const m = await store.metrics(bf, run);
        expect(m.batchesDone).toBe(100);
        expect(m.idsDone).toBe("1000");
      });

      it("counts first completions only, with per-minute buckets", async () => {
        const t0 = Date.UTC(2026, 10, 22, 12, 0, 0);
        await store.markDone(bf, run, { beginId: 1n, endId: 10n, cycle: 0 }, t0 + 5_000);
        await store.markDone(bf, run, { beginId: 1n, endId: 10n, cycle: 0 }, t0 + 6_000);
        await store.markDone(bf, run, { beginId: 11n, endId: 30n, cycle: 0 }, t0 + 65_000);
        const m = await store.metrics(bf, run);
        expect(m).toMatchObject({ batchesDone: 2, idsDone: "30", lastDoneAt: t0 + 65_000, batchesFailed: 0, batchesDeferred: 0 });
        expect(m.recent).toEqual([
          { minute: t0, ids: "10", batches: 1, failures: 0, handlerMs: 0, lateMs: 0 },
          { minute: t0 + 60_000, ids: "20", batches: 1, failures: 0, handlerMs: 0, lateMs: 0 },
        ]);
      });

      it("adds the timing of first completions to their minute's bucket, and keeps it through failures", async () => {
        const t0 = Date.UTC(2026, 10, 22, 12, 0, 0);
        await store.markDone(bf, run, { beginId: 1n, endId: 10n, cycle: 0 }, t0 + 1_000, { handlerMs: 40, lateMs: 5 });
        await store.markDone(bf, run, { beginId: 11n, endId: 20n, cycle: 0 }, t0 + 2_000, { handlerMs: 60, lateMs: 0 });
        // A repeat records nothing, its timing neither.
        await store.markDone(bf, run, { beginId: 1n, endId: 10n, cycle: 0 }, t0 + 3_000, { handlerMs: 999, lateMs: 999 });
        await store.recordFailure(bf, run, t0 + 4_000);
        await store.markDone(bf, run, { beginId: 21n, endId: 30n, cycle: 0 }, t0 + 5_000);
        expect((await store.metrics(bf, run)).recent).toEqual([{ minute: t0, ids: "30", batches: 3, failures: 1, handlerMs: 100, lateMs: 5 }]);
        await expect(store.markDone(bf, run, { beginId: 31n, endId: 40n, cycle: 0 }, t0, { handlerMs: -1, lateMs: 0 })).rejects.toMatchObject({
          code: "INVALID_ARGUMENT",
          field: "timing.handlerMs",
        });
        await expect(store.markDone(bf, run, { beginId: 31n, endId: 40n, cycle: 0 }, t0, { handlerMs: 1, lateMs: 0.5 })).rejects.toMatchObject({
          code: "INVALID_ARGUMENT",
          field: "timing.lateMs",
        });
      });

      it("returns zero metrics for an unknown run", async () => {
        expect(await store.metrics(bf, "nothing")).toEqual({
          batchesDone: 0,
          idsDone: "0",
          batchesFailed: 0,
          batchesDeferred: 0,
          batchesLost: 0,
          consecutiveFailures: 0,
          lastDoneAt: null,
          recent: [],
        });
      });

      it("keeps runs and backfills apart", async () => {
        await store.markDone(bf, run, { beginId: 1n, endId: 10n, cycle: 0 }, 1);
        expect(await store.listDone(bf, "run2")).toEqual([]);
        expect(await store.listDone(`${bf}-other`, run)).toEqual([]);
      });

      it("rejects a reversed or negative range", async () => {
        await expect(store.markDone(bf, run, { beginId: 10n, endId: 9n, cycle: 0 }, 1)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
        await expect(store.markDone(bf, run, { beginId: -1n, endId: 9n, cycle: 0 }, 1)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
        expect(await store.listDone(bf, run)).toEqual([]);
      });
    });

    describe("deferred and failed ranges", () => {
      it("keeps deferred entries per (range, cycle), ordered by endId desc then cycle", async () => {
        await store.addDeferred(bf, run, { beginId: 1n, endId: 10n, cycle: 3 });
        await store.addDeferred(bf, run, { beginId: 11n, endId: 20n, cycle: 2 });
        await store.addDeferred(bf, run, { beginId: 1n, endId: 10n, cycle: 1 });
        await store.addDeferred(bf, run, { beginId: 1n, endId: 10n, cycle: 1 });
        expect(await store.listDeferred(bf, run, 10)).toEqual([
          { beginId: 11n, endId: 20n, cycle: 2 },
          { beginId: 1n, endId: 10n, cycle: 1 },
          { beginId: 1n, endId: 10n, cycle: 3 },
        ]);
        expect(await store.listDeferred(bf, run, 1)).toEqual([{ beginId: 11n, endId: 20n, cycle: 2 }]);
        expect((await store.metrics(bf, run)).batchesDeferred).toBe(3);
        await store.removeDeferred(bf, run, [{ beginId: 1n, endId: 10n, cycle: 1 }, { beginId: 99n, endId: 100n, cycle: 1 }]);
        await store.removeDeferred(bf, run, [{ beginId: 1n, endId: 10n, cycle: 1 }]);
        expect(await store.listDeferred(bf, run, 10)).toEqual([
          { beginId: 11n, endId: 20n, cycle: 2 },
          { beginId: 1n, endId: 10n, cycle: 3 },
        ]);
      });

      it("keeps deferred ids beyond 2^53 exact and in order", async () => {
        await store.addDeferred(bf, run, { beginId: BIG - 9n, endId: BIG, cycle: 0 });
        await store.addDeferred(bf, run, { beginId: BIG - 19n, endId: BIG - 10n, cycle: 0 });
        expect(await store.listDeferred(bf, run, 10)).toEqual([
          { beginId: BIG - 9n, endId: BIG, cycle: 0 },
          { beginId: BIG - 19n, endId: BIG - 10n, cycle: 0 },
        ]);
      });

      it("records failures per range, replaces repeats, and requeues them as deferred", async () => {
        const failure = (beginId: bigint, endId: bigint, cycle: number, error: string): FailedRange => ({
          beginId,
          endId,
          cycle,
          error,
          errorName: "Error",
          attempts: 3,
          at: 1234,
        });
        await store.addFailed(bf, run, failure(1n, 10n, 1, "first"));
        await store.addFailed(bf, run, failure(11n, 20n, 1, "other"));
        await store.addFailed(bf, run, failure(1n, 10n, 4, "again"));
        expect(await store.listFailed(bf, run, 10)).toEqual([failure(11n, 20n, 1, "other"), failure(1n, 10n, 4, "again")]);
        expect((await store.metrics(bf, run)).batchesFailed).toBe(3);
        expect(await store.requeueFailed(bf, run)).toBe(2);
        expect(await store.listFailed(bf, run, 10)).toEqual([]);
        expect(await store.listDeferred(bf, run, 10)).toEqual([
          { beginId: 11n, endId: 20n, cycle: 1 },
          { beginId: 1n, endId: 10n, cycle: 4 },
        ]);
        expect(await store.requeueFailed(bf, run)).toBe(0);
      });

      it("requeues only the failures recorded since a time when given one", async () => {
        const at = (beginId: bigint, t: number): FailedRange => ({ beginId, endId: beginId + 9n, cycle: 1, error: "e", errorName: "Error", attempts: 3, at: t });
        await store.addFailed(bf, run, at(1n, 1_000));
        await store.addFailed(bf, run, at(11n, 2_000));
        await store.addFailed(bf, run, at(21n, 3_000));
        expect(await store.requeueFailed(bf, run, 2_000)).toBe(2);
        expect(await store.listFailed(bf, run, 10)).toEqual([at(1n, 1_000)]);
        expect(await store.listDeferred(bf, run, 10)).toEqual([
          { beginId: 21n, endId: 30n, cycle: 1 },
          { beginId: 11n, endId: 20n, cycle: 1 },
        ]);
        await expect(store.requeueFailed(bf, run, Number.NaN)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
        expect(await store.listFailed(bf, run, 10)).toEqual([at(1n, 1_000)]);
      });

      it("rejects an entry without a whole-number cycle", async () => {
        await expect(store.addDeferred(bf, run, { beginId: 1n, endId: 2n, cycle: -1 })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
        await expect(store.markDone(bf, run, { beginId: 1n, endId: 2n, cycle: 1.5 }, 1)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
        expect(await store.listDone(bf, run)).toEqual([]);
      });

      it("rejects a limit below 1", async () => {
        await expect(store.listDeferred(bf, run, 0)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
        await expect(store.listFailed(bf, run, -1)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      });
    });

    describe("outstanding entries (enqueued, not recorded yet)", () => {
      const out = (beginId: bigint, endId: bigint, cycle: number, checkAt: number): OutstandingEntry => ({ beginId, endId, cycle, checkAt });

      it("lists entries due by checkAt, earliest first, limited; adding again moves checkAt", async () => {
        expect(await store.listOutstanding(bf, run, Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
        await store.addOutstanding(bf, run, [out(21n, 30n, 2, 3_000), out(11n, 20n, 1, 1_000), out(1n, 10n, 1, 2_000)]);
        expect(await store.listOutstanding(bf, run, 2_500, 10)).toEqual([out(11n, 20n, 1, 1_000), out(1n, 10n, 1, 2_000)]);
        expect(await store.listOutstanding(bf, run, 10_000, 1)).toEqual([out(11n, 20n, 1, 1_000)]);
        await store.addOutstanding(bf, run, [out(11n, 20n, 1, 9_000)]);
        expect(await store.listOutstanding(bf, run, 10_000, 10)).toEqual([out(1n, 10n, 1, 2_000), out(21n, 30n, 2, 3_000), out(11n, 20n, 1, 9_000)]);
        // The same range of another cycle is another entry.
        await store.addOutstanding(bf, run, [out(1n, 10n, 7, 500)]);
        expect(await store.listOutstanding(bf, run, 1_000, 10)).toEqual([out(1n, 10n, 7, 500)]);
        expect(await store.listOutstanding(bf, "other-run", 10_000, 10)).toEqual([]);
      });

      it("keeps ids beyond 2^53 exact", async () => {
        await store.addOutstanding(bf, run, [out(BIG - 9n, BIG, 3, 5), out(9_007_199_254_740_993n, 9_007_199_254_740_993n, 4, 6)]);
        expect(await store.listOutstanding(bf, run, 10, 10)).toEqual([out(BIG - 9n, BIG, 3, 5), out(9_007_199_254_740_993n, 9_007_199_254_740_993n, 4, 6)]);
      });

      it("is cleared by markDone, addDeferred and addFailed of the same (range, cycle), not of another cycle", async () => {
        await store.addOutstanding(bf, run, [out(1n, 10n, 1, 1), out(11n, 20n, 1, 1), out(21n, 30n, 1, 1), out(31n, 40n, 1, 1)]);
        expect(await store.markDone(bf, run, { beginId: 1n, endId: 10n, cycle: 1 }, 5)).toBe(true);
        await store.addDeferred(bf, run, { beginId: 11n, endId: 20n, cycle: 1 });
        await store.addFailed(bf, run, { beginId: 21n, endId: 30n, cycle: 1, error: "e", errorName: "Error", attempts: 3, at: 5 });
        await store.markDone(bf, run, { beginId: 31n, endId: 40n, cycle: 2 }, 5);
        expect(await store.listOutstanding(bf, run, 100, 10)).toEqual([out(31n, 40n, 1, 1)]);
        // A repeated completion still clears its entry.
        await store.addOutstanding(bf, run, [out(1n, 10n, 3, 1)]);
        expect(await store.markDone(bf, run, { beginId: 1n, endId: 10n, cycle: 3 }, 6)).toBe(false);
        expect(await store.listOutstanding(bf, run, 100, 10)).toEqual([out(31n, 40n, 1, 1)]);
      });

      it("touches only entries still outstanding", async () => {
        await store.addOutstanding(bf, run, [out(1n, 10n, 1, 1), out(11n, 20n, 1, 1)]);
        await store.markDone(bf, run, { beginId: 11n, endId: 20n, cycle: 1 }, 2);
        await store.touchOutstanding(bf, run, [{ beginId: 1n, endId: 10n, cycle: 1 }, { beginId: 11n, endId: 20n, cycle: 1 }], 500);
        expect(await store.listOutstanding(bf, run, 1_000, 10)).toEqual([out(1n, 10n, 1, 500)]);
      });

      it("reclaims lost entries into deferred ones, once, skipping recorded and covered ranges", async () => {
        await store.addOutstanding(bf, run, [out(1n, 10n, 1, 1), out(11n, 20n, 1, 1), out(21n, 30n, 1, 1), out(31n, 40n, 2, 1)]);
        await store.markDone(bf, run, { beginId: 11n, endId: 20n, cycle: 1 }, 2);
        // Covered by the ledger (a repeat of the range recorded it) though its own entry is still there.
        await store.markDone(bf, run, { beginId: 31n, endId: 40n, cycle: 9 }, 2);
        const entries = [1n, 11n, 21n, 31n].map((b, i) => ({ beginId: b, endId: b + 9n, cycle: i === 3 ? 2 : 1 }));
        expect(await store.reclaimOutstanding(bf, run, entries)).toEqual([
          { beginId: 1n, endId: 10n, cycle: 1 },
          { beginId: 21n, endId: 30n, cycle: 1 },
        ]);
        expect(await store.reclaimOutstanding(bf, run, entries)).toEqual([]);
        expect(await store.listOutstanding(bf, run, 100, 10)).toEqual([]);
        expect(await store.listDeferred(bf, run, 10)).toEqual([
          { beginId: 21n, endId: 30n, cycle: 1 },
          { beginId: 1n, endId: 10n, cycle: 1 },
        ]);
        const m = await store.metrics(bf, run);
        expect(m.batchesLost).toBe(2);
        expect(m.batchesDeferred).toBe(2);
      });

      it("lets exactly one of a completion and a reclaim racing for the same entry record it", async () => {
        for (let i = 0; i < 20; i++) {
          const entry = { beginId: BigInt(i * 10 + 1), endId: BigInt(i * 10 + 10), cycle: 1 };
          await store.addOutstanding(bf, run, [{ ...entry, checkAt: 1 }]);
          const [, moved] = await Promise.all([store.markDone(bf, run, entry, 3), store.reclaimOutstanding(bf, run, [entry])]);
          const deferred = (await store.listDeferred(bf, run, 100)).filter((d) => d.beginId === entry.beginId);
          // Either the completion came first (nothing reclaimed) or the reclaim did (deferred, and done as well).
          expect(deferred.length).toBe(moved.length);
        }
        expect(await store.listOutstanding(bf, run, 100, 100)).toEqual([]);
      });

      it("rejects a bad checkAt or entry before writing", async () => {
        await expect(store.addOutstanding(bf, run, [out(1n, 10n, 1, Number.NaN)])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
        await expect(store.addOutstanding(bf, run, [out(1n, 10n, 1, 1), out(10n, 1n, 1, 1)])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
        expect(await store.listOutstanding(bf, run, 100, 10)).toEqual([]);
      });
    });

    describe("shared rate budgets", () => {
      const claim = (perSecond: number, want: number, weight = 1, ttlMs = 60_000) => ({ perSecond, want, weight, ttlMs });
      const sum = (members: readonly { cap: number }[]) => members.reduce((total, m) => total + m.cap, 0);

      it("gives a lone member what it wants, up to the budget", async () => {
        const key = `db-${randomSuffix()}`;
        expect(await store.claimBudget(key, "a", claim(10, 4), 1_000)).toEqual({ cap: 4, members: [{ member: "a", weight: 1, want: 4, cap: 4, at: 1_000 }] });
        expect((await store.claimBudget(key, "a", claim(10, 25), 2_000)).cap).toBe(10);
      });

      it("lets a joining member take only the room the others' caps leave, and its fair share once they claimed again", async () => {
        const key = `db-${randomSuffix()}`;
        await store.claimBudget(key, "a", claim(10, 10), 0);
        const joined = await store.claimBudget(key, "b", claim(10, 10), 1_000);
        expect(joined.cap).toBe(0);
        expect(sum(joined.members)).toBeLessThanOrEqual(10);
        const a = await store.claimBudget(key, "a", claim(10, 10), 2_000);
        expect(a.cap).toBe(5);
        const b = await store.claimBudget(key, "b", claim(10, 10), 3_000);
        expect(b.cap).toBe(5);
        expect(b.members.map((m) => [m.member, m.cap])).toEqual([
          ["a", 5],
          ["b", 5],
        ]);
      });

      it("divides by weight, and gives what a member does not want to the others", async () => {
        const key = `db-${randomSuffix()}`;
        await store.claimBudget(key, "big", claim(12, 0, 3), 0);
        await store.claimBudget(key, "small", claim(12, 12, 1), 0);
        await store.claimBudget(key, "big", claim(12, 12, 3), 1);
        expect((await store.claimBudget(key, "small", claim(12, 12, 1), 2)).cap).toBe(3);
        expect((await store.claimBudget(key, "big", claim(12, 12, 3), 3)).cap).toBe(9);
        // Wanting 2 of its 9, big leaves 10 to small.
        await store.claimBudget(key, "big", claim(12, 2, 3), 4);
        expect((await store.claimBudget(key, "small", claim(12, 12, 1), 5)).cap).toBe(10);
      });

      it("drops a member that stopped claiming for ttlMs", async () => {
        const key = `db-${randomSuffix()}`;
        await store.claimBudget(key, "gone", claim(10, 10, 1, 5_000), 0);
        const later = await store.claimBudget(key, "here", claim(10, 10, 1, 5_000), 6_000);
        expect(later).toEqual({ cap: 10, members: [{ member: "here", weight: 1, want: 10, cap: 10, at: 6_000 }] });
      });

      it("never lets concurrent claims sum above the budget", async () => {
        const key = `db-${randomSuffix()}`;
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.claimBudget(key, `m${i}`, claim(10, 10), 1_000)));
        const last = await store.claimBudget(key, "m0", claim(10, 10), 1_001);
        expect(sum(last.members)).toBeLessThanOrEqual(10);
        expect(results.reduce((total, r) => total + r.cap, 0)).toBeLessThanOrEqual(10);
        expect(last.members).toHaveLength(8);
      });

      it("rejects a bad claim naming the field, before writing", async () => {
        const key = `db-${randomSuffix()}`;
        await expect(store.claimBudget("a b", "m", claim(1, 1), 0)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "key" });
        await expect(store.claimBudget(key, "", claim(1, 1), 0)).rejects.toMatchObject({ field: "member" });
        await expect(store.claimBudget(key, "m", claim(-1, 1), 0)).rejects.toMatchObject({ field: "claim.perSecond" });
        await expect(store.claimBudget(key, "m", claim(1, Number.NaN), 0)).rejects.toMatchObject({ field: "claim.want" });
        await expect(store.claimBudget(key, "m", claim(1, 1, 0), 0)).rejects.toMatchObject({ field: "claim.weight" });
        await expect(store.claimBudget(key, "m", claim(1, 1, 1, 0), 0)).rejects.toMatchObject({ field: "claim.ttlMs" });
        await expect(store.claimBudget(key, "m", claim(1, 1), Number.NaN)).rejects.toMatchObject({ field: "at" });
        expect((await store.claimBudget(key, "m", claim(4, 4), 0)).members).toHaveLength(1);
      });
    });

    describe("start rate limit (a GCRA bucket read with the document)", () => {
      it("reads the document like get, and without a limit never asks to wait", async () => {
        expect(await store.readForStart(bf, run, 1_000)).toEqual({ doc: null, waitMs: 0 });
        await store.compareAndSet(bf, 0, { n: 1 });
        expect(await store.readForStart(bf, run, 1_000)).toEqual({ doc: { version: 1, value: { n: 1 } }, waitMs: 0 });
      });

      it("lets burst starts through at once, then gives each later one its own slot, 1/rate apart", async () => {
        await store.compareAndSet(bf, 0, { n: 1 });
        await store.setStartRate(bf, run, 2, 2, 10_000);
        const waits = [];
        for (let i = 0; i < 5; i++) waits.push((await store.readForStart(bf, run, 10_000)).waitMs);
        expect(waits).toEqual([0, 0, 500, 1_000, 1_500]);
        // Later, the next free slot is after the reserved ones.
        expect((await store.readForStart(bf, run, 10_200)).waitMs).toBe(1_800);
        // Idle long enough, the bucket is full again, but never more than the burst.
        const after = [];
        for (let i = 0; i < 3; i++) after.push((await store.readForStart(bf, run, 100_000)).waitMs);
        expect(after).toEqual([0, 0, 500]);
        // Another run has its own bucket.
        expect((await store.readForStart(bf, "other", 100_000)).waitMs).toBe(0);
      });

      it("gives every concurrent start a different slot", async () => {
        await store.compareAndSet(bf, 0, { n: 1 });
        await store.setStartRate(bf, run, 1, 5, 1_000);
        const reads = await Promise.all(Array.from({ length: 12 }, () => store.readForStart(bf, run, 1_000)));
        expect(reads.map((r) => r.waitMs).sort((a, b) => a - b)).toEqual([0, 0, 0, 0, 0, 1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000]);
      });

      it("keeps reserved slots when the rate changes, spacing the next one at the new rate; at rate 0 it reserves nothing and says Infinity; null lifts the limit", async () => {
        await store.compareAndSet(bf, 0, { n: 1 });
        await store.setStartRate(bf, run, 1, 1, 0);
        expect((await store.readForStart(bf, run, 0)).waitMs).toBe(0);
        expect((await store.readForStart(bf, run, 0)).waitMs).toBe(1_000);
        // Twice as fast from now: the next free slot is one new interval after the last one reserved (1 s), then 500 ms apart.
        await store.setStartRate(bf, run, 2, 1, 0);
        expect((await store.readForStart(bf, run, 0)).waitMs).toBe(1_500);
        expect((await store.readForStart(bf, run, 0)).waitMs).toBe(2_000);
        // Slower again: the next slot is one slow interval after the last (2 s + 1 s).
        await store.setStartRate(bf, run, 1, 1, 0);
        expect((await store.readForStart(bf, run, 0)).waitMs).toBe(3_000);
        await store.setStartRate(bf, run, 0, 1, 0);
        expect((await store.readForStart(bf, run, 0)).waitMs).toBe(Number.POSITIVE_INFINITY);
        await store.setStartRate(bf, run, null, 1, 0);
        expect((await store.readForStart(bf, run, 0)).waitMs).toBe(0);
      });

      it("counts a start that reserved no slot (timing.slotAt of markDone) in the bucket, repeat or not", async () => {
        await store.compareAndSet(bf, 0, { n: 1 });
        await store.setStartRate(bf, run, 1, 1, 0);
        const timing = { handlerMs: 5, lateMs: 0, slotAt: 10_000 };
        await store.markDone(bf, run, { beginId: 1n, endId: 10n, cycle: 0 }, 10_005, timing);
        expect((await store.readForStart(bf, run, 10_100)).waitMs).toBe(900);
        // A repeat's start counts too (it ran), at its own slot: the next slot is 1 s after 20 s.
        await store.markDone(bf, run, { beginId: 1n, endId: 10n, cycle: 0 }, 20_005, { ...timing, slotAt: 20_000 });
        expect((await store.readForStart(bf, run, 20_500)).waitMs).toBe(500);
        await expect(store.markDone(bf, run, { beginId: 11n, endId: 20n, cycle: 0 }, 1, { handlerMs: 1, lateMs: 0, slotAt: Number.NaN })).rejects.toMatchObject({
          field: "timing.slotAt",
        });
      });

      it("rejects a bad rate or burst before writing", async () => {
        await expect(store.setStartRate(bf, run, -1, 1, 0)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "perSecond" });
        await expect(store.setStartRate(bf, run, 1, 0, 0)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "burst" });
        await expect(store.setStartRate(bf, run, 1, 1.5, 0)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "burst" });
      });
    });

    describe("failed attempts", () => {
      it("counts failures in a row until a completion, and the attempts of the last two minutes", async () => {
        const t0 = Date.UTC(2026, 10, 22, 12, 0, 0);
        expect(await store.recordFailure(bf, run, t0 + 1_000)).toEqual({ consecutive: 1, recentFailures: 1, recentDone: 0 });
        expect(await store.recordFailure(bf, run, t0 + 2_000)).toEqual({ consecutive: 2, recentFailures: 2, recentDone: 0 });
        await store.markDone(bf, run, { beginId: 1n, endId: 10n, cycle: 0 }, t0 + 3_000);
        expect((await store.metrics(bf, run)).consecutiveFailures).toBe(0);
        expect(await store.recordFailure(bf, run, t0 + 61_000)).toEqual({ consecutive: 1, recentFailures: 3, recentDone: 1 });
        // Two minutes on, the first minute has left the window.
        expect(await store.recordFailure(bf, run, t0 + 125_000)).toEqual({ consecutive: 2, recentFailures: 2, recentDone: 0 });
        const m = await store.metrics(bf, run);
        expect(m.consecutiveFailures).toBe(2);
        expect(m.recent).toEqual([
          { minute: t0, ids: "10", batches: 1, failures: 2, handlerMs: 0, lateMs: 0 },
          { minute: t0 + 60_000, ids: "0", batches: 0, failures: 1, handlerMs: 0, lateMs: 0 },
          { minute: t0 + 120_000, ids: "0", batches: 0, failures: 1, handlerMs: 0, lateMs: 0 },
        ]);
      });

      it("counts concurrent failures exactly", async () => {
        const results = await Promise.all(Array.from({ length: 30 }, () => store.recordFailure(bf, run, 60_000)));
        expect(results.map((r) => r.consecutive).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
        expect((await store.metrics(bf, run)).consecutiveFailures).toBe(30);
      });
    });

    describe("collected output", () => {
      const entry = (beginId: bigint, endId: bigint, result: unknown, at = 1_000) => ({ beginId, endId, at, result: JSON.stringify(result) });

      it("keeps results in order, once per range, and pages through them", async () => {
        expect(await store.listOutput(bf, run, 0, 10)).toEqual({ entries: [], next: null, count: 0, bytes: 0, dropped: 0 });
        expect(await store.addOutput(bf, run, entry(11n, 20n, { fixed: 10 }), 1_000)).toBe("added");
        expect(await store.addOutput(bf, run, entry(1n, 10n, { fixed: 9, bad: ["7"] }, 2_000), 1_000)).toBe("added");
        // A repeated delivery of a range keeps the first result.
        expect(await store.addOutput(bf, run, entry(11n, 20n, { fixed: 0 }), 1_000)).toBe("exists");
        expect(await store.addOutput(bf, run, entry(BIG - 9n, BIG, "ünïcödé ✓"), 1_000)).toBe("added");
        const bytes = [{ fixed: 10 }, { fixed: 9, bad: ["7"] }, "ünïcödé ✓"].reduce((sum: number, v) => sum + Buffer.byteLength(JSON.stringify(v)), 0);
        const first = await store.listOutput(bf, run, 0, 2);
        expect(first).toEqual({
          entries: [entry(11n, 20n, { fixed: 10 }), entry(1n, 10n, { fixed: 9, bad: ["7"] }, 2_000)],
          next: expect.any(Number),
          count: 3,
          bytes,
          dropped: 0,
        });
        const second = await store.listOutput(bf, run, first.next as number, 2);
        expect(second).toEqual({ entries: [entry(BIG - 9n, BIG, "ünïcödé ✓")], next: null, count: 3, bytes, dropped: 0 });
        // Other runs see nothing of it.
        expect((await store.listOutput(bf, "run2", 0, 10)).count).toBe(0);
      });

      it("keeps the oldest results within maxBytes (UTF-8) and counts the ones it drops", async () => {
        const big = "x".repeat(40); // 42 bytes of JSON
        expect(await store.addOutput(bf, run, entry(1n, 1n, big), 100)).toBe("added");
        expect(await store.addOutput(bf, run, entry(2n, 2n, big), 100)).toBe("added");
        expect(await store.addOutput(bf, run, entry(3n, 3n, big), 100)).toBe("full");
        expect(await store.addOutput(bf, run, entry(4n, 4n, 1), 100)).toBe("added");
        const page = await store.listOutput(bf, run, 0, 10);
        expect(page.entries.map((e) => e.beginId)).toEqual([1n, 2n, 4n]);
        expect(page).toMatchObject({ count: 3, bytes: 85, dropped: 1, next: null });
      });

      it("counts concurrent additions exactly against the bound", async () => {
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.addOutput(bf, run, entry(BigInt(i * 10 + 1), BigInt(i * 10 + 10), i % 10), 10)));
        // Each result is 1 byte: exactly ten fit.
        expect(results.filter((r) => r === "added")).toHaveLength(10);
        expect(await store.listOutput(bf, run, 0, 100)).toMatchObject({ count: 10, bytes: 10, dropped: 10 });
      });

      it("rejects bad arguments before writing, naming the field", async () => {
        await expect(store.addOutput(bf, run, { beginId: 5n, endId: 1n, at: 0, result: "1" }, 10)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "entry" });
        await expect(store.addOutput(bf, run, { beginId: 1n, endId: 1n, at: 0, result: 1 as unknown as string }, 10)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "entry.result" });
        await expect(store.addOutput(bf, run, entry(1n, 1n, 1), 0)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "maxBytes" });
        await expect(store.listOutput(bf, run, -1, 10)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "cursor" });
        await expect(store.listOutput(bf, run, 0, 0)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", field: "limit" });
        expect((await store.listOutput(bf, run, 0, 10)).count).toBe(0);
      });
    });
  });
}
