import { MAX_ID, type StateStore } from "@superspreader/core";
import { describe, expect, it } from "vitest";
import { createRedisStateStore } from "../src/index.js";
import { newClient, randomPrefix, scanKeys } from "./helpers.js";

const client = newClient();
const run = "r1";
const invalid = { code: "INVALID_ARGUMENT" };

describe("options", () => {
  it("rejects a missing or non-ioredis client", () => {
    expect(() => createRedisStateStore({} as never)).toThrow(expect.objectContaining({ ...invalid, field: "client" }));
    expect(() => createRedisStateStore({ client: { get() {} } } as never)).toThrow(expect.objectContaining(invalid));
    expect(() => createRedisStateStore(undefined as never)).toThrow(expect.objectContaining(invalid));
  });

  it.each(["", "a{b", "x}", 42])("rejects the prefix %j", (prefix) => {
    expect(() => createRedisStateStore({ client, prefix: prefix as string })).toThrow(expect.objectContaining({ ...invalid, field: "prefix" }));
  });

  it('defaults the prefix to "superspreader"', async () => {
    const store = createRedisStateStore({ client });
    const name = `default-prefix-${randomPrefix().slice(8)}`;
    try {
      expect(await store.compareAndSet(name, 0, { a: 1 })).toBe(1);
      expect(await client.hget(`superspreader:{${name}}:doc`, "version")).toBe("1");
    } finally {
      await client.del(`superspreader:{${name}}:doc`);
      await client.srem("superspreader:names", name);
    }
  });
});

describe("arguments are checked before anything is written", () => {
  const range = { beginId: 1n, endId: 2n };
  const entry = { ...range, cycle: 0 };
  const failure = { ...entry, error: "boom", errorName: "Error", attempts: 1, at: 1 };
  const calls: Array<[string, (s: StateStore) => Promise<unknown>]> = [
    ["empty name", (s) => s.get("")],
    ["name with {", (s) => s.compareAndSet("a{b", 0, {})],
    ["name with }", (s) => s.markDone("a}b", run, entry, 1)],
    ["non-string name", (s) => s.get(7 as never)],
    ["bad runId", (s) => s.markDone("bf", "a:b", entry, 1)],
    ["negative begin", (s) => s.markDone("bf", run, { beginId: -1n, endId: 2n, cycle: 0 }, 1)],
    ["begin > end", (s) => s.markDone("bf", run, { beginId: 3n, endId: 2n, cycle: 0 }, 1)],
    ["end beyond MAX_ID", (s) => s.markDone("bf", run, { beginId: 1n, endId: MAX_ID + 1n, cycle: 0 }, 1)],
    ["number ids", (s) => s.markDone("bf", run, { beginId: 1, endId: 2, cycle: 0 } as never, 1)],
    ["infinite at", (s) => s.markDone("bf", run, entry, Number.POSITIVE_INFINITY)],
    ["non-integer expectedVersion", (s) => s.compareAndSet("bf", 0.5, {})],
    ["negative expectedVersion", (s) => s.compareAndSet("bf", -1, {})],
    ["undefined value", (s) => s.compareAndSet("bf", 0, undefined)],
    ["bigint in value", (s) => s.compareAndSet("bf", 0, { id: 1n })],
    ["limit 0", (s) => s.listConfigChanges("bf", 0)],
    ["fractional limit", (s) => s.listDeferred("bf", run, 1.5)],
    ["negative cycle", (s) => s.addDeferred("bf", run, { ...range, cycle: -1 })],
    ["fractional cycle", (s) => s.addFailed("bf", run, { ...failure, cycle: 0.5 })],
    ["failure without error", (s) => s.addFailed("bf", run, { ...failure, error: undefined } as never)],
    ["one bad entry among good ones", (s) => s.removeDeferred("bf", run, [entry, { ...entry, endId: 0n }])],
    ["change without actor", (s) => s.appendConfigChange("bf", { at: 1, changes: {} } as never)],
    ["markDone without a cycle", (s) => s.markDone("bf", run, range as never, 1)],
    ["NaN failure time", (s) => s.recordFailure("bf", run, Number.NaN)],
    ["entries not an array", (s) => s.addOutstanding("bf", run, "1-10" as never)],
    ["outstanding entry without checkAt", (s) => s.addOutstanding("bf", run, [{ ...entry, checkAt: 1 }, entry as never])],
    ["outstanding entry with a bad cycle", (s) => s.addOutstanding("bf", run, [{ ...entry, cycle: 2 ** 53, checkAt: 1 }])],
    ["infinite dueBefore", (s) => s.listOutstanding("bf", run, Number.POSITIVE_INFINITY, 10)],
    ["listOutstanding limit 0", (s) => s.listOutstanding("bf", run, 1, 0)],
    ["touch with a string checkAt", (s) => s.touchOutstanding("bf", run, [entry], "5" as never)],
    ["touch with a reversed entry", (s) => s.touchOutstanding("bf", run, [{ beginId: 5n, endId: 1n, cycle: 0 }], 5)],
    ["reclaim with a number id", (s) => s.reclaimOutstanding("bf", run, [{ beginId: 1, endId: 2n, cycle: 0 } as never])],
  ];

  it.each(calls)("%s", async (_label, act) => {
    const prefix = randomPrefix();
    const store = createRedisStateStore({ client, prefix });
    await expect(act(store)).rejects.toMatchObject(invalid);
    expect(await scanKeys(client, prefix)).toEqual([]);
  });

  it.each([
    ["at", (s: StateStore) => s.markDone("bf", run, entry, Number.NaN)],
    ["entry.cycle", (s: StateStore) => s.markDone("bf", run, { ...range, cycle: -1 }, 1)],
    ["entries[1].checkAt", (s: StateStore) => s.addOutstanding("bf", run, [{ ...entry, checkAt: 1 }, { ...entry, checkAt: Number.NaN }])],
    ["entries[0]", (s: StateStore) => s.reclaimOutstanding("bf", run, [{ ...entry, endId: 0n }])],
    ["dueBefore", (s: StateStore) => s.listOutstanding("bf", run, Number.NaN, 1)],
    ["checkAt", (s: StateStore) => s.touchOutstanding("bf", run, [entry], Number.NaN)],
    ["failure.at", (s: StateStore) => s.addFailed("bf", run, { ...failure, at: Number.NaN })],
    ["since", (s: StateStore) => s.requeueFailed("bf", run, "yesterday" as never)],
    ["runId", (s: StateStore) => s.recordFailure("bf", "", 1)],
  ] as const)("names the field %s", async (field, act) => {
    const store = createRedisStateStore({ client, prefix: randomPrefix() });
    await expect(act(store)).rejects.toMatchObject({ ...invalid, field, message: expect.stringContaining(field) });
  });
});

