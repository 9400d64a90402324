export { createDrizzleIdSource } from "./id-source.js";
export type { DrizzleIdSourceOptions } from "./id-source.js";
export { idRange, selectIdsInRange } from "./range.js";
export type { SelectIdsInRangeOptions } from "./range.js";
export { batchExecute } from "./batch-execute.js";
export type { BatchExecuteOptions, BatchWindow, BatchProgress, BatchSummary } from "./batch-execute.js";
export type { DrizzleDatabase } from "./target.js";
