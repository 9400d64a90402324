import { describeStateStoreContract } from "@superspreader/contract-tests";
import { Redis } from "ioredis";
import { Redis as RedisV5 } from "ioredis-v5";
import { afterAll } from "vitest";
import { createRedisStateStore, type RedisStateStoreOptions } from "../src/index.js";
import { newClient, randomPrefix, redisUrl } from "./helpers.js";

// One client per protocol for the whole file; each test gets a fresh key prefix.
const resp3 = newClient();
const resp2 = newClient({ protocol: 2 });

describeStateStoreContract("redis (ioredis default, RESP3)", async () => ({
  store: createRedisStateStore({ client: resp3, prefix: randomPrefix() }),
}));

describeStateStoreContract("redis (protocol: 2)", async () => ({
  store: createRedisStateStore({ client: resp2, prefix: randomPrefix() }),
}));

// ioredis 6's opt-in RESP3 reply shapes (maps as objects, numbers as numbers).
const resp3Mapped = new Redis(redisUrl(), { protocol: 3, replyMapping: "resp3" });
afterAll(() => resp3Mapped.disconnect());

describeStateStoreContract("redis (replyMapping: resp3)", async () => ({
  store: createRedisStateStore({ client: resp3Mapped, prefix: randomPrefix() }),
}));

// The oldest supported major. Users of ioredis 5 resolve "ioredis" to it, so its types
// line up for them; here it sits beside v6 under an alias, hence the cast.
const v5 = new RedisV5(redisUrl());
afterAll(() => v5.disconnect());

describeStateStoreContract("redis (ioredis 5)", async () => ({
  store: createRedisStateStore({ client: v5 as unknown as RedisStateStoreOptions["client"], prefix: randomPrefix() }),
}));