describe("keys", () => {
  it("all carry the backfill's hash tag, except the names index", async () => {
    const prefix = randomPrefix();
    const store = createRedisStateStore({ client, prefix });
    await store.compareAndSet("bf", 0, { a: 1 });
    await store.appendConfigChange("bf", { at: 1, actor: "code", changes: {} });
    await store.markDone("bf", run, { beginId: 1n, endId: 10n, cycle: 0 }, 1);
    await store.addDeferred("bf", run, { beginId: 11n, endId: 20n, cycle: 1 });
    await store.addFailed("bf", run, { beginId: 21n, endId: 30n, cycle: 1, error: "e", errorName: "E", attempts: 1, at: 1 });
    await store.addOutstanding("bf", run, [{ beginId: 31n, endId: 40n, cycle: 1, checkAt: 1 }]);
    await store.recordFailure("bf", run, 1);
    const tagged = `${prefix}:{bf}:`;
    expect(await scanKeys(client, prefix)).toEqual(
      [
        `${prefix}:names`,
        `${tagged}doc`,
        `${tagged}config-changes`,
        `${tagged}run:${run}:done`,
        `${tagged}run:${run}:deferred`,
        `${tagged}run:${run}:failed`,
        `${tagged}run:${run}:outstanding`,
        `${tagged}run:${run}:metrics`,
        `${tagged}run:${run}:minutes`,
      ].sort(),
    );
  });

  it("stores the ledger as lexicographic, zero-padded members with score 0", async () => {
    const prefix = randomPrefix();
    const store = createRedisStateStore({ client, prefix });
    await store.markDone("bf", run, { beginId: 2n ** 63n - 1n, endId: 2n ** 63n - 1n, cycle: 0 }, 1);
    expect(await client.zrange(`${prefix}:{bf}:run:${run}:done`, "0", "-1", "WITHSCORES")).toEqual([
      "09223372036854775807:09223372036854775807",
      "0",
    ]);
  });
});

describe("list", () => {
  it("skips names in the index whose document does not exist", async () => {
    const prefix = randomPrefix();
    const store = createRedisStateStore({ client, prefix });
    await store.compareAndSet("b", 0, {});
    await store.compareAndSet("a", 0, {});
    await client.sadd(`${prefix}:names`, "ghost", "bad{name}");
    expect(await store.list()).toEqual(["a", "b"]);
  });

  it("shows a backfill whose creation lost the race only once", async () => {
    const prefix = randomPrefix();
    const store = createRedisStateStore({ client, prefix });
    expect(await store.compareAndSet("a", 0, { n: 1 })).toBe(1);
    expect(await store.compareAndSet("a", 0, { n: 2 })).toBeNull();
    expect(await store.list()).toEqual(["a"]);
  });
});

