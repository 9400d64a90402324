export { createRedisStateStore } from "./redis-store.js";
export type { RedisStateStoreOptions } from "./redis-store.js";
