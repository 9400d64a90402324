import { describeJobQueueContract, describeWorkerContract, serveChildWorker } from "@superspreader/contract-tests";
import { Queue } from "bullmq";
import { createBullMQJobQueue, runBullMQWorker } from "../src/index.js";
import { connect, forkWorker, uniqueQueueName } from "./helpers.js";

describeJobQueueContract("bullmq", async () => {
  const connection = connect();
  const queueName = uniqueQueueName("contract");
  return {
    // The suite wants retries within ~200 ms.
    queue: createBullMQJobQueue({ connection, queueName, backoff: { type: "fixed", delayMs: 100 }, onError: () => {} }),
    startWorker: (spreader) => runBullMQWorker({ spreader, connection, queueName, onError: () => {} }).then((w) => ({ stop: w.close })),
    cleanup: async () => void connection.disconnect(),
  };
});

// Short locks and stall checks so a dead worker's job comes back within a couple of seconds;
// maxStalledCount keeps BullMQ's default (1), which the stall-limit test relies on.
const TIMINGS = { lockDurationMs: 1_000, stalledIntervalMs: 300 };

describeWorkerContract(
  "bullmq",
  async () => {
    const connection = connect();
    const queueName = uniqueQueueName("worker-contract");
    return {
      queue: createBullMQJobQueue({ connection, queueName, backoff: { type: "fixed", delayMs: 100 }, onError: () => {} }),
      startWorker: (spreader, options) => runBullMQWorker({ spreader, connection, queueName, ...TIMINGS, ...options, onError: () => {} }),
      startKillableWorker: (spreader, options) =>
        serveChildWorker(forkWorker("contract-worker", [queueName, String(TIMINGS.lockDurationMs), String(TIMINGS.stalledIntervalMs)]), spreader, options),
      cleanup: async () => {
        const inspector = new Queue(queueName, { connection });
        await inspector.obliterate({ force: true });
        await inspector.close();
        connection.disconnect();
      },
    };
  },
  { stallLimit: 1 },
);
