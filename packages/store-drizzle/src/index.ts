export { createDrizzleStateStore } from "./drizzle-store.js";
export type { DrizzleStateStore, DrizzleStateStoreOptions, TransactionOf } from "./drizzle-store.js";
export { migrateStateStore, SCHEMA_VERSION } from "./schema.js";
export type { MigrateStateStoreOptions, MigrationResult } from "./schema.js";
export type { Dialect } from "./dialect.js";
