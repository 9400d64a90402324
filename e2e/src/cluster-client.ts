import { Cluster } from "ioredis";

/** A Redis Cluster node address, as a test passes it to the processes it forks. */
export interface ClusterAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * A worker-grade ioredis `Cluster` client (BullMQ's rule for blocking connections:
 * `maxRetriesPerRequest: null` on every node connection).
 *
 * `retryDelayOnFailover` is raised from ioredis's 100 ms: a command to a primary that just died
 * is retried (slots refreshed, `maxRedirections` = 16 times) until the cluster notices and its
 * replica takes over, `cluster-node-timeout` plus an election, ~3–4 s with the test cluster's
 * 2 s timeout. At 100 ms the retries run out after ~2 s and the command fails with "Too many
 * Cluster redirections"; at 300 ms they last ~5 s. Nothing is lost either way (the runtime
 * retries and reconciles); it only keeps needless failures out of the logs.
 *
 * @example
 * ```ts
 * const client = clusterClient([{ host: "127.0.0.1", port: 7000 }]);
 * await runBullMQWorker({ spreader, connection: client, prefix: "{bf}" });
 * ```
 */
export function clusterClient(nodes: readonly ClusterAddress[]): Cluster {
  return new Cluster(
    nodes.map(({ host, port }) => ({ host, port })),
    { redisOptions: { maxRetriesPerRequest: null }, retryDelayOnFailover: 300 },
  );
}
