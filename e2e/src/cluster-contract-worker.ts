/**
 * A BullMQ worker on a Redis Cluster in a child process, for adapter-bullmq's worker contract on
 * the 3-node cluster (packages/adapter-bullmq/test/cluster3.test.ts): the suite SIGKILLs it to
 * kill a worker for real. Its processor calls are served by the parent test. It lives here, not
 * in adapter-bullmq's fixtures, only because that package's fixtures are not this change's to add.
 * Args: nodes (JSON [{ host, port }]), queueName, prefix, lockDurationMs, stalledIntervalMs
 */
import { runBullMQWorker } from "@superspreader/adapter-bullmq";
import { runChildWorker } from "@superspreader/contract-tests";
import { clusterClient, type ClusterAddress } from "./cluster-client.js";

const [nodes = "[]", queueName = "", prefix = "", lockDurationMs = "1000", stalledIntervalMs = "300"] = process.argv.slice(2);

runChildWorker(async (spreader, options) => {
  const connection = clusterClient(JSON.parse(nodes) as ClusterAddress[]);
  const worker = await runBullMQWorker({
    spreader,
    connection,
    queueName,
    prefix,
    lockDurationMs: Number(lockDurationMs),
    stalledIntervalMs: Number(stalledIntervalMs),
    ...options,
    onError: () => {},
  });
  return {
    close: async () => {
      await worker.close();
      connection.disconnect();
    },
  };
});
