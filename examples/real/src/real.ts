import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { createBullMQJobQueue } from "@superspreader/adapter-bullmq";
import { createSuperSpreader } from "@superspreader/core";
import {
  DEFAULT_TABLE_NAME,
  accountsTable,
  configOf,
  createAccountsTable,
  defineNormaliseEmails,
  formatCount,
  formatSummary,
  progressModeFor,
  resolveSettings,
  startAndVerify,
  timed,
} from "@superspreader/example-demo";
import type { BackfillSummary, ExampleOptions, FlagSpec, WorkStats } from "@superspreader/example-demo";
import { createRedisStateStore } from "@superspreader/store-redis";
import { drizzle } from "drizzle-orm/node-postgres";
import { Redis } from "ioredis";
import pg from "pg";
import { ARGS_VARIABLE } from "./protocol.js";
import type { HostMessage, ParentMessage, ServerKind, WorkerArgs, WorkerMessage } from "./protocol.js";

/** The real example's defaults: 200 batches of 1,000 ids at 20 batches/s (10 s) over 3 worker processes. */
export const REAL_DEFAULTS = { rows: 200_000, batchSize: 1_000, perSecond: 20, duration: 2, concurrency: 2, workers: 3 } as const;

/** The real example's command line. */
export const REAL_FLAGS: FlagSpec = {
  program: "pnpm --filter @superspreader/example-real start",
  summary:
    "superspreader, for real: the demo's backfill on PostgreSQL + Redis + BullMQ, run by several worker processes.\n" +
    "Starts its own PostgreSQL and redis-server unless DATABASE_URL / REDIS_URL are set.",
  defaults: REAL_DEFAULTS,
  workers: true,
  examples: [
    ["", "200,000 rows, 3 worker processes, own PostgreSQL and Redis"],
    ["--workers 5 --rows 1000000 --batch-size 2000 --per-second 25", "a million rows over 5 processes"],
    ['--per-second-on-peak 5 --per-second-off-peak 20 --peak "Europe/Paris Mon-Fri 9-18"', "slower during Paris office hours"],
  ],
  notes: [
    "Environment:\n" +
      "  DATABASE_URL   PostgreSQL to use (postgres://user@host:5432/db); the table superspreader_example_accounts is\n" +
      "                 dropped, recreated and left there for you to look at. Unset: a throwaway server is started.\n" +
      "  REDIS_URL      Redis to use (redis://host:6379); the run's keys are removed at the end. Unset: a throwaway server.\n" +
      "Throwaway servers need the binaries: apt-get install -y postgresql redis-server",
  ],
};

/** Options of {@link runReal}: the demo's (defaults in {@link REAL_DEFAULTS}), plus the processes and servers. */
export interface RealOptions extends ExampleOptions {
  /** Worker processes. @default 3 */
  workers?: number;
  /** PostgreSQL to use. @default process.env.DATABASE_URL, else a throwaway server is started */
  databaseUrl?: string | undefined;
  /** Redis to use. @default process.env.REDIS_URL, else a throwaway server is started */
  redisUrl?: string | undefined;
  /** The table to (re)create. @default DEFAULT_TABLE_NAME ("superspreader_example_accounts") */
  table?: string;
}

/** The summary of a real run: the demo's, plus how the batches were shared out. */
export interface RealSummary extends BackfillSummary {
  /** Batches each worker process ran (repeated deliveries included), in the order they were started. */
  readonly workerBatches: readonly number[];
}

/** How long a worker process may take to connect, and to stop (it waits for running batches), before it is killed. */
const WORKER_START_MS = 60_000;
const WORKER_STOP_MS = 40_000;
/** initdb is the slow part of starting PostgreSQL. */
const SERVERS_START_MS = 120_000;
const SERVERS_STOP_MS = 20_000;

