import { describeJobQueueContract, describeWorkerContract, serveChildWorker } from "@superspreader/contract-tests";
import { createBeeQueueJobQueue, runBeeQueueWorker } from "../src/index.js";
import { dropKeys, forkWorker, rawRedis, redisUrl, uniqueName } from "./helpers.js";

const cleanup = (prefix: string, queueName: string) => async () => {
  const redis = rawRedis();
  await dropKeys(redis, `${prefix}:${queueName}:*`);
  redis.disconnect();
};

describeJobQueueContract(
  "bee-queue",
  async () => {
    const queueName = uniqueName("contract");
    const location = { redis: redisUrl(), queueName, prefix: "bqc" };
    return {
      queue: createBeeQueueJobQueue({ ...location, backoff: { type: "fixed", delayMs: 100 } }),
      startWorker: async (spreader) => {
        const worker = await runBeeQueueWorker({ ...location, spreader, onError: () => undefined });
        return { stop: () => worker.close() };
      },
      cleanup: cleanup("bqc", queueName),
    };
  },
  // Bee-Queue has no priorities; the adapter says so in capabilities.priorities.
  { skipPriorities: true },
);

// Short stall intervals so a dead worker's job comes back within a couple of seconds.
const STALL_MS = 400;

describeWorkerContract(
  "bee-queue",
  async () => {
    const queueName = uniqueName("worker-contract");
    const location = { redis: redisUrl(), queueName, prefix: "bqc" };
    return {
      queue: createBeeQueueJobQueue({ ...location, backoff: { type: "fixed", delayMs: 100 } }),
      startWorker: (spreader, options) => runBeeQueueWorker({ ...location, spreader, stallIntervalMs: STALL_MS, ...options, onError: () => undefined }),
      startKillableWorker: (spreader, options) => serveChildWorker(forkWorker("contract-worker", [queueName, "bqc", String(STALL_MS)]), spreader, options),
      cleanup: cleanup("bqc", queueName),
    };
  },
  // No priorities (capabilities.priorities is false); stalled jobs are re-run forever, with no stall limit.
  { skipPriorities: true },
);
