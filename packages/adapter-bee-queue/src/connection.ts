import BeeQueue from "bee-queue";
import { SuperSpreaderError } from "@superspreader/core";
import { describeValue, invalidOption } from "@superspreader/core/adapter";

/**
 * node_redis v3 client options, as Bee-Queue takes them (`host`, `port`,
 * `password`, `db`, `url`, `tls`, …). Bee-Queue does not use ioredis, so an
 * ioredis client or its options do not fit here.
 */
export interface BeeQueueRedisOptions {
  readonly host?: string;
  readonly port?: number;
  readonly password?: string;
  readonly db?: number | string;
  /** `redis://[[user]:password@]host[:port][/db]`; `rediss://` turns TLS on. */
  readonly url?: string;
  readonly [option: string]: unknown;
}

/**
 * Where Bee-Queue connects: a redis URL or node_redis v3 options. A node_redis v3
 * `RedisClient` works too: Bee-Queue uses it for commands (and never closes it)
 * and duplicates it for its blocking and subscriber connections.
 */
export type BeeQueueRedis = string | BeeQueueRedisOptions;

/** The queue name both sides use unless told otherwise. */
export const DEFAULT_QUEUE_NAME = "superspreader";
/** Bee-Queue's own key prefix default. */
export const DEFAULT_PREFIX = "bq";

/** Where a queue lives in Redis: `<prefix>:<queueName>:*` keys. */
export interface QueueLocation {
  readonly redis: BeeQueueRedis;
  readonly queueName: string;
  readonly prefix: string;
}

function checkKeyPart(value: unknown, field: string): string {
  // Bee-Queue joins prefix and name with ":" into every key, so ":" or blanks would
  // silently address another queue's keys.
  if (typeof value !== "string" || !/^[A-Za-z0-9_.-]{1,100}$/.test(value)) {
    throw invalidOption(field, `must be 1–100 characters of letters, digits, "_", "." or "-", got ${describeValue(value)}`);
  }
  return value;
}

/** Validates `redis`, `queueName` and `prefix`, applying the defaults. */
export function resolveLocation(options: { redis?: unknown; queueName?: unknown; prefix?: unknown }): QueueLocation {
  const redis = options.redis;
  const isOptions = typeof redis === "object" && redis !== null && !Array.isArray(redis);
  if (!(typeof redis === "string" && redis.length > 0) && !isOptions) {
    throw invalidOption("redis", `must be a redis URL ("redis://host:6379") or node_redis options ({ host, port }), got ${describeValue(redis)}`);
  }
  return {
    redis: redis as BeeQueueRedis,
    queueName: checkKeyPart(options.queueName ?? DEFAULT_QUEUE_NAME, "queueName"),
    prefix: checkKeyPart(options.prefix ?? DEFAULT_PREFIX, "prefix"),
  };
}

/**
 * Opens a Bee-Queue instance and waits until its clients are connected. Rejects
 * with `ADAPTER_ERROR` (having closed what it opened) when Redis cannot be reached.
 */
export async function openQueue(
  location: QueueLocation,
  settings: Omit<BeeQueue.QueueSettings, "redis" | "prefix">,
  onError: (error: unknown) => void,
): Promise<BeeQueue> {
  // Passed on as given (Bee-Queue copies options itself), so a node_redis client keeps working.
  const redis = typeof location.redis === "string" ? { url: location.redis } : location.redis;
  const queue = new BeeQueue(location.queueName, { ...settings, prefix: location.prefix, redis: redis as BeeQueue.QueueSettings["redis"] });
  // Without a listener, an "error" event (a dropped connection, say) would throw
  // out of the EventEmitter and crash the process.
  queue.on("error", onError);
  try {
    await queue.ready();
  } catch (error) {
    await queue.close().catch(() => undefined);
    throw new SuperSpreaderError(
      "ADAPTER_ERROR",
      `Bee-Queue could not connect to Redis for queue ${describeValue(location.queueName)}: ${errorMessage(error)}; check the redis option`,
      { cause: error, field: "redis" },
    );
  }
  return queue;
}

/** The message of anything thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