describe("config audit trail", () => {
  it("keeps the newest 1000 changes", async () => {
    const prefix = randomPrefix();
    const store = createRedisStateStore({ client, prefix });
    // Sent together on one connection, so they arrive (and are pushed) in order.
    await Promise.all(Array.from({ length: 1005 }, (_, i) => store.appendConfigChange("bf", { at: i, actor: "code", changes: { n: { from: i, to: i + 1 } } })));
    expect(await client.llen(`${prefix}:{bf}:config-changes`)).toBe(1000);
    const all = await store.listConfigChanges("bf", 5000);
    expect(all).toHaveLength(1000);
    expect(all[0]?.at).toBe(1004);
    expect(all[999]?.at).toBe(5);
  });
});

describe("deferred and failed", () => {
  it("orders deferred entries by end desc, then cycle asc, across large cycles", async () => {
    const store = createRedisStateStore({ client, prefix: randomPrefix() });
    const big = Number.MAX_SAFE_INTEGER;
    await store.addDeferred("bf", run, { beginId: 1n, endId: 10n, cycle: big });
    await store.addDeferred("bf", run, { beginId: 1n, endId: 10n, cycle: 0 });
    await store.addDeferred("bf", run, { beginId: 5n, endId: 10n, cycle: 9 });
    await store.addDeferred("bf", run, { beginId: 11n, endId: 11n, cycle: 100 });
    expect(await store.listDeferred("bf", run, 10)).toEqual([
      { beginId: 11n, endId: 11n, cycle: 100 },
      { beginId: 1n, endId: 10n, cycle: 0 },
      { beginId: 5n, endId: 10n, cycle: 9 },
      { beginId: 1n, endId: 10n, cycle: big },
    ]);
  });

  it("requeues failures onto existing deferred entries without counting them twice", async () => {
    const store = createRedisStateStore({ client, prefix: randomPrefix() });
    await store.addDeferred("bf", run, { beginId: 1n, endId: 10n, cycle: 2 });
    await store.addFailed("bf", run, { beginId: 1n, endId: 10n, cycle: 2, error: "e", errorName: "E", attempts: 3, at: 5 });
    await store.addFailed("bf", run, { beginId: 11n, endId: 20n, cycle: 12345678901, error: "ü: \"quoted\"\n", errorName: "E", attempts: 3, at: 5 });
    expect((await store.listFailed("bf", run, 10))[0]?.error).toBe("ü: \"quoted\"\n");
    expect(await store.requeueFailed("bf", run)).toBe(2);
    expect(await store.listDeferred("bf", run, 10)).toEqual([
      { beginId: 11n, endId: 20n, cycle: 12345678901 },
      { beginId: 1n, endId: 10n, cycle: 2 },
    ]);
    expect((await store.metrics("bf", run)).batchesDeferred).toBe(2);
  });
});

describe("requeueFailed since a time", () => {
  it("compares the records' own times exactly, fractional ones too, and leaves the rest failed", async () => {
    const store = createRedisStateStore({ client, prefix: randomPrefix() });
    const failure = (beginId: bigint, at: number) => ({ beginId, endId: beginId, cycle: 3, error: "e", errorName: "E", attempts: 3, at });
    for (let i = 0; i < 600; i++) await store.addFailed("bf", run, failure(BigInt(i), i === 599 ? 1_000.25 : i));
    expect(await store.requeueFailed("bf", run, 1_000.25)).toBe(1);
    expect(await store.requeueFailed("bf", run, 1_000.25)).toBe(0);
    expect(await store.requeueFailed("bf", run, 100)).toBe(499);
    expect(await store.listFailed("bf", run, 1_000)).toHaveLength(100);
    expect((await store.listFailed("bf", run, 1))[0]).toEqual(failure(99n, 99));
    expect(await store.metrics("bf", run)).toMatchObject({ batchesDeferred: 500, batchesFailed: 600 });
    expect(await store.requeueFailed("bf", run)).toBe(100);
    expect(await store.listDeferred("bf", run, 1_000)).toHaveLength(600);
  });
});

describe("close", () => {
  it("leaves the injected client open, is idempotent, and refuses later calls", async () => {
    const own = newClient();
    const store = createRedisStateStore({ client: own, prefix: randomPrefix() });
    expect(await store.get("bf")).toBeNull(); // the client is connected and in use
    await store.close();
    await store.close();
    expect(own.status).toBe("ready");
    expect(await own.ping()).toBe("PONG");
    await expect(store.get("bf")).rejects.toMatchObject({ code: "INVALID_STATE" });
  });

  it("reports a Redis failure as ADAPTER_ERROR with the cause", async () => {
    const own = newClient();
    const store = createRedisStateStore({ client: own, prefix: randomPrefix() });
    own.disconnect();
    await expect(store.get("bf")).rejects.toMatchObject({ code: "ADAPTER_ERROR", cause: expect.any(Error) });
  });
});
