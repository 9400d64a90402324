/**
 * The PostgreSQL health indicators on a real PostgreSQL 15 primary of this file's own
 * (autovacuum_naptime=1, max_connections=20) with two streaming replicas on loopback. Each
 * indicator reads a real value and trips: the signal is made to happen, never mocked.
 */
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { drizzle as drizzleNodePg } from "drizzle-orm/node-postgres";
import { integer, pgTable, text } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HealthLevel, HealthReading } from "@superspreader/core";
import {
  createPgAutovacuumIndicator,
  createPgConnectionIndicator,
  createPgLockWaitIndicator,
  createPgLongTransactionIndicator,
  createPgReplicationLagIndicator,
  worstOf,
} from "../src/index.js";
import type { DrizzleDatabase } from "../src/index.js";
import { context, expectFailure, poll, startPgPrimary, startPgReplica, untilLevel } from "./health-kit.js";
import type { TestServer } from "./health-kit.js";

const servers: TestServer[] = [];
const clients: pg.Client[] = [];
const pools: pg.Pool[] = [];
let primary: TestServer;
let replicaA: TestServer;
let db: DrizzleDatabase;
let admin: pg.Pool;

/** A pool that keeps its idle connections (the default closes them after 10 s, which would move connection counts). */
function pool(url: string, max: number): pg.Pool {
  const p = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 0 });
  pools.push(p);
  return p;
}

/** A connected client of its own, ended after the tests (or earlier by the test). */
async function session(applicationName = "ss_health_test", url = primary.url): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  await client.connect();
  clients.push(client);
  return client;
}

async function endSession(client: pg.Client): Promise<void> {
  clients.splice(clients.indexOf(client), 1);
  await client.end();
}

beforeAll(async () => {
  primary = await startPgPrimary({ max_connections: 20, autovacuum_naptime: 1 });
  servers.push(primary);
  // Replicas reply every second (default 10 s) so replay_lag moves at test speed. Both start
  // without an apply delay: a standby that meets a delayed commit in the WAL copied by
  // pg_basebackup waits there before it ever connects to the primary.
  const replicas = await Promise.allSettled(
    ["replica_a", "replica_b"].map((name) => startPgReplica(primary, name, { wal_receiver_status_interval: 1 })),
  );
  for (const r of replicas) if (r.status === "fulfilled") servers.push(r.value);
  for (const r of replicas) if (r.status === "rejected") throw r.reason;
  replicaA = servers[1]!;
  admin = pool(primary.url, 2);
  db = drizzleNodePg({ client: pool(primary.url, 2) });
  await poll("both replicas streaming", async () => {
    const { rows } = await admin.query("select count(*)::int as n from pg_stat_replication where state = 'streaming'");
    return rows[0].n === 2;
  });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.end()));
  await Promise.allSettled(pools.map((p) => p.end()));
  // Replicas first: a primary stopped first makes them retry until they are stopped.
  await Promise.allSettled(servers.slice(1).map((s) => s.stop()));
  await servers[0]?.stop();
}, 30_000);

