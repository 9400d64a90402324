/**
 * The MySQL/MariaDB health indicators on a real MariaDB 10.11 primary and replica of this
 * file's own (loopback, binlog replication). Replica lag is made with MASTER_DELAY while a
 * heartbeat writer updates the primary every 100 ms; Threads_running with concurrent
 * SELECT SLEEP()s.
 */
import { int, mysqlTable, timestamp } from "drizzle-orm/mysql-core";
import { drizzle } from "drizzle-orm/mysql2";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMySqlReplicaLagIndicator, createMySqlThreadsRunningIndicator } from "../src/index.js";
import type { DrizzleDatabase } from "../src/index.js";
import { context, expectFailure, poll, startMariadbPair, until, untilLevel } from "./health-kit.js";
import type { TestServer } from "./health-kit.js";

let stopServers: (() => Promise<void>) | undefined;
let primary: TestServer;
let replica: TestServer;
const pools: mysql.Pool[] = [];
const connections: mysql.Connection[] = [];
let primaryDb: DrizzleDatabase;
let replicaDb: DrizzleDatabase;
let primaryAdmin: mysql.Pool;
let replicaAdmin: mysql.Pool;

const heartbeat = mysqlTable("heartbeat", { id: int("id").primaryKey(), ts: timestamp("ts", { fsp: 6 }).notNull() });

function pool(url: string, connectionLimit: number, user = "root"): mysql.Pool {
  const p = mysql.createPool({ uri: url.replace("root@", `${user}@`), connectionLimit });
  pools.push(p);
  return p;
}

/** Changes the replica's MASTER_DELAY (replication must be stopped for CHANGE MASTER). */
async function setDelay(seconds: number): Promise<void> {
  await replicaAdmin.query("STOP SLAVE");
  await replicaAdmin.query(`CHANGE MASTER TO MASTER_DELAY=${seconds}`);
  await replicaAdmin.query("START SLAVE");
}

beforeAll(async () => {
  const pair = await startMariadbPair();
  stopServers = pair.stop;
  ({ primary, replica } = pair);
  primaryAdmin = pool(primary.url, 2);
  replicaAdmin = pool(replica.url, 2);
  primaryDb = drizzle({ client: pool(primary.url, 2) });
  replicaDb = drizzle({ client: pool(replica.url, 2) });
  await primaryAdmin.query("CREATE TABLE heartbeat (id INT PRIMARY KEY, ts TIMESTAMP(6) NOT NULL)");
  await primaryAdmin.query("INSERT INTO heartbeat VALUES (1, NOW(6))");
  await poll("the heartbeat table on the replica", async () => ((await replicaAdmin.query("SELECT * FROM heartbeat"))[0] as unknown[]).length === 1);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(connections.map((c) => c.end()));
  await Promise.allSettled(pools.map((p) => p.end()));
  await stopServers?.();
}, 30_000);

describe("createMySqlReplicaLagIndicator", () => {
  it("reads Seconds_Behind_Master and a heartbeat on the replica, trips with MASTER_DELAY, and recovers", async () => {
    const lag = createMySqlReplicaLagIndicator({ db: replicaDb });
    const beat = createMySqlReplicaLagIndicator({ db: replicaDb, heartbeat: heartbeat.ts });
    const caughtUp = await untilLevel(lag, "ok");
    expect(caughtUp).toEqual({ level: "ok", reason: `replica lag 0 s < 1 s (from 127.0.0.1:${primary.port})`, value: 0 });

    // The primary updates its heartbeat every 100 ms; the replica applies each event 3 s late.
    const writer = setInterval(() => void primaryAdmin.query("UPDATE heartbeat SET ts = NOW(6) WHERE id = 1").catch(() => {}), 100);
    try {
      await setDelay(3);
      // Right after START SLAVE the I/O thread is still connecting: lag reads NULL (stop, no value) for a moment.
      const behind = await until(lag, "a lag of 2 s or more", (r) => r.level === "stop" && r.value !== null);
      expect(behind.value).toBeGreaterThanOrEqual(2);
      expect(behind.reason).toMatch(new RegExp(`^replica lag \\d s ≥ 1\\.5 s \\(from 127\\.0\\.0\\.1:${primary.port}\\)$`));
      const late = await untilLevel(beat, "stop");
      expect(late.value).toBeGreaterThanOrEqual(1.5);
      expect(late.value).toBeLessThan(10);
      expect(late.reason).toMatch(/^replica lag [\d.]+ s ≥ 1\.5 s \(heartbeat heartbeat\.ts\)$/);

      // Replication that does not run answers stop, with no value.
      await replicaAdmin.query("STOP SLAVE SQL_THREAD");
      expect(await lag(context())).toEqual({
        level: "stop",
        reason: `replication from 127.0.0.1:${primary.port} is not running (I/O thread: Yes, SQL thread: No)`,
        value: null,
      });
      await setDelay(0);
      expect((await untilLevel(lag, "ok")).value).toBe(0);
      expect((await untilLevel(beat, "ok")).value).toBeLessThan(1);
    } finally {
      clearInterval(writer);
    }
  }, 30_000);

  it("answers ok on a server that is not a replica, or stop with requireReplication", async () => {
    expect(await createMySqlReplicaLagIndicator({ db: primaryDb })(context())).toEqual({
      level: "ok",
      reason: "not a replica (SHOW ALL SLAVES STATUS is empty): no replica lag",
      value: 0,
    });
    expect(await createMySqlReplicaLagIndicator({ db: primaryDb, requireReplication: true })(context())).toEqual({
      level: "stop",
      reason: "not a replica (SHOW ALL SLAVES STATUS is empty), and requireReplication is set",
      value: null,
    });
  });

  it("throws when the heartbeat table is empty", async () => {
    const empty = mysqlTable("heartbeat_empty", { ts: timestamp("ts", { fsp: 6 }) });
    await primaryAdmin.query("CREATE TABLE heartbeat_empty (ts TIMESTAMP(6) NULL)");
    await poll("heartbeat_empty on the replica", async () => ((await replicaAdmin.query("SHOW TABLES LIKE 'heartbeat_empty'"))[0] as unknown[]).length === 1);
    await expectFailure(
      createMySqlReplicaLagIndicator({ db: replicaDb, heartbeat: empty.ts })(context()),
      /heartbeat heartbeat_empty\.ts has no rows: is the heartbeat writer running on the primary\?/,
    );
  });

  it("needs REPLICA MONITOR for SHOW REPLICA STATUS, and only SELECT with a heartbeat", async () => {
    // Both host spellings: a connection from 127.0.0.1 resolves to "localhost" here. SELECT on
    // an unrelated table lets the user into the test database, and nothing more.
    await replicaAdmin.query("CREATE TABLE unrelated (id INT)");
    for (const host of ["localhost", "127.0.0.1"]) {
      await replicaAdmin.query(`CREATE USER 'ss_bare'@'${host}'`);
      await replicaAdmin.query(`GRANT SELECT ON test.unrelated TO 'ss_bare'@'${host}'`);
    }
    const bare = drizzle({ client: pool(replica.url, 1, "ss_bare") });
    await expectFailure(
      createMySqlReplicaLagIndicator({ db: bare })(context()),
      /SHOW ALL SLAVES STATUS was refused: the user needs REPLICA MONITOR \(MariaDB 10\.5\.9\+\), REPLICATION CLIENT \(MySQL, older MariaDB\) or SUPER/,
    );
    await expectFailure(createMySqlReplicaLagIndicator({ db: bare, heartbeat: heartbeat.ts })(context()), /SELECT command denied/);
    expect((await createMySqlThreadsRunningIndicator({ db: bare })(context())).level).toBe("ok");

    for (const host of ["localhost", "127.0.0.1"]) {
      await replicaAdmin.query(`GRANT REPLICA MONITOR ON *.* TO 'ss_bare'@'${host}'`);
      await replicaAdmin.query(`GRANT SELECT ON test.heartbeat TO 'ss_bare'@'${host}'`);
    }
    // Privileges are read at login: a fresh pool.
    const monitor = drizzle({ client: pool(replica.url, 1, "ss_bare") });
    expect((await createMySqlReplicaLagIndicator({ db: monitor })(context())).level).toBe("ok");
    expect((await createMySqlReplicaLagIndicator({ db: monitor, heartbeat: heartbeat.ts, stopSeconds: 3600, slowSeconds: 3600 })(context())).level).toBe("ok");
  });
});