/** A forked TypeScript child process of this package. */
interface Child {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

/** Forks one of this package's TypeScript entry points through tsx, with workspace packages loaded from their sources. */
function forkTs(file: string, arg: unknown, detached: boolean): Child {
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), [], {
    // tsx is resolved from this package.
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    // In the environment, not the arguments: URLs may hold passwords, and arguments show in `ps`.
    env: { ...process.env, [ARGS_VARIABLE]: JSON.stringify(arg) },
    execArgv: ["--import", "tsx", "--conditions", "@superspreader/source"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    detached,
  });
  return { child, exited: new Promise((resolve) => child.once("exit", () => resolve())) };
}

/** Resolves with the first message `pick` accepts; rejects if the child exits first or takes longer than `timeoutMs`. */
function firstMessage<M, T>(what: string, { child }: Child, timeoutMs: number, pick: (message: M) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${what} (process ${child.pid}) did not get ready within ${timeoutMs / 1000} s`)), timeoutMs);
    const onMessage = (message: M) => {
      const value = pick(message);
      if (value !== undefined) done(undefined, value);
    };
    const onExit = (code: number | null, signal: string | null) =>
      done(new Error(`${what} (process ${child.pid}) exited (${code ?? signal}) before it was ready; see its output above`));
    child.on("message", onMessage);
    child.once("exit", onExit);
    function done(error: Error | undefined, value?: T) {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
      if (error) reject(error);
      else resolve(value as T);
    }
  });
}

/** Asks a child to stop over IPC (SIGTERM without a channel); SIGKILLs it if it has not exited after `timeoutMs`. */
async function stopChild({ child, exited }: Child, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (child.connected) child.send({ type: "stop" } satisfies ParentMessage);
  else child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
    await exited;
  }
}

/** A worker process and what it reported when it stopped. */
interface WorkerProcess extends Child {
  stats: WorkStats | null;
}

function forkWorker(args: WorkerArgs): WorkerProcess {
  const worker: WorkerProcess = { ...forkTs("./worker.ts", args, false), stats: null };
  worker.child.on("message", (message: WorkerMessage) => {
    if (message.type === "stopped") worker.stats = message.stats;
  });
  return worker;
}

/**
 * Starts throwaway servers in a detached host process (see servers-host.ts), so that
 * Ctrl-C reaches this process and not them, and they stop even if this process is killed.
 */
async function startServers(kinds: readonly ServerKind[]): Promise<{ postgres: string | null; redis: string | null; stop(): Promise<void> }> {
  const host = forkTs("./servers-host.ts", kinds, true);
  const stop = () => stopChild(host, SERVERS_STOP_MS);
  try {
    const started = await firstMessage(`the servers host`, host, SERVERS_START_MS, (message: HostMessage) => message);
    if (started.type === "failed") throw new Error(started.message);
    return { postgres: started.postgres, redis: started.redis, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Deletes every key matching `pattern` (SCAN, so Redis is never blocked for long). */
async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== "0");
}

/** Runs the cleanups in reverse order, every one of them even when some fail; rethrows the first failure. */
async function unwind(cleanups: Array<() => Promise<unknown>>): Promise<void> {
  let failure: unknown;
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure !== undefined) throw failure;
}

/**
 * The real example: PostgreSQL (started here unless `databaseUrl` / DATABASE_URL is given)
 * holds the accounts, Redis (likewise) holds the BullMQ queue and the state store, and
 * `workers` child processes run the batches while this process starts the backfill, shows
 * progress, verifies every row and the ledger, and stops everything it started.
 *
 * @example
 * ```ts
 * const summary = await runReal({ rows: 50_000, workers: 2, databaseUrl: process.env.DATABASE_URL });
 * process.exitCode = summary.verified ? 0 : 1;
 * ```
 */
export async function runReal(options: RealOptions = {}): Promise<RealSummary> {
  const settings = resolveSettings(options, REAL_DEFAULTS);
  const output = options.output ?? process.stdout;
  const mode = options.progress ?? progressModeFor(output);
  const began = Date.now();
  const phases: Record<string, number> = {};
  const cleanups: Array<() => Promise<unknown>> = [];
  let summary: RealSummary;
  try {
    // An empty variable (DATABASE_URL= pnpm start) means unset.
    let databaseUrl = (options.databaseUrl ?? process.env.DATABASE_URL) || undefined;
    let redisUrl = (options.redisUrl ?? process.env.REDIS_URL) || undefined;
    const ownRedis = !redisUrl;
    const missing: ServerKind[] = [...(databaseUrl ? [] : ["postgres" as const]), ...(redisUrl ? [] : ["redis" as const])];
    if (missing.length > 0) {
      const servers = await timed(phases, "servers", () => startServers(missing));
      cleanups.push(() => servers.stop());
      if (servers.postgres) output.write(`Started PostgreSQL on ${servers.postgres}\n`);
      if (servers.redis) output.write(`Started redis-server on ${servers.redis}\n`);
      databaseUrl ??= servers.postgres ?? undefined;
      redisUrl ??= servers.redis ?? undefined;
    }
    if (!databaseUrl || !redisUrl) throw new Error("unreachable: the servers host reported no URL");

    const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    pool.on("error", (error) => output.write(`PostgreSQL connection lost: ${error.message}\n`));
    cleanups.push(() => pool.end());
    const db = drizzle({ client: pool });
    const tableName = options.table ?? DEFAULT_TABLE_NAME;
    const table = accountsTable(tableName);
    output.write(`Creating ${formatCount(settings.rows)} accounts in table ${tableName}…\n`);
    await timed(phases, "seed", () => createAccountsTable(db, table, settings.rows));

    // A fresh queue and key prefix per run: nothing left by an earlier run can interfere.
    const id = randomBytes(4).toString("hex");
    const queueName = `superspreader-example-${id}`;
    const storePrefix = `superspreader-example-${id}`;
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    cleanups.push(() => redis.quit());
    if (!ownRedis) cleanups.push(() => Promise.all([deleteKeys(redis, `${storePrefix}:*`), deleteKeys(redis, `bull:${queueName}:*`)]));
    const queue = createBullMQJobQueue({ connection: redis, queueName });
    cleanups.push(() => queue.close());
    const spreader = createSuperSpreader({ queue, store: createRedisStateStore({ client: redis, prefix: storePrefix }) });
    defineNormaliseEmails(spreader, { db, table, config: configOf(settings) });

    const args: WorkerArgs = {
      databaseUrl, redisUrl, queueName, storePrefix, table: tableName, concurrency: settings.concurrency, config: configOf(settings),
    };
    output.write(`Starting ${settings.workers} worker processes (${settings.concurrency} batches at once each)…\n`);
    const workers = Array.from({ length: settings.workers }, () => forkWorker(args));
    const stopWorkers = () => Promise.all(workers.map((worker) => stopChild(worker, WORKER_STOP_MS)));
    cleanups.push(stopWorkers);
    await timed(phases, "workers", () =>
      Promise.all(workers.map((worker) => firstMessage("a worker process", worker, WORKER_START_MS, (m: WorkerMessage) => (m.type === "ready" ? m : undefined)))),
    );

    const outcome = await startAndVerify({
      spreader, db, table, settings, output, mode, label: "real", phases, logEveryMs: options.logEveryMs, signal: options.signal,
    });
    // Workers report what they did as they stop.
    await stopWorkers();
    const reported = workers.map((w) => w.stats).filter((s): s is WorkStats => s !== null);
    const counted = reported.length === workers.length;
    if (counted) output.write(`\nBatches run by each worker process: ${reported.map((s) => formatCount(s.batches)).join(", ")}\n`);
    summary = {
      ...outcome,
      workerBatches: reported.map((s) => s.batches),
      rowsWritten: counted ? reported.reduce((sum, s) => sum + s.rowsWritten, 0) : null,
      repeatedBatches: counted ? reported.reduce((sum, s) => sum + s.repeatedBatches, 0) : null,
      wallMs: Date.now() - began,
    };
    output.write(formatSummary(summary));
  } catch (error) {
    // The run's own error matters more than one from cleaning up after it.
    await unwind(cleanups).catch(() => {});
    throw error;
  }
  await unwind(cleanups);
  return summary;
}
