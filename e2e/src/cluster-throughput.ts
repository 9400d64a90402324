import { randomUUID } from "node:crypto";
import { createBullMQJobQueue, runBullMQWorker } from "@superspreader/adapter-bullmq";
import { createMemoryIdSource, createSuperSpreader } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Queue } from "bullmq";
import type { Cluster, Redis } from "ioredis";

/**
 * Batches per second of one in-process worker (no-op handler, concurrency 50) on a backfill of
 * `batches` batches all planned in its first cycle (5,000/s), timed from `start()` until the
 * ledger holds them all: what Redis and the client allow, not the pacing, nor the next tick that
 * would mark the run completed. The same code on a single Redis and on a Cluster gives the
 * Cluster's cost (issue #13). Not a benchmark: one short run on whatever else the machine is
 * doing; compare figures of the same run. The connection needs `maxRetriesPerRequest: null`.
 * Leaves no queue and, on a single Redis, no store keys behind.
 */
export async function noopThroughput(connection: Redis | Cluster, batches: number): Promise<number> {
  const tag = `tp-${randomUUID().slice(0, 8)}`;
  const prefix = `{${tag}}`;
  const queueName = "throughput";
  const spreader = createSuperSpreader({
    queue: createBullMQJobQueue({ connection, queueName, prefix }),
    store: createRedisStateStore({ client: connection, prefix: tag }),
  });
  spreader.define("noop", {
    source: createMemoryIdSource({ minId: 1n, maxId: BigInt(batches * 10) }),
    config: { batchSize: 10, duration: 1, perSecondOnPeak: 5_000, perSecondOffPeak: 5_000 },
    async handle() {},
  });
  const worker = await runBullMQWorker({ spreader, connection, queueName, prefix, concurrency: 50, watchdogIntervalMs: 0, log: "quiet" });
  try {
    const startedAt = Date.now();
    await spreader.start("noop");
    for (;;) {
      const { status, progress } = await spreader.status("noop");
      if (progress.batchesDone >= batches) break;
      if (status !== "running") throw new Error(`the throughput backfill ended ${status} with ${progress.batchesDone} of ${batches} batches done`);
      if (Date.now() - startedAt > 60_000) throw new Error("the throughput backfill did not complete within 60 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return batches / ((Date.now() - startedAt) / 1000);
  } finally {
    await worker.close();
    const inspector = new Queue(queueName, { connection, prefix });
    await inspector.obliterate({ force: true });
    await inspector.close();
    // A Cluster is the test's own and goes away with it; a single Redis is shared by the suite.
    if (!("isCluster" in connection && connection.isCluster)) {
      let cursor = "0";
      do {
        const [next, keys] = await connection.scan(cursor, "MATCH", `${tag}:*`, "COUNT", 1_000);
        if (keys.length > 0) await connection.del(...keys);
        cursor = next;
      } while (cursor !== "0");
    }
  }
}
