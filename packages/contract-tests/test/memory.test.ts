import {
  createMemoryIdSource,
  createMemoryJobQueue,
  createMemoryStateStore,
  createMemoryWorker,
} from "@superspreader/core";
import { describeIdSourceContract, describeJobQueueContract, describeStateStoreContract } from "../src/index.js";

// The in-memory implementations are the reference: they pass every suite first.
describeStateStoreContract("memory", async () => ({ store: createMemoryStateStore() }));

describeJobQueueContract("memory", async () => {
  const queue = createMemoryJobQueue({ retryDelayMs: 50 });
  return {
    queue,
    startWorker: async (spreader) => {
      const worker = createMemoryWorker({ queue, spreader });
      worker.start();
      return worker;
    },
  };
});

describeIdSourceContract("memory (list)", async (ids) => ({ source: createMemoryIdSource({ ids }) }));
