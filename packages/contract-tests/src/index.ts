export { describeStateStoreContract } from "./state-store.js";
export type { StateStoreHarness } from "./state-store.js";
export { describeJobQueueContract } from "./job-queue.js";
export type { JobQueueHarness, JobQueueContractOptions } from "./job-queue.js";
export { describeWorkerContract, serveChildWorker, runChildWorker } from "./worker.js";
export type { WorkerHarness, WorkerContractOptions, WorkerStartOptions, ContractWorker, KillableContractWorker } from "./worker.js";
export { describeIdSourceContract } from "./id-source.js";
export type { IdSourceHarness, IdSourceContractOptions } from "./id-source.js";
export { waitUntil } from "./util.js";
