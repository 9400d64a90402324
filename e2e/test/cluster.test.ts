/**
 * Beyond one machine's Redis (issue #13): three backfills on a real Redis Cluster (three
 * primaries with a replica each, scripts/servers/cluster.ts), their state spread over the three
 * primaries, jobs on one BullMQ queue (a hash-tagged prefix), eight worker processes each with its
 * own ioredis `Cluster` client, ids in PostgreSQL. Mid-run the primary holding the queue and one
 * backfill's state is SIGKILLed and its replica takes over.
 *
 * What it proves, from the handler's log in PostgreSQL and the runtime's audit:
 * - every backfill completes, every id was processed, the counters agree with the log;
 * - no id was processed by two different jobs (the scheduler never planned a range twice), except
 *   a range the runtime found lost and enqueued again (its count is in `status().reconciled`):
 *   replication is asynchronous, so a failover may drop the last writes the dead primary took.
 */
import { randomInt } from "node:crypto";
import { waitUntil } from "@superspreader/contract-tests";
import type { SuperSpreader } from "@superspreader/core";
import { Queue } from "bullmq";
import { sql } from "drizzle-orm";
import type { SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import type { NodePgDatabase } from "drizzle-orm/node-postgres";
import { Redis, type Cluster } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisCluster, type Failover, type RedisCluster } from "../../scripts/servers/cluster.js";
import { createChaosTables, dropChaosTables } from "../src/chaos.js";
import { forkTs, type TsChild } from "../src/child-process.js";
import { clusterClient } from "../src/cluster-client.js";
import { noopThroughput } from "../src/cluster-throughput.js";
import { CLUSTER_CONFIG, CLUSTER_ROWS, CLUSTER_WORKERS, clusterRunNames, createClusterSpreader, type ClusterRunNames } from "../src/cluster-world.js";
import { serverUrl } from "../src/env.js";

const BACKFILLS = 3;
/** Batches per throughput round. */
const ROUND = 1_000;
/** The primary dies once this share of the first backfill's batches is done. */
const KILL_AT_SHARE = 0.25;

/**
 * Backfill names whose hash slots are served by `BACKFILLS` different primaries, and a queue tag
 * on the first one's primary: the kill then hits a queue and a backfill's state at once.
 */
async function spreadNames(servers: RedisCluster, count: number): Promise<{ backfills: string[]; queueTag: string }> {
  const byPrimary = new Map<number, string>();
  for (let i = 0; byPrimary.size < count; i++) {
    const name = `backfill-${i}`;
    const primary = await servers.primaryOf(await servers.keySlot(`{${name}}`));
    if (!byPrimary.has(primary.port)) byPrimary.set(primary.port, name);
  }
  const backfills = [...byPrimary.values()];
  const target = (await servers.primaryOf(await servers.keySlot(`{${backfills[0] ?? ""}}`))).port;
  for (let i = 0; ; i++) {
    const tag = `q${i}`;
    if ((await servers.primaryOf(await servers.keySlot(`{${tag}}`))).port === target) return { backfills, queueTag: tag };
  }
}

