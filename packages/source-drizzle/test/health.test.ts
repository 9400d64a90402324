/**
 * Options of every health indicator factory and the worstOf combinator: no server needed
 * (the drizzle dbs below never connect, since options are checked before any query).
 */
import { isSuperSpreaderError } from "@superspreader/core";
import { int, mysqlTable } from "drizzle-orm/mysql-core";
import { drizzle as drizzleMySql } from "drizzle-orm/mysql2";
import { drizzle as drizzleNodePg } from "drizzle-orm/node-postgres";
import { integer, pgTable } from "drizzle-orm/pg-core";
import mysql from "mysql2/promise";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { HealthIndicator, HealthReading } from "@superspreader/core";
import {
  createMySqlReplicaLagIndicator,
  createMySqlThreadsRunningIndicator,
  createPgAutovacuumIndicator,
  createPgConnectionIndicator,
  createPgLockWaitIndicator,
  createPgLongTransactionIndicator,
  createPgReplicationLagIndicator,
  worstOf,
} from "../src/index.js";

const pgPool = new pg.Pool({ connectionString: "postgres://nobody@127.0.0.1:1/none" });
const myPool = mysql.createPool({ uri: "mysql://nobody@127.0.0.1:1/none" });
afterAll(async () => {
  await Promise.all([pgPool.end(), myPool.end()]);
});
const pgDb = drizzleNodePg({ client: pgPool });
const myDb = drizzleMySql({ client: myPool });
const pgT = pgTable("items", { id: integer("id") });
const myT = mysqlTable("items", { id: int("id") });

function expectInvalid(create: () => unknown, field: string, message: RegExp): void {
  let caught: unknown;
  try {
    create();
  } catch (error) {
    caught = error;
  }
  expect(isSuperSpreaderError(caught), `expected a SuperSpreaderError, got ${String(caught)}`).toBe(true);
  expect(caught).toMatchObject({ code: "INVALID_ARGUMENT", field });
  expect((caught as Error).message).toMatch(message);
}

describe("indicator options", () => {
  it("reject a db of the other dialect, or no db", () => {
    expectInvalid(() => createPgReplicationLagIndicator({ db: myDb }), "db", /^\[superspreader\] db of createPgReplicationLagIndicator must be a PostgreSQL database, got a MySQL one$/);
    expectInvalid(() => createMySqlThreadsRunningIndicator({ db: pgDb }), "db", /must be a MySQL database, got a PostgreSQL one/);
    expectInvalid(() => createPgConnectionIndicator({ db: undefined as never }), "db", /must be a drizzle database, e\.g\. drizzle\(\{ client: pool \}\), got undefined/);
    expectInvalid(() => createPgConnectionIndicator(null as never), "options", /options of createPgConnectionIndicator must be an object/);
  });

  it("reject bad thresholds, naming the field and the value", () => {
    expectInvalid(() => createPgReplicationLagIndicator({ db: pgDb, stopSeconds: -1 }), "stopSeconds", /stopSeconds must be a number > 0, or null to turn that level off, got -1/);
    expectInvalid(() => createPgReplicationLagIndicator({ db: pgDb, slowSeconds: 2, stopSeconds: 1 }), "slowSeconds", /slowSeconds \(2\) must not exceed stopSeconds \(1\)/);
    expectInvalid(() => createPgReplicationLagIndicator({ db: pgDb, slowBytes: 1.5 }), "slowBytes", /slowBytes must be a whole number > 0/);
    expectInvalid(() => createPgReplicationLagIndicator({ db: pgDb, minReplicas: -1 }), "minReplicas", /minReplicas must be a whole number ≥ 0, got -1/);
    expectInvalid(() => createPgReplicationLagIndicator({ db: pgDb, ignore: "replica_a" as never }), "ignore", /ignore must be an array of names \(strings\), got "replica_a"/);
    expectInvalid(() => createPgLongTransactionIndicator({ db: pgDb, slowSeconds: Number.NaN }), "slowSeconds", /got NaN/);
    expectInvalid(() => createPgConnectionIndicator({ db: pgDb, stopRatio: 1.2 }), "stopRatio", /stopRatio must be a number > 0 and ≤ 1/);
    expectInvalid(() => createPgLockWaitIndicator({ db: pgDb, stopSessions: 2.5 }), "stopSessions", /must be a whole number > 0/);
    expectInvalid(() => createPgLockWaitIndicator({ db: pgDb, minWaitMs: -5 }), "minWaitMs", /minWaitMs must be a whole number ≥ 0, got -5/);
    expectInvalid(() => createMySqlThreadsRunningIndicator({ db: myDb, slowThreads: "25" as never }), "slowThreads", /got "25"/);
    expectInvalid(() => createMySqlReplicaLagIndicator({ db: myDb, requireReplication: "yes" as never }), "requireReplication", /must be true or false, got "yes"/);
  });

  it("reject tables of the wrong kind and unknown options", () => {
    expectInvalid(() => createPgAutovacuumIndicator({ db: pgDb, table: myT as never }), "table", /table of createPgAutovacuumIndicator must be a drizzle table from pgTable\(\)/);
    expectInvalid(() => createPgAutovacuumIndicator({ db: pgDb } as never), "table", /from pgTable\(\), got undefined/);
    expectInvalid(() => createPgAutovacuumIndicator({ db: pgDb, table: pgT, level: "ok" as never }), "level", /level must be "slow" or "stop", got "ok"/);
    expectInvalid(() => createPgLockWaitIndicator({ db: pgDb, table: "items" as never }), "table", /got "items"/);
    expectInvalid(() => createMySqlReplicaLagIndicator({ db: myDb, heartbeat: pgT.id as never }), "heartbeat", /must be a column of a mysqlTable\(\)/);
    expectInvalid(() => createPgReplicationLagIndicator({ db: pgDb, stopSecond: 2 } as never), "stopSecond", /stopSecond is not an option of createPgReplicationLagIndicator; did you mean stopSeconds\?/);
  });

  it("accept null to turn a level off, and the defaults", () => {
    for (const create of [
      () => createPgReplicationLagIndicator({ db: pgDb, slowSeconds: null, stopBytes: 1024 }),
      () => createPgLongTransactionIndicator({ db: pgDb, stopSeconds: null }),
      () => createPgAutovacuumIndicator({ db: pgDb, table: pgT, level: "slow" }),
      () => createPgLockWaitIndicator({ db: pgDb, table: pgT, minWaitMs: 0 }),
      () => createPgConnectionIndicator({ db: pgDb, slowRatio: 0.5, stopRatio: 1 }),
      () => createMySqlReplicaLagIndicator({ db: myDb, heartbeat: myT.id }),
      () => createMySqlThreadsRunningIndicator({ db: myDb, slowThreads: null, stopThreads: 100 }),
    ]) {
      expect(typeof create()).toBe("function");
    }
  });
});

