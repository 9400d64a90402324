import { describeJobQueueContract } from "@superspreader/contract-tests";
import { createBullMQJobQueue, runBullMQWorker } from "../src/index.js";
import { connect, uniqueQueueName } from "./helpers.js";

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
