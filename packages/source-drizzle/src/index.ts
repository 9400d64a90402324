export { createDrizzleIdSource } from "./id-source.js";
export type { DrizzleIdSourceOptions } from "./id-source.js";
export { idRange, selectIdsInRange } from "./range.js";
export type { SelectIdsInRangeOptions } from "./range.js";
export { batchExecute } from "./batch-execute.js";
export type { BatchExecuteOptions, BatchWindow, BatchProgress, BatchSummary } from "./batch-execute.js";
export type { DrizzleDatabase } from "./target.js";
export { worstOf } from "./health.js";
export {
  createPgReplicationLagIndicator,
  createPgLongTransactionIndicator,
  createPgAutovacuumIndicator,
  createPgLockWaitIndicator,
  createPgConnectionIndicator,
} from "./health-postgres.js";
export type {
  PgReplicationLagIndicatorOptions,
  PgLongTransactionIndicatorOptions,
  PgAutovacuumIndicatorOptions,
  PgLockWaitIndicatorOptions,
  PgConnectionIndicatorOptions,
} from "./health-postgres.js";
export { createMySqlReplicaLagIndicator, createMySqlThreadsRunningIndicator } from "./health-mysql.js";
export type { MySqlReplicaLagIndicatorOptions, MySqlThreadsRunningIndicatorOptions } from "./health-mysql.js";
