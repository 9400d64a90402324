import { Redis } from "ioredis";
import pg from "pg";
import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { createSuperSpreader } from "@superspreader/core";
import { createBullMQJobQueue, runBullMQWorker } from "@superspreader/adapter-bullmq";
import { createRedisStateStore } from "@superspreader/store-redis";
import { createDrizzleIdSource, idRange } from "@superspreader/source-drizzle";
import { decrypt, encrypt } from "./crypto.js"; // your key management (AES-256-GCM here)
import { messages } from "./schema.js"; // your drizzle table

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const db = drizzle({ client: pool });
const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: null });
const queue = createBullMQJobQueue({ connection: redis });
const spreader = createSuperSpreader({ queue, store: createRedisStateStore({ client: redis }) });

spreader.define("reencrypt-messages", {
  source: createDrizzleIdSource({ db, table: messages, column: messages.id }),
  config: {
    batchSize: 70,          // ids per job
    duration: 10,           // seconds of work per scheduler cycle
    perSecondOnPeak: 3,     // jobs per second inside the peak window
    perSecondOffPeak: 7.5,  // … and outside it
    peak: { timezone: "America/Los_Angeles", days: "Mon-Fri", hours: [5, 17] },
  },
  async handle({ beginId, endId, signal }) {
    // Every id in [beginId, endId]. Idempotent: a range may run again after a crash, so rows
    // already on key 2 are left alone, here and (against a concurrent repeat) in the update.
    const oldKey = and(idRange(messages.id, beginId, endId), eq(messages.keyVersion, 1));
    for (const row of await db.select().from(messages).where(oldKey)) {
      if (signal.aborted) throw signal.reason; // shutting down: the range runs again later
      await db
        .update(messages)
        .set({ body: encrypt(decrypt(row.body, 1), 2), keyVersion: 2 })
        .where(and(eq(messages.id, row.id), eq(messages.keyVersion, 1)));
    }
  },
});

// On every worker machine. Stopping lets running batches end (or hands them back) first.
const worker = await runBullMQWorker({ spreader, connection: redis, concurrency: 10 });
let stopping: Promise<void> | undefined;
const stop = () =>
  (stopping ??= (async () => {
    await worker.close();
    await queue.close();
    await Promise.all([redis.quit(), pool.end()]);
  })());
process.once("SIGTERM", stop).once("SIGINT", stop);
spreader.on("completed", ({ backfill, status }) => {
  console.log(`${backfill}: ${status}`);
  void stop(); // one process here; with many, keep workers up and watch `superspreader status`
});

// Once, from anywhere: starts a run, or carries on with the current one (no second chain).
const { status, progress } = await spreader.start("reencrypt-messages");
console.log(`reencrypt-messages: ${status}, ${progress.idsDone} of ${progress.idsTotal} ids done`);
if (status !== "running" && status !== "paused") await stop();
