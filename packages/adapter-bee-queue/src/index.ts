export { createBeeQueueJobQueue } from "./queue.js";
export type { BeeQueueJobQueueOptions, BeeQueueBackoff } from "./queue.js";
export { runBeeQueueWorker } from "./worker.js";
export type { BeeQueueWorkerOptions, BeeQueueWorkerHandle, BeeQueueWorkerJobInfo } from "./worker.js";
export type { BeeQueueRedis, BeeQueueRedisOptions } from "./connection.js";
