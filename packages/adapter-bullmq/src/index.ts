export { createBullMQJobQueue } from "./queue.js";
export type { BullMQJobQueueOptions, BullMQRetention, BullMQBackoff } from "./queue.js";
export { runBullMQWorker } from "./worker.js";
export type { BullMQWorkerOptions, BullMQWorkerHandle, BullMQWorkerJobInfo } from "./worker.js";
