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
 * A node-postgres `Pool`, as BullMQ's PostgreSQL backend takes it: the few members used here,
 * structurally, because BullMQ's own `PgPool` type does not accept `@types/pg`'s `Pool`.
 */
export interface PostgresPool {
  connect(): Promise<unknown>;
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  end(): Promise<void>;
  /** Clients the pool holds; a single `pg.Client` has none, which tells the two apart. */
  readonly totalCount: number;
}

/** Where BullMQ keeps the queue: the injected client, tagged with its kind. */
export type Connection = { readonly kind: "redis"; readonly client: Redis | Cluster } | { readonly kind: "postgres"; readonly pool: PostgresPool };

/** A node-postgres `Pool` (not a single `Client`, which has no `totalCount`). */
function isPool(value: unknown): value is PostgresPool & { options?: { max?: unknown } } {
  const pool = value as { connect?: unknown; query?: unknown; end?: unknown; totalCount?: unknown } | null | undefined;
  return typeof pool?.connect === "function" && typeof pool.query === "function" && typeof pool.end === "function" && typeof pool.totalCount === "number";
}

/**
 * Checks the injected client: an ioredis client (BullMQ on Redis) or a `pg.Pool` (BullMQ's
 * PostgreSQL backend). A worker's connections block (BullMQ fetches with BZPOPMIN on Redis,
 * LISTEN on PostgreSQL): BullMQ insists on `maxRetriesPerRequest: null` for ioredis and throws
 * a bare Error otherwise, and holds one client of a `pg.Pool` for its LISTEN, so a pool of one
 * would deadlock. We say so before anything is opened.
 */
export function connectionOption(value: unknown, mode: "producer" | "worker", field = "connection"): Connection {
  if (isPool(value)) {
    const max = value.options?.max ?? 10;
    if (mode === "worker" && typeof max === "number" && max < 2) {
      throw invalidOption(field, `must be a pg Pool with max of at least 2 for a worker (BullMQ keeps one client for LISTEN), got max ${describeValue(max)}`);
    }
    return { kind: "postgres", pool: value };
  }
  const client = value as Partial<Redis> | undefined;
  if (typeof client !== "object" || client === null || typeof client.pipeline !== "function" || typeof client.duplicate !== "function") {
    throw invalidOption(field, `must be an ioredis Redis or Cluster instance, or a pg Pool (BullMQ's PostgreSQL backend), got ${describeValue(value)}`);
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
  return { kind: "redis", client: value as Redis | Cluster };
}

/**
 * BullMQ's key prefix, Redis only: on PostgreSQL BullMQ ignores it (queues are namespaced by
 * schema), so a prefix given there would silently not separate anything.
 */
export function prefixFor(connection: Connection, value: unknown, field = "prefix"): string {
  if (connection.kind === "postgres" && value !== undefined) {
    throw invalidOption(
      field,
      `is for Redis only; BullMQ's PostgreSQL backend ignores it (queues live in the schema "bullmq"; use another queueName or database), got ${describeValue(value)}`,
    );
  }
  return prefixOption(value, field);
}
