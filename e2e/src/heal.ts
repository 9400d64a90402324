import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBullMQJobQueue } from "@superspreader/adapter-bullmq";
import { createSuperSpreader } from "@superspreader/core";
import type { BackfillConfigInput, BackfillDefinition, JobQueue, StateStore, SuperSpreader } from "@superspreader/core";
import { createDrizzleIdSource } from "@superspreader/source-drizzle";
import { createRedisStateStore } from "@superspreader/store-redis";
import { sql } from "drizzle-orm";
import type { NodePgDatabase } from "drizzle-orm/node-postgres";
import { bigint, integer, pgTable } from "drizzle-orm/pg-core";
import type { Redis } from "ioredis";

/**
 * One self-healing scenario's world (issue #8): a table of `rows` ids in PostgreSQL whose
 * `processed` counter the handler increments, state in Redis, jobs on BullMQ. Every process of a
 * scenario (the test and its children) builds the same runtime from the same `HealNames`.
 */
export interface HealNames {
  readonly backfill: string;
  readonly queueName: string;
  readonly storePrefix: string;
  readonly table: string;
  readonly rows: number;
  readonly config: BackfillConfigInput;
}

export function healNames(scenario: string, rows: number, config: BackfillConfigInput): HealNames {
  const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  return { backfill: scenario, queueName: `heal-${scenario}-${suffix}`, storePrefix: `heal-${suffix}`, table: `heal_${scenario.replace(/-/g, "_")}_${suffix}`, rows, config };
}

/** The worker timing every scenario uses: a killed worker's jobs stall within ~2 s; BullMQ's stall limit stays at its default. */
export const HEAL_WORKER = { lockDurationMs: 2_000, stalledIntervalMs: 1_000, watchdogIntervalMs: 1_000 } as const;
/** Lost ranges are looked up in the queue this long after their run time. */
export const HEAL_RECONCILE_MS = 3_000;

export function healTable(names: HealNames) {
  return pgTable(names.table, {
    id: bigint("id", { mode: "bigint" }).primaryKey(),
    processed: integer("processed").notNull().default(0),
  });
}

export async function createHealTable(db: NodePgDatabase, names: HealNames): Promise<void> {
  const t = sql.identifier(names.table);
  await db.execute(sql`create table ${t} (id bigint primary key, processed integer not null default 0)`);
  await db.execute(sql`insert into ${t} (id) select g from generate_series(1, ${names.rows}::bigint) g`);
}

/** Rows never processed, and rows processed more than once. */
export async function healCounts(db: NodePgDatabase, names: HealNames): Promise<{ missing: number; repeated: number }> {
  const t = sql.identifier(names.table);
  const { rows } = await db.execute<{ missing: string; repeated: string }>(
    sql`select count(*) filter (where processed = 0) as missing, count(*) filter (where processed > 1) as repeated from ${t}`,
  );
  return { missing: Number(rows[0]?.missing), repeated: Number(rows[0]?.repeated) };
}

/** Wraps the ports a process's runtime uses (fault injection in the children). */
export interface HealWrap {
  queue?: (queue: JobQueue) => JobQueue;
  store?: (store: StateStore) => StateStore;
}

/** The scenario's runtime, with its backfill defined; `handle` does the work (or throws). */
export function createHealSpreader(connection: Redis, db: NodePgDatabase, names: HealNames, handle: BackfillDefinition["handle"], wrap: HealWrap = {}): SuperSpreader {
  const queue = createBullMQJobQueue({ connection, queueName: names.queueName });
  const store = createRedisStateStore({ client: connection, prefix: names.storePrefix });
  const spreader = createSuperSpreader({
    queue: wrap.queue ? wrap.queue(queue) : queue,
    store: wrap.store ? wrap.store(store) : store,
    reconcileAfterMs: HEAL_RECONCILE_MS,
  });
  const table = healTable(names);
  spreader.define(names.backfill, { source: createDrizzleIdSource({ db, table, column: table.id }), config: names.config, handle });
  return spreader;
}

/** The handler every worker runs: one UPDATE of the range's counters. */
export function processRange(db: NodePgDatabase, names: HealNames): BackfillDefinition["handle"] {
  const t = sql.identifier(names.table);
  return async ({ beginId, endId }) => {
    await db.execute(sql`update ${t} set processed = processed + 1 where id between ${beginId} and ${endId}`);
  };
}

/* ------------------------------------------------------------------------------------------ servers */

/*
 * Servers a scenario stops and starts itself (the suite's shared ones must stay up): a Redis with an
 * append-only file that is SIGKILLed and restarted on the same port and directory, and a PostgreSQL
 * that is stopped and started again.
 */

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const PG_BIN = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"].find((d) => existsSync(join(d, "postgres")));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const tcpOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", () => resolve()));
}

/** A redis-server with `appendonly yes` and `appendfsync everysec`, which the test can SIGKILL and restart. */
export interface RestartableRedis {
  readonly url: string;
  /** SIGKILL (no shutdown, no final fsync): up to a second of writes may be lost. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory: it replays its append-only file. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRestartableRedis(): Promise<RestartableRedis> {
  const dir = mkdtempSync(join(tmpdir(), "ss-heal-redis-"));
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no"],
      { stdio: "ignore" },
    );
    await until(`redis-server on ${port}`, () => tcpOpen(port));
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      const c = child as ChildProcess | null;
      if (c) {
        c.kill("SIGKILL");
        await exited(c);
      }
      child = null;
    },
    start,
    async stop() {
      const c = child as ChildProcess | null;
      if (c) {
        c.kill("SIGTERM");
        await exited(c);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A PostgreSQL the test can stop (a fast shutdown: clients get ECONNREFUSED) and start again. */
export interface RestartablePostgres {
  readonly url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  if (!PG_BIN) throw new Error("PostgreSQL binaries not found: install postgresql (npm test does)");
  const dir = mkdtempSync(join(tmpdir(), "ss-heal-pg-"));
  const port = await freePort();
  const asPostgres = (cmd: string, args: string[]) =>
    isRoot ? execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { stdio: "pipe" }) : execFileSync(cmd, args, { stdio: "pipe" });
  if (isRoot) {
    chownSync(dir, Number(execFileSync("id", ["-u", "postgres"]).toString().trim()), Number(execFileSync("id", ["-g", "postgres"]).toString().trim()));
  }
  asPostgres(join(PG_BIN, "initdb"), ["-D", join(dir, "data"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  const pgCtl = (action: "start" | "stop") =>
    asPostgres(join(PG_BIN, "pg_ctl"), [
      "-D", join(dir, "data"), "-w", "-t", "60", "-l", join(dir, "log"),
      ...(action === "start" ? ["-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`, "start"] : ["-m", "fast", "stop"]),
    ]);
  pgCtl("start");
  let running = true;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      pgCtl("stop");
      running = false;
    },
    async start() {
      pgCtl("start");
      running = true;
    },
    async destroy() {
      if (running) pgCtl("stop");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