describe("createPgReplicationLagIndicator", () => {
  it("reads each replica on the primary, names the worst, trips on replay lag and on bytes, and recovers", async () => {
    const lag = createPgReplicationLagIndicator({ db });
    const caughtUp = await untilLevel(lag, "ok");
    expect(caughtUp.reason).toMatch(/^replica "replica_[ab]" \(127\.0\.0\.1, streaming\) replay lag .* < 1 s, unreplayed WAL .*; worst of 2 replicas$/);

    // replica_a stops applying commits; the commit below reaches it but is not replayed.
    const a = await session("ss_health_test", replicaA.url);
    await a.query("alter system set recovery_min_apply_delay = '1h'");
    await a.query("select pg_reload_conf()");
    await poll("replica_a's new apply delay", async () => (await a.query("show recovery_min_apply_delay")).rows[0].recovery_min_apply_delay === "1h");
    await admin.query("create table lagging as select generate_series(1, 1000) as id");

    const stopped = await untilLevel(lag, "stop");
    expect(stopped.value).toBeGreaterThanOrEqual(1.5);
    expect(stopped.reason).toMatch(/^replica "replica_a" \(127\.0\.0\.1, streaming\) replay lag [\d.]+ s ≥ 1\.5 s, unreplayed WAL [\d.]+ (B|KiB|MiB); worst of 2 replicas$/);

    // The same state through the other thresholds: bytes not replayed, leaving one out, one missing.
    const bytes = createPgReplicationLagIndicator({ db, slowSeconds: null, stopSeconds: null, slowBytes: 1, stopBytes: 1_000_000_000 });
    expect(await bytes(context())).toMatchObject({ level: "slow", reason: expect.stringMatching(/replica "replica_a" .*unreplayed WAL [\d.]+ (B|KiB|MiB) ≥ 1 B/) });
    const bytesStop = createPgReplicationLagIndicator({ db, stopBytes: 1024 });
    expect((await bytesStop(context())).level).toBe("stop");
    const ignoring = createPgReplicationLagIndicator({ db, ignore: ["replica_a"] });
    expect(await ignoring(context())).toMatchObject({ level: "ok", reason: expect.stringMatching(/^replica "replica_b" .* < 1 s/) });
    const expectingThree = createPgReplicationLagIndicator({ db, minReplicas: 3, ignore: ["replica_a"] });
    expect(await expectingThree(context())).toMatchObject({ level: "stop", reason: expect.stringMatching(/^only 1 of 3 expected replicas connected; replica "replica_b"/) });

    await a.query("alter system set recovery_min_apply_delay = 0");
    await a.query("select pg_reload_conf()");
    const recovered = await untilLevel(lag, "ok");
    expect(recovered.value).toBeLessThan(1);
    await endSession(a);
  }, 30_000);

  it("answers ok with value 0 when no replica is connected, or stop below minReplicas", async () => {
    const none = createPgReplicationLagIndicator({ db, ignore: ["replica_a", "replica_b"] });
    expect(await none(context())).toEqual({ level: "ok", reason: "no replicas connected (other than ignored ones)", value: 0 });
    const required = createPgReplicationLagIndicator({ db, ignore: ["replica_a", "replica_b"], minReplicas: 1 });
    expect(await required(context())).toEqual({ level: "stop", reason: "only 0 of 1 expected replica connected (pg_stat_replication)", value: null });
  });
});

