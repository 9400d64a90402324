/**
 * One worker process of the Redis Cluster run (e2e/test/cluster.test.ts), forked by the test.
 * Args: the run's names (JSON), the cluster's nodes (JSON [{ host, port }]).
 * It runs every backfill of the run: ticks and batches of all of them come off the one queue.
 * It reports each worker error once per distinct message (`{ type: "error", message }`), so the
 * test can say what a failover looked like from a client.
 */
import { runBullMQWorker } from "@superspreader/adapter-bullmq";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";
import { clusterClient, type ClusterAddress } from "./cluster-client.js";
import { CLUSTER_CONCURRENCY, CLUSTER_WORKER, createClusterSpreader, logRanges, type ClusterRunNames } from "./cluster-world.js";
import { serverUrl } from "./env.js";

const [namesJson = "{}", nodesJson = "[]"] = process.argv.slice(2);
const names = JSON.parse(namesJson) as ClusterRunNames;
const connection = clusterClient(JSON.parse(nodesJson) as ClusterAddress[]);
const seen = new Set<string>();
const report = (error: unknown) => {
  // Job ids and ports vary; the rest of the message says what went wrong.
  const message = (error instanceof Error ? error.message : String(error)).replace(/\d+/g, "N").slice(0, 300);
  if (seen.has(message)) return;
  seen.add(message);
  process.send?.({ type: "error", message });
};
connection.on("error", report);
const pool = new pg.Pool({ connectionString: serverUrl("SUPERSPREADER_PG_URL"), max: CLUSTER_CONCURRENCY + 1 });
const db = drizzle({ client: pool });
const spreader = createClusterSpreader(connection, db, names, logRanges(db, names, 50));

await runBullMQWorker({
  spreader,
  connection,
  queueName: names.queueName,
  prefix: names.queuePrefix,
  concurrency: CLUSTER_CONCURRENCY,
  ...CLUSTER_WORKER,
  onError: report,
  log: "quiet",
});
process.send?.({ type: "ready", pid: process.pid });
