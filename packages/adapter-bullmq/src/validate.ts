import { describeValue, invalidOption } from "@superspreader/core/adapter";
import type { Cluster, Redis } from "ioredis";

/** BullMQ's queue name: non-empty and free of `:`, which BullMQ uses as its key separator. */
export function queueNameOption(value: unknown, field = "queueName"): string {
  if (value === undefined) return "superspreader";
  if (typeof value !== "string" || value.length === 0 || value.includes(":")) {
    throw invalidOption(field, `must be a non-empty string without ":", got ${describeValue(value)}`);
  }
  return value;
}

/** BullMQ's key prefix; put a hash tag in it (`"{bf}"`) on Redis Cluster. */
export function prefixOption(value: unknown, field = "prefix"): string {
  if (value === undefined) return "bull";
  if (typeof value !== "string" || value.length === 0) {
    throw invalidOption(field, `must be a non-empty string, got ${describeValue(value)}`);
  }
  return value;
}

/** Options an ioredis `Redis` or `Cluster` connects with (a Cluster keeps per-node ones in `redisOptions`). */
function clientOptions(client: Redis | Cluster): { keyPrefix?: unknown; maxRetriesPerRequest?: unknown } {
  const options = (client as { options?: { redisOptions?: object; keyPrefix?: unknown; maxRetriesPerRequest?: unknown } }).options ?? {};
  return (client as { isCluster?: boolean }).isCluster === true ? { ...options, ...(options.redisOptions ?? {}) } : options;
}

/**
 * Checks the injected ioredis client. A worker's connections block (BullMQ fetches
 * with BZPOPMIN), so BullMQ insists on `maxRetriesPerRequest: null` for them and
 * throws a bare Error otherwise; we say the same before anything is opened.
 */
export function connectionOption(value: unknown, mode: "producer" | "worker", field = "connection"): Redis | Cluster {
  const client = value as Partial<Redis> | undefined;
  if (typeof client !== "object" || client === null || typeof client.pipeline !== "function" || typeof client.duplicate !== "function") {
    throw invalidOption(field, `must be an ioredis Redis or Cluster instance, got ${describeValue(value)}`);
  }
  const options = clientOptions(value as Redis | Cluster);
  if (options.keyPrefix) {
    throw invalidOption(field, `must not use ioredis keyPrefix (got ${describeValue(options.keyPrefix)}): use the prefix option instead`);
  }
  if (mode === "worker" && options.maxRetriesPerRequest) {
    throw invalidOption(
      field,
      `must be created with maxRetriesPerRequest: null for a worker (got ${describeValue(options.maxRetriesPerRequest)}), as BullMQ requires for blocking connections: new Redis(url, { maxRetriesPerRequest: null })`,
    );
  }
  return value as Redis | Cluster;
}
