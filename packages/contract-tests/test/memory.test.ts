import {
  createMemoryIdSource,
  createMemoryJobQueue,
  createMemoryStateStore,
  createMemoryWorker,
  type JobProcessor,
} from "@superspreader/core";
import { describeIdSourceContract, describeJobQueueContract, describeStateStoreContract, describeWorkerContract } from "../src/index.js";
import type { WorkerStartOptions } from "../src/index.js";

// The in-memory implementations are the reference: they pass every suite first.
describeStateStoreContract("memory", async () => ({ store: createMemoryStateStore() }));

describeJobQueueContract("memory", async () => {
  const queue = createMemoryJobQueue({ retryDelayMs: 50 });
  return {
    queue,
    startWorker: async (spreader) => {
      const worker = createMemoryWorker({ queue, spreader });
      worker.start();
      return { stop: () => worker.close() };
    },
  };
});

describeWorkerContract("memory", async () => {
  const queue = createMemoryJobQueue({ retryDelayMs: 50 });
  const start = (spreader: JobProcessor, options: WorkerStartOptions) => {
    const worker = createMemoryWorker({ queue, spreader, ...options });
    worker.start();
    return worker;
  };
  return {
    queue,
    startWorker: async (spreader, options) => start(spreader, options),
    // An in-process death: kill() drops the worker's running jobs back into the queue as stalled.
    startKillableWorker: async (spreader, options) => {
      const worker = start(spreader, options);
      return { close: () => worker.close(), kill: async () => worker.kill() };
    },
  };
});

describeIdSourceContract("memory (list)", async (ids) => ({ source: createMemoryIdSource({ ids }) }));
