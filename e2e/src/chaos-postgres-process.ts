/**
 * One process of the PostgreSQL-only chaos run, forked by the test and SIGKILLed at random
 * points. Args: the run's names as JSON (with its mode), a seed. Every process is a worker on the
 * run's one queue (BullMQ's PostgreSQL backend): any of them may run a tick or a batch.
 *
 * - A batch adds 1 to each row's `processed` and logs every id with this run's exec id and pid,
 *   between pauses, so a kill may land before the writes, inside the transaction, or after the
 *   commit before the runtime's record reaches the queue:
 *   - `transactional`: through the `tx` the runtime gives it, which also records the range in the
 *     ledger before it commits; the pause after the commit is taken after `runRange` returns
 *     (the commit is done, BullMQ does not know yet). A repeat of a committed range is found
 *     inside its transaction: reported as `already-done`.
 *   - `plain`: in a transaction of its own; the runtime records the range after the handler
 *     returns, so a kill after the commit leaves the rows processed and the range to run again.
 *   It reports `batch-start` / `batch-end` so the test can kill it while it is busy.
 * - Told `{ type: "arm", step }`, the process stops the next tick it runs before the step-th port
 *   call of that tick (one past the tick's last call = done but not yet acknowledged to BullMQ),
 *   reports `{ type: "kill-point" }` and waits there to be killed. `{ type: "disarm" }` takes it back.
 */
import { randomUUID } from "node:crypto";
import { runBullMQWorker } from "@superspreader/adapter-bullmq";
import { batchJobId } from "@superspreader/core";
import type { BatchContext, RangeTransactions, StateStore } from "@superspreader/core";
import { idRange } from "@superspreader/source-drizzle";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import { chaosTables } from "./chaos.js";
import { installTickKillPoints } from "./chaos-kills.js";
import { CHAOS_CONCURRENCY, CHAOS_WORKER, createPgChaosSpreader, openAppPool, openQueuePool } from "./chaos-postgres.js";
import type { PgChaosNames, PgChaosTx } from "./chaos-postgres.js";
import { seededRandom } from "./rng.js";

const [namesJson = "{}", seed = "0"] = process.argv.slice(2);
const names = JSON.parse(namesJson) as PgChaosNames;
const random = seededRandom(Number(seed) ^ process.pid);
const pause = (maxMs: number) => new Promise((resolve) => setTimeout(resolve, random() * maxMs));

/** A transactional run's `runRange`, pausing after the commit (before the runtime tells BullMQ). */
function afterCommitPause(transactions: RangeTransactions): RangeTransactions {
  return {
    async runRange(...args) {
      const outcome = await transactions.runRange(...args);
      if (outcome.alreadyDone) process.send?.({ type: "already-done" });
      // Work after the commit: a kill here leaves the range committed with its record and the job
      // unfinished, so BullMQ runs it again and the store must find it done.
      await pause(150);
      return outcome;
    },
  };
}

const killPoints = installTickKillPoints((label, property, value) => {
  if (label !== "store" || property !== "capabilities") return undefined;
  const capabilities = value as StateStore["capabilities"];
  return capabilities?.transactions ? { ...capabilities, transactions: afterCommitPause(capabilities.transactions) } : capabilities;
});

/* ------------------------------------------------------------------- runtime */

// A worker holds one queue client for LISTEN; the rest serve its concurrent jobs.
const queuePool = openQueuePool(names, CHAOS_CONCURRENCY + 3);
// Each transactional batch holds one client for its transaction; ticks and plain batches need a few more.
const db = drizzle({ client: openAppPool(names, CHAOS_CONCURRENCY * 2 + 2) });
const { items, log } = chaosTables(names);

/** The writes of a batch, through `tx` (the store's transaction, or the plain handler's own). */
async function writeRange(tx: PgChaosTx, context: BatchContext, execId: string): Promise<void> {
  const { backfill, runId, cycle, beginId, endId } = context;
  const batchKey = batchJobId(backfill, runId, cycle, { beginId, endId });
  const range = idRange(items.id, beginId, endId);
  await tx.execute(sql`update ${items} set processed = processed + 1 where ${range}`);
  await tx.execute(
    sql`insert into ${log} (id, batch_key, exec_id, pid) select ${items.id}, ${batchKey}, ${execId}, ${process.pid} from ${items} where ${range}`,
  );
}

const spreader = createPgChaosSpreader(
  queuePool,
  db,
  names,
  names.mode === "transactional"
    ? {
        transactional: true,
        async handle(context) {
          process.send?.({ type: "batch-start" });
          try {
            await pause(100);
            await writeRange(context.tx, context, randomUUID());
            await pause(30);
          } finally {
            process.send?.({ type: "batch-end" });
          }
        },
      }
    : {
        transactional: false,
        async handle(context) {
          process.send?.({ type: "batch-start" });
          try {
            await pause(100);
            await db.transaction(async (tx) => {
              await writeRange(tx, context, randomUUID());
              await pause(30);
            });
            // Work after the commit (think: notifying another service). A kill here leaves the
            // rows processed but the range unrecorded, so it runs again: the duplicates.
            await pause(150);
          } finally {
            process.send?.({ type: "batch-end" });
          }
        },
      },
  killPoints.intercept,
);

await runBullMQWorker({ spreader: killPoints.processor(spreader), connection: queuePool, queueName: names.queueName, concurrency: CHAOS_CONCURRENCY, ...CHAOS_WORKER });
process.send?.({ type: "ready", pid: process.pid });