describe("createMySqlThreadsRunningIndicator", () => {
  it("counts running threads without the sampler and trips as SELECT SLEEP()s pile up", async () => {
    const load = createMySqlThreadsRunningIndicator({ db: primaryDb });
    // The replica's binlog dump thread runs on the primary all the time.
    const idle = await load(context());
    expect(idle.level).toBe("ok");
    expect(idle.reason).toMatch(/^\d+ threads? running < 25$/);
    const base = idle.value!;
    const tight = createMySqlThreadsRunningIndicator({ db: primaryDb, slowThreads: base + 3, stopThreads: base + 6 });

    const sleepers = await Promise.all([1, 2, 3, 4, 5, 6].map(() => mysql.createConnection({ host: "127.0.0.1", port: primary.port, user: "root" })));
    connections.push(...sleepers);
    // SLEEP(30) is cut short by KILL QUERY below (MariaDB then fails it with ER_QUERY_INTERRUPTED).
    const sleep = (c: mysql.Connection) => c.query("SELECT SLEEP(30)").then(() => 0, (e: { errno?: number }) => e.errno);
    const sleeps = sleepers.slice(0, 3).map(sleep);
    const slow = await untilLevel(tight, "slow");
    expect(slow.value).toBeGreaterThanOrEqual(base + 3);
    expect(slow.reason).toBe(`${slow.value} threads running ≥ ${base + 3}`);
    sleeps.push(...sleepers.slice(3).map(sleep));
    const stop = await untilLevel(tight, "stop");
    expect(stop.reason).toBe(`${stop.value} threads running ≥ ${base + 6}`);

    for (const c of sleepers) await primaryAdmin.query(`KILL QUERY ${c.threadId}`);
    expect(await Promise.all(sleeps)).toEqual([1317, 1317, 1317, 1317, 1317, 1317]);
    expect((await untilLevel(tight, "ok")).value).toBeLessThan(base + 3);
  }, 30_000);
});

describe("the poll's signal", () => {
  it("rejects at once when aborted, even while the query waits for a busy pool", async () => {
    const busy = pool(primary.url, 1);
    const sleeping = busy.query("SELECT SLEEP(1)");
    const indicator = createMySqlThreadsRunningIndicator({ db: drizzle({ client: busy }) });
    const started = Date.now();
    await expectFailure(indicator({ backfill: "health-test", signal: AbortSignal.timeout(100) }), /createMySqlThreadsRunningIndicator: reading Threads_running was aborted/);
    expect(Date.now() - started).toBeLessThan(800);
    await sleeping;
  });

  it("a driver error names the indicator and what it read", async () => {
    const gone = drizzle({ client: pool("mysql://root@127.0.0.1:1/test", 1) });
    await expectFailure(createMySqlThreadsRunningIndicator({ db: gone })(context()), /createMySqlThreadsRunningIndicator: reading Threads_running failed: .*ECONNREFUSED/);
  });
});