describe("createPgLongTransactionIndicator", () => {
  it("trips on an open transaction as it ages, and leaves out ignored applications and its own session", async () => {
    const longTx = createPgLongTransactionIndicator({ db, slowSeconds: 0.3, stopSeconds: 0.8 });
    expect(await longTx(context())).toEqual({ level: "ok", reason: "no open transactions", value: 0 });

    const holder = await session("ss_holder");
    await holder.query("begin");
    await holder.query("select txid_current()");
    // Slow and stop through indicators of their own: a stalled poll could skip the slow window.
    const slow = await untilLevel(createPgLongTransactionIndicator({ db, slowSeconds: 0.3, stopSeconds: null }), "slow");
    expect(slow.reason).toMatch(/^oldest transaction [\d.]+ s ≥ 0\.3 s \(/);
    expect(slow.value).toBeGreaterThanOrEqual(0.3);
    const stop = await untilLevel(longTx, "stop");
    expect(stop.value).toBeGreaterThan(slow.value!);
    expect(stop.reason).toMatch(/^oldest transaction [\d.]+ s ≥ 0\.8 s \(pid \d+, "ss_holder", user postgres, idle in transaction\)$/);

    const ignoring = createPgLongTransactionIndicator({ db, slowSeconds: 0.3, stopSeconds: 0.8, ignore: ["ss_holder"] });
    expect((await ignoring(context())).level).toBe("ok");
    await holder.query("commit");
    expect(await longTx(context())).toMatchObject({ level: "ok", value: 0 });
    await endSession(holder);
  });
});

describe("createPgAutovacuumIndicator", () => {
  it("trips while autovacuum works on the target table, not before", async () => {
    const vacuumed = pgTable("vacuumed", { id: integer("id").primaryKey(), pad: text("pad") });
    // Autovacuum off while the dead rows are made, so that nothing starts early.
    await admin.query("create table vacuumed (id integer primary key, pad text) with (autovacuum_enabled = false)");
    // In a session of its own that then ends: a backend that has just flushed its statistics
    // holds the next flush up to 10 s while idle, but always flushes when it exits, so
    // autovacuum sees the dead rows at once.
    const writer = await session("ss_writer");
    await writer.query("insert into vacuumed select i, repeat('x', 200) from generate_series(1, 5000) i");
    await writer.query("delete from vacuumed");
    await endSession(writer);
    const vacuum = createPgAutovacuumIndicator({ db, table: vacuumed });
    expect(await vacuum(context())).toEqual({ level: "ok", reason: "no autovacuum on vacuumed", value: 0 });

    // Any dead row triggers it (threshold 0), and a cost limit of 1 makes it sleep 100–400 ms
    // per page, so the worker stays on this table until it is cancelled.
    await admin.query(
      `alter table vacuumed set (autovacuum_enabled = true, autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
         autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1)`,
    );
    const running = await untilLevel(vacuum, "stop", 20_000);
    expect(running.value).toBe(1);
    expect(running.reason).toMatch(/^autovacuum is vacuuming vacuumed \([a-z ]+(, [\d.]+% of \d+ blocks)?, [\d.]+ s\)$/);
    const asSlow = createPgAutovacuumIndicator({ db, table: vacuumed, level: "slow" });
    expect((await asSlow(context())).level).toBe("slow");

    await admin.query("alter table vacuumed set (autovacuum_enabled = false)");
    await admin.query("select pg_cancel_backend(pid) from pg_stat_activity where backend_type = 'autovacuum worker'");
    expect((await untilLevel(vacuum, "ok")).value).toBe(0);
  }, 30_000);

  it("throws for a table that does not exist", async () => {
    const missing = pgTable("no_such_table", { id: integer("id") });
    await expectFailure(createPgAutovacuumIndicator({ db, table: missing })(context()), /table no_such_table does not exist/);
  });
});

describe("createPgLockWaitIndicator", () => {
  it("counts sessions waiting on locks, on the target table or anywhere", async () => {
    const locked = pgTable("locked", { id: integer("id").primaryKey() });
    const rows = pgTable("row_locked", { id: integer("id").primaryKey() });
    await admin.query("create table locked (id integer primary key); create table elsewhere (id integer primary key)");
    await admin.query("create table row_locked (id integer primary key); insert into row_locked values (1)");
    const onTable = createPgLockWaitIndicator({ db, table: locked, minWaitMs: 200, slowSessions: 1, stopSessions: 3 });
    const anywhere = createPgLockWaitIndicator({ db, minWaitMs: 200, slowSessions: 1, stopSessions: 5 });
    expect(await onTable(context())).toEqual({ level: "ok", reason: "0 sessions waiting on a lock on locked for ≥ 0.2 s, 0 < 1", value: 0 });

    const holder = await session("ss_holder");
    await holder.query("begin");
    await holder.query("lock table locked, elsewhere in access exclusive mode");
    const waiters = await Promise.all([1, 2, 3, 4].map(() => session("ss_waiter")));
    const waits: Array<Promise<unknown>> = [];
    waits.push(waiters[0]!.query("select * from locked"));
    const one = await untilLevel(onTable, "slow");
    expect(one.reason).toMatch(
      /^1 session waiting on a lock on locked for ≥ 0\.2 s, 1 ≥ 1 \(longest: pid \d+ waits [\d.]+ s for AccessShareLock on locked, blocked by pid \d+\)$/,
    );
    waits.push(waiters[1]!.query("select * from locked"), waiters[2]!.query("select * from locked"));
    expect((await untilLevel(onTable, "stop")).value).toBe(3);

    // A wait on another table counts only without the table filter; a row lock on the target counts with it.
    waits.push(waiters[3]!.query("select * from elsewhere"));
    await poll("4 waiting anywhere", async () => (await anywhere(context())).value === 4);
    expect((await onTable(context())).value).toBe(3);
    const rowHolder = await session("ss_holder");
    await rowHolder.query("begin");
    await rowHolder.query("update row_locked set id = 1 where id = 1");
    const rowWaiter = await session("ss_waiter");
    waits.push(rowWaiter.query("update row_locked set id = 1 where id = 1"));
    const onRows = createPgLockWaitIndicator({ db, table: rows, minWaitMs: 200 });
    const rowWait = await untilLevel(onRows, "slow");
    expect(rowWait.reason).toMatch(/^1 session waiting on a lock on row_locked for ≥ 0\.2 s, 1 ≥ 1 \(longest: pid \d+ waits [\d.]+ s for ShareLock on transaction \d+, blocked by pid \d+\)$/);
    expect((await anywhere(context())).value).toBe(5);
    // Waits shorter than minWaitMs do not count.
    expect((await createPgLockWaitIndicator({ db, minWaitMs: 60_000 })(context())).value).toBe(0);

    await holder.query("rollback");
    await rowHolder.query("rollback");
    await Promise.all(waits);
    expect(await anywhere(context())).toMatchObject({ level: "ok", value: 0 });
    await Promise.all([holder, rowHolder, rowWaiter, ...waiters].map(endSession));
  }, 30_000);
});

describe("createPgConnectionIndicator", () => {
  it("trips as connections approach the usable max_connections", async () => {
    const connections = createPgConnectionIndicator({ db });
    // max_connections 20 − superuser_reserved_connections 3.
    expect((await connections(context())).reason).toMatch(/^\d+ of 17 usable connections in use, [\d.]+% < 80%$/);
    const opened: pg.Client[] = [];
    const openUntil = async (level: HealthLevel): Promise<HealthReading> => {
      for (let i = 0; i < 17; i++) {
        const reading = await connections(context());
        if (reading.level === level) return reading;
        opened.push(await session("ss_filler"));
      }
      throw new Error(`no ${level} with every usable connection open`);
    };
    const slow = await openUntil("slow");
    expect(slow.reason).toMatch(/^1[45] of 17 usable connections in use, [\d.]+% ≥ 80%$/);
    expect(slow.value).toBeGreaterThanOrEqual(0.8);
    const stop = await openUntil("stop");
    expect(stop.reason).toMatch(/^1[67] of 17 usable connections in use, [\d.]+% ≥ 90%$/);
    await Promise.all(opened.map(endSession));
    expect((await untilLevel(connections, "ok")).value).toBeLessThan(0.8);
  }, 30_000);
});

describe("privileges", () => {
  it("fail closed without pg_monitor and work with it", async () => {
    await admin.query("create role ss_bare login; create role ss_monitor login in role pg_monitor; create table watched (id integer primary key)");
    const watched = pgTable("watched", { id: integer("id").primaryKey() });
    const all = (on: DrizzleDatabase) => [
      createPgReplicationLagIndicator({ db: on }),
      createPgLongTransactionIndicator({ db: on }),
      createPgAutovacuumIndicator({ db: on, table: watched }),
      createPgLockWaitIndicator({ db: on, table: watched }),
      createPgConnectionIndicator({ db: on }),
    ];
    const bare = drizzleNodePg({ client: pool(primary.url.replace("postgres@", "ss_bare@"), 1) });
    for (const indicator of all(bare)) {
      await expectFailure(indicator(context()), /role "ss_bare" cannot see other sessions in pg_\w+ .*GRANT pg_monitor TO "ss_bare"/);
    }
    const monitor = drizzleNodePg({ client: pool(primary.url.replace("postgres@", "ss_monitor@"), 1) });
    const readings = await Promise.all(all(monitor).map((indicator) => indicator(context())));
    expect(readings.map((r) => r.level)).toEqual(["ok", "ok", "ok", "ok", "ok"]);
    expect(readings[0]!.reason).toMatch(/worst of 2 replicas/);
  });
});

describe("the poll's signal", () => {
  it("rejects at once when aborted, even while the query waits for a busy pool", async () => {
    const busy = pool(primary.url, 1);
    const sleeping = busy.query("select pg_sleep(1)");
    const indicator = createPgConnectionIndicator({ db: drizzleNodePg({ client: busy }) });
    const started = Date.now();
    await expectFailure(indicator({ backfill: "health-test", signal: AbortSignal.timeout(100) }), /createPgConnectionIndicator: reading pg_stat_activity was aborted \(.*\)/);
    expect(Date.now() - started).toBeLessThan(800);
    await expectFailure(indicator({ backfill: "health-test", signal: AbortSignal.abort() }), /was aborted/);
    await sleeping;
  });

  it("worstOf reports the worst of several real indicators", async () => {
    const holder = await session("ss_holder");
    await holder.query("begin");
    await holder.query("select txid_current()");
    const health = worstOf([createPgConnectionIndicator({ db }), createPgLongTransactionIndicator({ db, slowSeconds: 0.01, stopSeconds: 600 })]);
    const reading = await untilLevel(health, "slow");
    expect(reading.reason).toMatch(/^oldest transaction [\d.]+ s ≥ 0\.01 s \(pid \d+, "ss_holder"/);
    await holder.query("rollback");
    await endSession(holder);
  });
});

describe("on PGlite", () => {
  it("every indicator runs and answers ok (one session, no replicas, no autovacuum)", async () => {
    const client = new PGlite();
    try {
      const lite = drizzlePglite({ client });
      await lite.execute(sql`create table t (id integer primary key)`);
      const t = pgTable("t", { id: integer("id").primaryKey() });
      const readings = await Promise.all(
        [
          createPgReplicationLagIndicator({ db: lite }),
          createPgLongTransactionIndicator({ db: lite }),
          createPgAutovacuumIndicator({ db: lite, table: t }),
          createPgLockWaitIndicator({ db: lite, table: t }),
          createPgConnectionIndicator({ db: lite }),
        ].map((indicator) => indicator(context())),
      );
      expect(readings.map((r) => r.level)).toEqual(["ok", "ok", "ok", "ok", "ok"]);
      expect(readings.slice(0, 4).map((r) => r.value)).toEqual([0, 0, 0, 0]);
    } finally {
      await client.close();
    }
  }, 30_000);
});
