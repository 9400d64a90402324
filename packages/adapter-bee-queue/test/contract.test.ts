import { describeJobQueueContract } from "@superspreader/contract-tests";
import { createBeeQueueJobQueue, runBeeQueueWorker } from "../src/index.js";
import { dropKeys, rawRedis, redisUrl, uniqueName } from "./helpers.js";

describeJobQueueContract(
  "bee-queue",
  async () => {
    const queueName = uniqueName("contract");
    const location = { redis: redisUrl(), queueName, prefix: "bqc" };
    return {
      queue: createBeeQueueJobQueue({ ...location, backoff: { strategy: "fixed", delayMs: 100 } }),
      startWorker: async (spreader) => {
        const worker = await runBeeQueueWorker({ ...location, spreader, onError: () => undefined });
        return { stop: () => worker.close() };
      },
      cleanup: async () => {
        const redis = rawRedis();
        await dropKeys(redis, `bqc:${queueName}:*`);
        redis.disconnect();
      },
    };
  },
  // Bee-Queue has no priorities; the adapter says so in capabilities.priorities.
  { skipPriorities: true },
);
