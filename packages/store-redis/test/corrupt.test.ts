import { describe, expect, it } from "vitest";
import { createRedisStateStore } from "../src/index.js";
import { newClient, randomPrefix, scanKeys } from "./helpers.js";

const client = newClient();
const run = "r1";

function fresh() {
  const prefix = randomPrefix();
  const store = createRedisStateStore({ client, prefix });
  const bf = `${prefix}:{bf}`;
  const keys = {
    names: `${prefix}:names`,
    doc: `${bf}:doc`,
    changes: `${bf}:config-changes`,
    done: `${bf}:run:${run}:done`,
    deferred: `${bf}:run:${run}:deferred`,
    failed: `${bf}:run:${run}:failed`,
    outstanding: `${bf}:run:${run}:outstanding`,
    metrics: `${bf}:run:${run}:metrics`,
    minutes: `${bf}:run:${run}:minutes`,
    start: `${bf}:run:${run}:start`,
  };
  return { store, keys: { ...keys, prefix } };
}

/** The rejection is CORRUPT_DATA and its message names the key. */
const corruptAt = (key: string) => ({ code: "CORRUPT_DATA", message: expect.stringContaining(`"${key}"`) });

describe("hand-edited keys give CORRUPT_DATA naming the key", () => {
  it("document of the wrong type", async () => {
    const { store, keys } = fresh();
    await client.set(keys.doc, "{}");
    await expect(store.get("bf")).rejects.toMatchObject(corruptAt(keys.doc));
    await expect(store.compareAndSet("bf", 1, {})).rejects.toMatchObject(corruptAt(keys.doc));
    expect(await client.get(keys.doc)).toBe("{}");
  });

  it("document without a version, with a bad version, or with bad JSON", async () => {
    const { store, keys } = fresh();
    await client.hset(keys.doc, "value", "{}");
    await expect(store.get("bf")).rejects.toMatchObject(corruptAt(keys.doc));
    await expect(store.compareAndSet("bf", 0, {})).rejects.toMatchObject(corruptAt(keys.doc));
    await client.hset(keys.doc, "version", "1.5");
    await expect(store.get("bf")).rejects.toMatchObject(corruptAt(keys.doc));
    await expect(store.compareAndSet("bf", 1, {})).rejects.toMatchObject(corruptAt(keys.doc));
    await client.hset(keys.doc, "version", "3", "value", "{not json");
    await expect(store.get("bf")).rejects.toMatchObject(corruptAt(keys.doc));
    await client.hdel(keys.doc, "value");
    await expect(store.get("bf")).rejects.toMatchObject(corruptAt(keys.doc));
  });

  it("start rate bucket of the wrong type or with bad numbers, and nothing is reserved", async () => {
    const { store, keys } = fresh();
    await store.compareAndSet("bf", 0, { n: 1 });
    await client.set(keys.start, "x");
    await expect(store.readForStart("bf", run, 1_000)).rejects.toMatchObject(corruptAt(keys.start));
    await expect(store.setStartRate("bf", run, 1, 1, 1_000)).rejects.toMatchObject(corruptAt(keys.start));
    await client.del(keys.start);
    await client.hset(keys.start, "perSecond", "fast", "burst", "1", "tat", "0");
    await expect(store.readForStart("bf", run, 1_000)).rejects.toMatchObject(corruptAt(keys.start));
    expect(await client.hget(keys.start, "tat")).toBe("0");
    // The document of the same call is not mistaken for a bad one.
    await client.del(keys.start);
    expect((await store.readForStart("bf", run, 1_000)).doc).toEqual({ version: 1, value: { n: 1 } });
  });

  it("names index of the wrong type", async () => {
    const { store, keys } = fresh();
    await client.set(keys.names, "bf");
    await expect(store.list()).rejects.toMatchObject(corruptAt(keys.names));
  });

  it("ledger of the wrong type or with a bad member, and nothing is written", async () => {
    const { store, keys } = fresh();
    await client.set(keys.done, "x");
    await expect(store.markDone("bf", run, { beginId: 1n, endId: 2n, cycle: 0 }, 1)).rejects.toMatchObject(corruptAt(keys.done));
    await expect(store.listDone("bf", run)).rejects.toMatchObject(corruptAt(keys.done));
    await client.del(keys.done);
    // markDone reads only the members next to its range, so the bad one sits there.
    await client.zadd(keys.done, 0, "00000000000000000001:oops");
    await expect(store.markDone("bf", run, { beginId: 1n, endId: 2n, cycle: 0 }, 1)).rejects.toMatchObject(corruptAt(keys.done));
    await expect(store.listDone("bf", run)).rejects.toMatchObject(corruptAt(keys.done));
    expect(await client.exists(keys.metrics, keys.minutes)).toBe(0);
    expect(await client.zrange(keys.done, "0", "-1")).toEqual(["00000000000000000001:oops"]);
  });

  it("ledger with overlapping members", async () => {
    const { store, keys } = fresh();
    await client.zadd(keys.done, 0, "00000000000000000001:00000000000000000010", 0, "00000000000000000005:00000000000000000020");
    await expect(store.listDone("bf", run)).rejects.toMatchObject(corruptAt(keys.done));
  });

  it("counters that are not numbers, checked before the ledger is touched", async () => {
    const { store, keys } = fresh();
    await client.hset(keys.metrics, "batchesDone", "many");
    await expect(store.markDone("bf", run, { beginId: 1n, endId: 2n, cycle: 0 }, 1)).rejects.toMatchObject(corruptAt(keys.metrics));
    expect(await client.exists(keys.done)).toBe(0);
    await expect(store.metrics("bf", run)).rejects.toMatchObject(corruptAt(keys.metrics));
    await client.hset(keys.metrics, "batchesDone", "1", "idsDone", "-5");
    await expect(store.markDone("bf", run, { beginId: 1n, endId: 2n, cycle: 0 }, 1)).rejects.toMatchObject(corruptAt(keys.metrics));
    await expect(store.metrics("bf", run)).rejects.toMatchObject(corruptAt(keys.metrics));
    await client.hset(keys.metrics, "idsDone", "2", "batchesDeferred", "x", "batchesFailed", "y");
    await expect(store.addDeferred("bf", run, { beginId: 1n, endId: 2n, cycle: 0 })).rejects.toMatchObject(corruptAt(keys.metrics));
    expect(await client.exists(keys.deferred)).toBe(0);
    await expect(
      store.addFailed("bf", run, { beginId: 1n, endId: 2n, cycle: 0, error: "e", errorName: "Error", attempts: 1, at: 1 }),
    ).rejects.toMatchObject(corruptAt(keys.metrics));
    expect(await client.exists(keys.failed)).toBe(0);
  });

  it("per-minute buckets that cannot be parsed", async () => {
    const { store, keys } = fresh();
    await client.hset(keys.minutes, "60000", "lots");
    await expect(store.markDone("bf", run, { beginId: 1n, endId: 2n, cycle: 0 }, 60_001)).rejects.toMatchObject(corruptAt(keys.minutes));
    await expect(store.metrics("bf", run)).rejects.toMatchObject(corruptAt(keys.minutes));
    await client.del(keys.minutes);
    await client.hset(keys.minutes, "yesterday", "1:1");
    await expect(store.markDone("bf", run, { beginId: 1n, endId: 2n, cycle: 0 }, 60_001)).rejects.toMatchObject(corruptAt(keys.minutes));
    await expect(store.metrics("bf", run)).rejects.toMatchObject(corruptAt(keys.minutes));
    expect(await client.exists(keys.done)).toBe(0);
  });

  it("deferred and failed sets with bad members or records", async () => {
    const { store, keys } = fresh();
    await client.zadd(keys.deferred, 0, "garbage");
    await expect(store.listDeferred("bf", run, 10)).rejects.toMatchObject(corruptAt(keys.deferred));
    await client.set(keys.deferred, "x");
    await expect(store.addDeferred("bf", run, { beginId: 1n, endId: 2n, cycle: 0 })).rejects.toMatchObject(corruptAt(keys.deferred));
    await expect(store.removeDeferred("bf", run, [{ beginId: 1n, endId: 2n, cycle: 0 }])).rejects.toMatchObject(corruptAt(keys.deferred));
    await expect(store.requeueFailed("bf", run)).rejects.toMatchObject(corruptAt(keys.deferred));
    await client.del(keys.deferred);
    await client.zadd(keys.failed, 0, "00000000000000000002:00000000000000000001:0000000000000000:{broken");
    await expect(store.listFailed("bf", run, 10)).rejects.toMatchObject(corruptAt(keys.failed));
    await client.zadd(keys.failed, 0, "nonsense");
    await expect(store.listFailed("bf", run, 10)).rejects.toMatchObject(corruptAt(keys.failed));
    await expect(store.requeueFailed("bf", run)).rejects.toMatchObject(corruptAt(keys.failed));
    expect(await client.zcard(keys.failed)).toBe(2);
  });

  it("config changes that are not changes", async () => {
    const { store, keys } = fresh();
    await client.lpush(keys.changes, JSON.stringify({ at: 1, changes: {} }));
    await expect(store.listConfigChanges("bf", 10)).rejects.toMatchObject(corruptAt(keys.changes));
    await client.lpush(keys.changes, "not json");
    await expect(store.listConfigChanges("bf", 10)).rejects.toMatchObject(corruptAt(keys.changes));
    await client.del(keys.changes);
    await client.set(keys.changes, "x");
    await expect(store.appendConfigChange("bf", { at: 1, actor: "a", changes: {} })).rejects.toMatchObject(corruptAt(keys.changes));
    await expect(store.listConfigChanges("bf", 10)).rejects.toMatchObject(corruptAt(keys.changes));
  });

  it("outstanding set of the wrong type: every method that touches it, and nothing else is written", async () => {
    const { store, keys } = fresh();
    await client.set(keys.outstanding, "x");
    const entry = { beginId: 1n, endId: 2n, cycle: 0 };
    await expect(store.markDone("bf", run, entry, 1)).rejects.toMatchObject(corruptAt(keys.outstanding));
    await expect(store.addDeferred("bf", run, entry)).rejects.toMatchObject(corruptAt(keys.outstanding));
    await expect(store.addFailed("bf", run, { ...entry, error: "e", errorName: "Error", attempts: 1, at: 1 })).rejects.toMatchObject(
      corruptAt(keys.outstanding),
    );
    await expect(store.addOutstanding("bf", run, [{ ...entry, checkAt: 1 }])).rejects.toMatchObject(corruptAt(keys.outstanding));
    await expect(store.listOutstanding("bf", run, 10, 10)).rejects.toMatchObject(corruptAt(keys.outstanding));
    await expect(store.touchOutstanding("bf", run, [entry], 5)).rejects.toMatchObject(corruptAt(keys.outstanding));
    await expect(store.reclaimOutstanding("bf", run, [entry])).rejects.toMatchObject(corruptAt(keys.outstanding));
    expect(await scanKeys(client, keys.prefix)).toEqual([keys.outstanding]);
  });

  it("outstanding members or scores that cannot be parsed", async () => {
    const { store, keys } = fresh();
    await client.zadd(keys.outstanding, 1, "not-an-entry");
    await expect(store.listOutstanding("bf", run, 10, 10)).rejects.toMatchObject(corruptAt(keys.outstanding));
    await client.del(keys.outstanding);
    // A well-formed member with an infinite score: no stored entry has one.
    await client.zadd(keys.outstanding, "-inf", "99999999999999999989:0000000000000000:00000000000000000001");
    await expect(store.listOutstanding("bf", run, 10, 10)).rejects.toMatchObject(corruptAt(keys.outstanding));
    // Within the member format, a range that is reversed.
    await client.del(keys.outstanding);
    await client.zadd(keys.outstanding, 1, "99999999999999999998:0000000000000000:00000000000000000005");
    await expect(store.listOutstanding("bf", run, 10, 10)).rejects.toMatchObject(corruptAt(keys.outstanding));
  });

  it("reclaiming checks the ledger and counters before removing anything", async () => {
    const { store, keys } = fresh();
    const entry = { beginId: 11n, endId: 20n, cycle: 1 };
    await store.addOutstanding("bf", run, [{ ...entry, checkAt: 1 }]);
    await client.zadd(keys.done, 0, "00000000000000000001:garbage");
    await expect(store.reclaimOutstanding("bf", run, [entry])).rejects.toMatchObject(corruptAt(keys.done));
    await client.del(keys.done);
    await client.hset(keys.metrics, "batchesLost", "lots");
    await expect(store.reclaimOutstanding("bf", run, [entry])).rejects.toMatchObject(corruptAt(keys.metrics));
    await expect(store.metrics("bf", run)).rejects.toMatchObject(corruptAt(keys.metrics));
    await client.hset(keys.metrics, "batchesLost", "0", "batchesDeferred", "-1");
    await expect(store.reclaimOutstanding("bf", run, [entry])).rejects.toMatchObject(corruptAt(keys.metrics));
    expect(await store.listOutstanding("bf", run, 10, 10)).toEqual([{ ...entry, checkAt: 1 }]);
    expect(await client.exists(keys.deferred)).toBe(0);
  });

  it("failure counting checks the counter and both minute buckets before writing", async () => {
    const { store, keys } = fresh();
    await client.hset(keys.metrics, "consecutiveFailures", "1.5");
    await expect(store.recordFailure("bf", run, 120_000)).rejects.toMatchObject(corruptAt(keys.metrics));
    await expect(store.metrics("bf", run)).rejects.toMatchObject(corruptAt(keys.metrics));
    expect(await client.exists(keys.minutes)).toBe(0);
    await client.hset(keys.metrics, "consecutiveFailures", "0");
    // The previous minute's bucket is read too (for the two-minute window).
    await client.hset(keys.minutes, "60000", "1:2:x");
    await expect(store.recordFailure("bf", run, 120_000)).rejects.toMatchObject(corruptAt(keys.minutes));
    await client.hset(keys.minutes, "60000", "1:2:3", "120000", "1:2:3:4");
    await expect(store.recordFailure("bf", run, 120_000)).rejects.toMatchObject(corruptAt(keys.minutes));
    await expect(store.markDone("bf", run, { beginId: 1n, endId: 2n, cycle: 0 }, 120_000)).rejects.toMatchObject(corruptAt(keys.minutes));
    expect(await client.hget(keys.metrics, "consecutiveFailures")).toBe("0");
    expect(await client.exists(keys.done)).toBe(0);
  });

  it("a failure record without a time, when requeueing since a time", async () => {
    const { store, keys } = fresh();
    await store.addFailed("bf", run, { beginId: 1n, endId: 2n, cycle: 0, error: "e", errorName: "Error", attempts: 1, at: 5 });
    await client.zadd(keys.failed, 0, `00000000000000000004:00000000000000000003:0000000000000000:${JSON.stringify({ error: "e", at: "5" })}`);
    await expect(store.requeueFailed("bf", run, 1)).rejects.toMatchObject(corruptAt(keys.failed));
    expect(await client.zcard(keys.failed)).toBe(2);
    expect(await client.exists(keys.deferred)).toBe(0);
    // Without a time the record's JSON is not needed: both move.
    expect(await store.requeueFailed("bf", run)).toBe(2);
  });

  it("a bad lastDoneAt", async () => {
    const { store, keys } = fresh();
    await client.hset(keys.metrics, "lastDoneAt", "yesterday");
    await expect(store.metrics("bf", run)).rejects.toMatchObject(corruptAt(keys.metrics));
  });
});
