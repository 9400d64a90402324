import { describeStateStoreContract } from "@superspreader/contract-tests";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisCluster, type RedisCluster } from "../../../scripts/servers/cluster.js";
import { createRedisStateStore } from "../src/index.js";
import { randomPrefix } from "./helpers.js";

/*
 * A real Redis Cluster: three primaries with a replica each, separate redis-server processes.
 * Unlike the one-node cluster (cluster.test.ts), keys of different backfills live on different
 * servers, the client follows MOVED redirections between them, and a primary can die and be
 * failed over.
 */
let servers: RedisCluster;
let client: Cluster;

beforeAll(async () => {
  servers = await startRedisCluster();
  client = new Cluster(servers.nodes.map(({ host, port }) => ({ host, port })));
  await client.ping();
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  await servers?.stop();
}, 30_000);

describeStateStoreContract("redis (ioredis Cluster, 3 primaries + 3 replicas)", async () => ({
  store: createRedisStateStore({ client, prefix: randomPrefix() }),
}));

/** One backfill name per primary: the store's hash tag is the name, so these land on three servers. */
async function namePerPrimary(): Promise<Map<number, string>> {
  const byPrimary = new Map<number, string>();
  for (let i = 0; byPrimary.size < 3; i++) {
    const name = `bf${i}`;
    const primary = await servers.primaryOf(await servers.keySlot(`{${name}}`));
    if (!byPrimary.has(primary.port)) byPrimary.set(primary.port, name);
  }
  return byPrimary;
}

describe("on a 3-primary cluster", () => {
  it("runs the whole ledger of backfills on three different servers from one client", async () => {
    const prefix = randomPrefix();
    const store = createRedisStateStore({ client, prefix });
    const names = [...(await namePerPrimary()).values()];
    await Promise.all(
      names.map(async (name) => {
        expect(await store.compareAndSet(name, 0, { name })).toBe(1);
        await store.markDone(name, "r", { beginId: 1n, endId: 100n, cycle: 0 }, 100);
        await store.addOutstanding(name, "r", [{ beginId: 101n, endId: 200n, cycle: 1, checkAt: 1 }]);
        expect(await store.reclaimOutstanding(name, "r", [{ beginId: 101n, endId: 200n, cycle: 1 }])).toHaveLength(1);
        expect(await store.listDone(name, "r")).toEqual([{ beginId: 1n, endId: 100n }]);
      }),
    );
    // The index of names is one key on one server; the documents it names are on all three.
    expect(await store.list()).toEqual([...names].sort());
    await store.close();
  });

  it("keeps what was written before a primary was killed, and writes on after its replica took over", async () => {
    const prefix = randomPrefix();
    const store = createRedisStateStore({ client, prefix });
    const byPrimary = await namePerPrimary();
    for (const name of byPrimary.values()) await store.compareAndSet(name, 0, { step: 1 });
    await servers.replicated();

    const [victimPort, victimName = ""] = [...byPrimary.entries()][0] ?? [];
    const victim = servers.nodes.find((node) => node.port === victimPort);
    if (!victim) throw new Error("no primary to kill");
    const failover = await servers.killPrimary(victim);
    console.log(`store-redis cluster3: primary ${victim.port} killed, replica ${failover.promoted.port} promoted after ${failover.promotedAfterMs} ms, cluster ok after ${failover.okAfterMs} ms`);

    for (const name of byPrimary.values()) {
      expect(await store.get(name)).toEqual({ version: 1, value: { step: 1 } });
      expect(await store.compareAndSet(name, 1, { step: 2 })).toBe(2);
    }
    expect((await servers.primaryOf(await servers.keySlot(`{${victimName}}`))).port).toBe(failover.promoted.port);
    await store.close();
  }, 60_000);
});
