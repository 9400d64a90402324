import { SuperSpreaderError } from "@superspreader/core";
import type { Cluster, Redis } from "ioredis";

// Like core's describeValue (not exported by core), but short for class instances
// such as a wrong client, whose JSON would be huge or circular.
export function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value !== "object" || value === null) return String(value);
  const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
  if (ctor !== undefined && ctor !== "Object" && ctor !== "Array") return `a ${ctor} instance`;
  try {
    const json = JSON.stringify(value);
    return json.length > 200 ? `${json.slice(0, 200)}…` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

export function invalidOption(field: string, message: string): SuperSpreaderError {
  return new SuperSpreaderError("INVALID_CONFIG", `${field} ${message}`, { field });
}

/** A whole number in `[min, max]`, or `fallback` when absent. */
export function wholeNumber(value: unknown, field: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
    throw invalidOption(field, `must be a whole number ${range}, got ${describeValue(value)}`);
  }
  return value;
}

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

/** `onError` hooks: a function, defaulting to console.error. */
export function errorHookOption<F extends (...args: never[]) => void>(value: unknown, fallback: F, field = "onError"): F {
  if (value === undefined) return fallback;
  if (typeof value !== "function") throw invalidOption(field, `must be a function, got ${describeValue(value)}`);
  return value as F;
}