describe("worstOf", () => {
  const fixed = (reading: HealthReading): HealthIndicator => async () => reading;
  const failing = (message: string): HealthIndicator => async () => {
    throw new Error(message);
  };
  const context = { backfill: "b", signal: new AbortController().signal };

  it("answers the worst level, its first value and the reasons at that level", async () => {
    const ok = fixed({ level: "ok", reason: "lag 0 s < 1 s", value: 0 });
    const slow = fixed({ level: "slow", reason: "30 threads running ≥ 25", value: 30 });
    const stop = fixed({ level: "stop", reason: "lag 2 s ≥ 1.5 s", value: 2 });
    expect(await worstOf([ok, fixed({ level: "ok", reason: "no open transactions", value: 0 })])(context)).toEqual({
      level: "ok", reason: "lag 0 s < 1 s; no open transactions", value: 0,
    });
    expect(await worstOf([ok, slow, slow])(context)).toEqual({ level: "slow", reason: "30 threads running ≥ 25; 30 threads running ≥ 25", value: 30 });
    expect(await worstOf([slow, stop, ok])(context)).toEqual({ level: "stop", reason: "lag 2 s ≥ 1.5 s", value: 2 });
  });

  it("passes the context on and polls the indicators together", async () => {
    const seen: unknown[] = [];
    let running = 0;
    let most = 0;
    const probe: HealthIndicator = async (c) => {
      seen.push(c);
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      return { level: "ok", reason: "fine", value: null };
    };
    await worstOf([probe, probe, probe])(context);
    expect(seen).toEqual([context, context, context]);
    expect(most).toBe(3);
  });

  it("throws when an indicator fails, unless another one says stop", async () => {
    const ok = fixed({ level: "ok", reason: "fine", value: 0 });
    const stop = fixed({ level: "stop", reason: "lag 2 s ≥ 1.5 s", value: 2 });
    await expect(worstOf([ok, failing("no route to host")])(context)).rejects.toMatchObject({
      code: "ADAPTER_ERROR",
      message: "[superspreader] worstOf: 1 of 2 indicators failed: no route to host",
    });
    expect(await worstOf([failing("no route to host"), stop])(context)).toEqual({ level: "stop", reason: "lag 2 s ≥ 1.5 s", value: 2 });
  });

  it("rejects an empty list or a non-function", () => {
    expectInvalid(() => worstOf([]), "indicators", /indicators of worstOf must be a non-empty array of health indicators, got \[\]/);
    expectInvalid(() => worstOf([fixed({ level: "ok", reason: "", value: 0 }), "lag" as never]), "indicators[1]", /indicators\[1\] must be a health indicator \(a function\), got "lag"/);
  });
});
