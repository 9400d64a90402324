import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeStateStoreContract } from "@superspreader/contract-tests";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../../scripts/servers/servers.js";
import { createRedisStateStore } from "../src/index.js";
import { randomPrefix } from "./helpers.js";

/*
 * A one-node Redis Cluster (all 16384 slots on one redis-server). It enforces the
 * same rule as a real cluster: a command or script whose keys hash to different
 * slots fails with CROSSSLOT. So the contract suite passing here shows the key
 * layout is Cluster-safe.
 */
let server: ChildProcess;
let dir: string;
let cluster: Cluster;

async function poll(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} within 15 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ss-redis-cluster-"));
  const port = await freePort();
  server = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
     // Without it the node reports an empty IP in CLUSTER SLOTS and the client cannot follow it.
     "--cluster-announce-ip", "127.0.0.1"],
    { stdio: "ignore" },
  );
  const admin = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: 0 });
  admin.on("error", () => {}); // refused connections while the server starts; poll() retries
  try {
    await poll("redis-server in cluster mode did not start", async () => (await admin.ping()) === "PONG");
    await admin.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383");
    await poll("the one-node cluster did not become ok", async () => String(await admin.call("CLUSTER", "INFO")).includes("cluster_state:ok"));
  } finally {
    admin.disconnect();
  }
  cluster = new Cluster([{ host: "127.0.0.1", port }]);
  await poll("the Cluster client did not connect", async () => (await cluster.ping()) === "PONG");
}, 30_000);

afterAll(async () => {
  cluster?.disconnect();
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await once(server, "exit");
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describeStateStoreContract("redis (ioredis Cluster)", async () => ({
  store: createRedisStateStore({ client: cluster, prefix: randomPrefix() }),
}));

describe("on a cluster", () => {
  it("refuses a script across slots (what makes this file meaningful)", async () => {
    await expect(cluster.eval("return 1", 2, "{a}:x", "{b}:y")).rejects.toThrow(/CROSSSLOT/);
  });

  it("spreads backfills over slots and keeps each backfill in one", async () => {
    const prefix = randomPrefix();
    const store = createRedisStateStore({ client: cluster, prefix });
    const names = ["alpha", "beta", "gamma"];
    for (const name of names) {
      await store.compareAndSet(name, 0, { name });
      await store.markDone(name, "r", { beginId: 1n, endId: 5n, cycle: 0 }, 1);
      await store.addFailed(name, "r", { beginId: 6n, endId: 9n, cycle: 0, error: "e", errorName: "E", attempts: 1, at: 1 });
      expect(await store.requeueFailed(name, "r")).toBe(1);
      await store.addOutstanding(name, "r", [{ beginId: 10n, endId: 19n, cycle: 1, checkAt: 1 }]);
      expect(await store.reclaimOutstanding(name, "r", [{ beginId: 10n, endId: 19n, cycle: 1 }])).toHaveLength(1);
      expect((await store.recordFailure(name, "r", 1)).consecutive).toBe(1);
      const slots = new Set(
        await Promise.all(
          ["doc", "run:r:done", "run:r:metrics", "run:r:minutes", "run:r:deferred", "run:r:failed", "run:r:outstanding"].map((k) =>
            cluster.call("CLUSTER", "KEYSLOT", `${prefix}:{${name}}:${k}`),
          ),
        ),
      );
      expect(slots.size).toBe(1);
    }
    expect(await store.list()).toEqual(names);
  });
});
