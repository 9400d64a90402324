import {
  createMemoryIdSource,
  createMemoryJobQueue,
  createMemoryWorker,
  createSuperSpreader,
  type BackfillConfigInput,
  type BatchContext,
  type MemoryWorker,
  type SuperSpreader,
} from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Redis } from "ioredis";
import { redisUrl } from "./helpers.js";

/** One backfill of a test app: its id space, config and (optionally) handler. */
export interface TestBackfill {
  readonly maxId: number;
  readonly config: BackfillConfigInput;
  readonly handle?: (context: BatchContext) => Promise<void>;
}

/** The worker side of an app: its spreader, its worker, and what it opened. */
export interface MemoryApp {
  readonly spreader: SuperSpreader;
  readonly worker: MemoryWorker;
  /** Stops the worker and closes the connection (never the test's Redis server). */
  close(): Promise<void>;
}

/**
 * An app whose workers run in this test process on the in-memory queue, with its state in the
 * test's real Redis under `prefix`: what the CLI, which has no queue, reads and changes. The
 * worker's watchdog runs every `watchdogIntervalMs`, so requests written by the CLI are carried
 * out quickly.
 */
export function memoryApp(prefix: string, backfills: Readonly<Record<string, TestBackfill>>, options: { watchdogIntervalMs?: number } = {}): MemoryApp {
  const client = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const queue = createMemoryJobQueue();
  const spreader = createSuperSpreader({ queue, store: createRedisStateStore({ client, prefix }) });
  for (const [name, { maxId, config, handle }] of Object.entries(backfills)) {
    spreader.define(name, { source: createMemoryIdSource({ minId: 1, maxId }), config, handle: handle ?? (async () => {}) });
  }
  const worker = createMemoryWorker({ queue, spreader, concurrency: 4, watchdogIntervalMs: options.watchdogIntervalMs ?? 100 });
  worker.start();
  return {
    spreader,
    worker,
    async close() {
      await worker.close();
      client.disconnect();
    },
  };
}
