// One worker process of the real example, forked by real.ts: defines the backfill and
// runs a BullMQ worker until the parent says stop (or goes away).
import { createBullMQJobQueue, runBullMQWorker } from "@superspreader/adapter-bullmq";
import { createSuperSpreader } from "@superspreader/core";
import { accountsTable, defineNormaliseEmails, reportFailures, trackWork } from "@superspreader/example-demo";
import { createRedisStateStore } from "@superspreader/store-redis";
import { drizzle } from "drizzle-orm/node-postgres";
import { Redis } from "ioredis";
import pg from "pg";
import { ARGS_VARIABLE } from "./protocol.js";
import type { ParentMessage, WorkerArgs, WorkerMessage } from "./protocol.js";

const args = JSON.parse(process.env[ARGS_VARIABLE] ?? "{}") as WorkerArgs;
// Once the parent is gone there is nobody to tell (and sending would throw).
const send = (message: WorkerMessage) => {
  if (process.connected) process.send?.(message);
};

// One connection per batch in flight, plus one for the id source's MIN/MAX.
const pool = new pg.Pool({ connectionString: args.databaseUrl, max: args.concurrency + 1 });
// An idle connection that breaks (server restarted or stopped) must not crash the worker: the pool replaces it.
pool.on("error", (error) => process.stderr.write(`[worker ${process.pid}] PostgreSQL connection lost: ${error.message}\n`));
const db = drizzle({ client: pool });
const redis = new Redis(args.redisUrl, { maxRetriesPerRequest: null });
const queue = createBullMQJobQueue({ connection: redis, queueName: args.queueName });
const spreader = createSuperSpreader({ queue, store: createRedisStateStore({ client: redis, prefix: args.storePrefix }) });
const { onBatch, stats } = trackWork(spreader);
defineNormaliseEmails(spreader, { db, table: accountsTable(args.table), config: args.config, onBatch });
reportFailures(spreader, process.stderr);

const worker = await runBullMQWorker({ spreader, connection: redis, queueName: args.queueName, concurrency: args.concurrency });
send({ type: "ready", pid: process.pid });

/**
 * A stop that hangs anyway (Redis gone) must not leave this process behind. Asked by the
 * parent: longer than the BullMQ worker's own shutdown timeout (30 s). Parent gone: shorter,
 * since the servers it started are likely gone with it.
 */
const STOP_DEADLINE_MS = 35_000;
const ORPHAN_DEADLINE_MS = 10_000;

let stopping: Promise<void> | undefined;
const stop = (deadlineMs: number) => {
  // SIGKILL, which nothing in this process can delay: workers stuck like this were seen to outlive a process.exit() deadline.
  setTimeout(() => process.kill(process.pid, "SIGKILL"), deadlineMs).unref();
  stopping ??= (async () => {
    await worker.close();
    await queue.close();
    await Promise.all([redis.quit(), pool.end()]);
    send({ type: "stopped", pid: process.pid, stats });
    if (process.connected) process.disconnect();
  })();
  return stopping;
};
process.on("message", (message: ParentMessage) => {
  if (message.type === "stop") void stop(STOP_DEADLINE_MS);
});
// The parent died or closed the channel: nobody will say stop.
process.on("disconnect", () => void stop(ORPHAN_DEADLINE_MS));
process.on("SIGTERM", () => void stop(STOP_DEADLINE_MS));
// Ctrl-C reaches the whole process group; the parent decides when workers stop.
process.on("SIGINT", () => {});
