/*
 * adapter-bullmq's JobQueue and worker contracts on a real Redis Cluster: three primaries with a
 * replica each (scripts/servers/cluster.ts), an ioredis `Cluster` client, and the hash-tagged
 * prefix the README asks for. Each test's queue gets a tag of its own, so the suite's queues sit
 * on all three primaries and the client follows redirections between them.
 */
import { randomUUID } from "node:crypto";
import { describeJobQueueContract, describeWorkerContract, serveChildWorker } from "@superspreader/contract-tests";
import { Queue } from "bullmq";
import { Cluster } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { startRedisCluster, type RedisCluster } from "../../../scripts/servers/cluster.js";
import { createBullMQJobQueue, runBullMQWorker } from "../src/index.js";
import { forkWorker, uniqueQueueName } from "./helpers.js";

let servers: RedisCluster;

beforeAll(async () => {
  servers = await startRedisCluster();
}, 60_000);

afterAll(async () => {
  await servers?.stop();
}, 30_000);

const addresses = () => servers.nodes.map(({ host, port }) => ({ host, port }));
// As the README says for Cluster: maxRetriesPerRequest null on the node connections.
const connect = () => new Cluster(addresses(), { redisOptions: { maxRetriesPerRequest: null } });
/** A prefix whose hash tag is new per test: the test's queue lands on any of the three primaries. */
const taggedPrefix = () => `{ct-${randomUUID().slice(0, 8)}}`;

async function dropQueue(connection: Cluster, queueName: string, prefix: string): Promise<void> {
  const inspector = new Queue(queueName, { connection, prefix });
  await inspector.obliterate({ force: true });
  await inspector.close();
}

describeJobQueueContract("bullmq (Redis Cluster, 3 primaries)", async () => {
  const connection = connect();
  const queueName = uniqueQueueName("contract");
  const prefix = taggedPrefix();
  return {
    // The suite wants retries within ~200 ms.
    queue: createBullMQJobQueue({ connection, queueName, prefix, backoff: { type: "fixed", delayMs: 100 }, onError: () => {} }),
    startWorker: (spreader) => runBullMQWorker({ spreader, connection, queueName, prefix, onError: () => {} }).then((w) => ({ stop: w.close })),
    cleanup: async () => {
      await dropQueue(connection, queueName, prefix);
      connection.disconnect();
    },
  };
});

// As contract.test.ts: short locks and stall checks, BullMQ's default stall limit (1).
const TIMINGS = { lockDurationMs: 1_000, stalledIntervalMs: 300 };

describeWorkerContract(
  "bullmq (Redis Cluster, 3 primaries)",
  async () => {
    const connection = connect();
    const queueName = uniqueQueueName("worker-contract");
    const prefix = taggedPrefix();
    return {
      queue: createBullMQJobQueue({ connection, queueName, prefix, backoff: { type: "fixed", delayMs: 100 }, onError: () => {} }),
      startWorker: (spreader, options) => runBullMQWorker({ spreader, connection, queueName, prefix, ...TIMINGS, ...options, onError: () => {} }),
      startKillableWorker: (spreader, options) =>
        serveChildWorker(
          forkWorker("contract-worker", [queueName, String(TIMINGS.lockDurationMs), String(TIMINGS.stalledIntervalMs), JSON.stringify(addresses()), prefix]),
          spreader,
          options,
        ),
      cleanup: async () => {
        await dropQueue(connection, queueName, prefix);
        connection.disconnect();
      },
    };
  },
  { stallLimit: 1 },
);