describe("Redis Cluster: several backfills, eight worker processes, a primary failed over mid-run", () => {
  let servers: RedisCluster;
  let pool: pg.Pool;
  let db: NodePgDatabase;
  let connection: Cluster;
  let names: ClusterRunNames;
  let spreader: SuperSpreader;
  const workers: TsChild[] = [];

  beforeAll(async () => {
    servers = await startRedisCluster({ nodeTimeoutMs: 2_000 });
    const { backfills, queueTag } = await spreadNames(servers, BACKFILLS);
    names = clusterRunNames(`${Date.now().toString(36)}${randomInt(1_000_000).toString(36)}`, backfills, queueTag);
    pool = new pg.Pool({ connectionString: serverUrl("SUPERSPREADER_PG_URL"), max: 4 });
    db = drizzle({ client: pool });
    for (const backfill of names.backfills) await createChaosTables(db, backfill, CLUSTER_ROWS);
    connection = clusterClient(servers.nodes);
    spreader = createClusterSpreader(connection, db, names, async () => {
      throw new Error("the test process runs no batches");
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.kill()));
    connection?.disconnect();
    await servers?.stop();
    if (db && names) for (const backfill of names.backfills) await dropChaosTables(db, backfill);
    await pool?.end();
  }, 60_000);

  it("measures no-op throughput on the Cluster against the suite's single Redis, same run (a figure, not a check)", async () => {
    const single = new Redis(serverUrl("SUPERSPREADER_REDIS_URL"), { maxRetriesPerRequest: null });
    try {
      // Interleaved rounds, so a burst of load elsewhere on the machine hits both sides alike.
      // A first round each to warm up (JIT, script loading), not counted.
      await noopThroughput(connection, 200);
      await noopThroughput(single, 200);
      const rounds: Array<{ cluster: number; single: number }> = [];
      for (let i = 0; i < 5; i++) rounds.push({ cluster: await noopThroughput(connection, ROUND), single: await noopThroughput(single, ROUND) });
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
      const ratio = median(rounds.map((r) => r.cluster / r.single));
      console.log(
        `cluster throughput (no-op handler, concurrency 50, ${ROUND} batches a round): ` +
          rounds.map((r) => `cluster ${r.cluster.toFixed(0)}/s vs one Redis ${r.single.toFixed(0)}/s`).join("; ") +
          `; cluster/one Redis = ${ratio.toFixed(2)}`,
      );
      expect(ratio).toBeGreaterThan(0);
    } finally {
      single.disconnect();
    }
  }, 120_000);

  it("completes every backfill with every id processed and no range planned twice", async () => {
    for (let i = 0; i < CLUSTER_WORKERS; i++) {
      workers.push(forkTs(new URL("../src/cluster-worker.ts", import.meta.url), [JSON.stringify(names), JSON.stringify(servers.nodes)]));
    }
    // Not `ready` (60 s): eight processes loading TypeScript sources on a loaded 2-core machine
    // may take longer, and a slow start is not what this test is about.
    const forkedAt = Date.now();
    await Promise.all(workers.map((w) => w.next("ready", 150_000)));
    const startupS = (Date.now() - forkedAt) / 1000;

    const startedAt = Date.now();
    for (const { backfill } of names.backfills) await spreader.start(backfill);

    // Killed mid-run: once the backfill on the doomed primary has a share of its batches done.
    const first = names.backfills[0]?.backfill ?? "";
    const batches = CLUSTER_ROWS / CLUSTER_CONFIG.batchSize;
    await waitUntil("the first backfill to be under way", async () => (await spreader.status(first)).progress.batchesDone >= batches * KILL_AT_SHARE, 60_000);
    const victim = await servers.primaryOf(await servers.keySlot(`{${first}}`));
    const killedAtS = (Date.now() - startedAt) / 1000;
    const failover: Failover = await servers.killPrimary(victim);
    // The queue's keys and the first backfill's state were both on the dead primary.
    expect((await servers.primaryOf(await servers.keySlot(names.queuePrefix))).port).toBe(failover.promoted.port);

    await waitUntil(
      "every backfill to complete",
      async () => {
        const statuses = await Promise.all(names.backfills.map(async ({ backfill }) => (await spreader.status(backfill)).status));
        const ended = statuses.find((s) => s !== "running" && s !== "completed");
        if (ended) throw new Error(`a backfill ended ${ended}`);
        return statuses.every((s) => s === "completed");
      },
      90_000,
    );
    const elapsedS = (Date.now() - startedAt) / 1000;

    const queue = new Queue(names.queueName, { connection, prefix: names.queuePrefix });
    const [completed, failed] = await Promise.all([queue.getJobs(["completed"], 0, -1), queue.getJobs(["failed"], 0, -1)]).finally(() => queue.close());
    const completedIds = new Set(completed.map((job) => job.id ?? ""));
    const count = async (query: SQL) => Number((await db.execute<{ n: string }>(query)).rows[0]?.n);

    const lines: string[] = [];
    for (const backfill of names.backfills) {
      const audit = await spreader.audit(backfill.backfill);
      expect(audit.gaps, backfill.backfill).toEqual([]);
      expect(audit.failed, backfill.backfill).toEqual([]);
      expect(audit.deferred, backfill.backfill).toEqual([]);
      expect(audit.complete, backfill.backfill).toBe(true);
      const status = await spreader.status(backfill.backfill);

      const items = sql.identifier(backfill.itemsTable);
      const log = sql.identifier(backfill.logTable);
      expect(await count(sql`select count(*) as n from ${items} where processed = 0`), backfill.backfill).toBe(0);
      expect(
        await count(sql`select count(*) as n from ${items} i full join (select id, count(*) as c from ${log} group by id) l using (id)
                        where coalesce(i.processed, 0) <> coalesce(l.c, 0)`),
        backfill.backfill,
      ).toBe(0);
      // Ranges run by two different jobs: only a range found lost and enqueued again (a later
      // cycle's job) after its first job was lost, given up or its completion not recorded.
      const twoJobs = await db.execute<{ keys: string[] }>(
        sql`select array_agg(distinct batch_key order by batch_key) as keys from ${log} group by id having count(distinct batch_key) > 1`,
      );
      const overlaps = new Set(twoJobs.rows.map((row) => row.keys.join(" + ")));
      expect([...overlaps].filter((pair) => pair.split(" + ").length !== 2), backfill.backfill).toEqual([]);
      expect(overlaps.size, `${backfill.backfill}: ranges run by two jobs (${[...overlaps].slice(0, 3).join("; ")})`).toBeLessThanOrEqual(status.reconciled.ranges);
      const duplicated = await count(sql`select count(*) as n from (select batch_key from ${log} group by batch_key having count(distinct exec_id) > 1) x`);
      const lostJobs = [...overlaps].flatMap((pair) => pair.split(" + ")).filter((key) => !completedIds.has(key)).length;
      lines.push(
        `${backfill.backfill}: reconciled ${status.reconciled.ranges}, ranges run by two jobs ${overlaps.size} (${lostJobs} of those jobs not completed in BullMQ), batches run twice ${duplicated}`,
      );
    }
    const errors = [...new Set(workers.flatMap((w) => w.received("error").map((m) => String(m.message))))];
    console.log(
      `cluster: ${names.backfills.length} backfills × ${batches} batches, ${CLUSTER_WORKERS} worker processes (all ready ${startupS.toFixed(1)} s after the fork); primary ${victim.port} SIGKILLed at ${killedAtS.toFixed(1)} s, ` +
        `replica ${failover.promoted.port} promoted after ${failover.promotedAfterMs} ms, cluster_state:ok after ${failover.okAfterMs} ms; ` +
        `completed in ${elapsedS.toFixed(1)} s; BullMQ failed jobs ${failed.length}\n  ${lines.join("\n  ")}\n  worker errors (distinct): ${errors.length}\n    ${errors.join("\n    ")}`,
    );
  }, 300_000);
});
