/**
 * What the health tests share: reading an indicator until it answers, and servers of
 * their own: a PostgreSQL primary with settings of its choosing
 * (autovacuum every second, few connections), streaming replicas made with pg_basebackup -R,
 * and a MariaDB primary with a replica. The shared servers of the global setup cannot serve:
 * their settings are fixed (MariaDB runs without a binlog) and other test files load them,
 * which would make counts of sessions, transactions and threads flaky.
 *
 * Same binaries and patterns as scripts/servers (SERVERS.md): loopback, free ports, temporary
 * directories, PostgreSQL as the postgres user; a missing binary fails, never skips.
 * Every server is stopped and its directory removed by `stop()`.
 */
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { chownSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { isSuperSpreaderError } from "@superspreader/core";
import mysql from "mysql2/promise";
import { expect } from "vitest";
import type { HealthIndicator, HealthLevel, HealthReading } from "@superspreader/core";
import { freePort } from "../../../scripts/servers/servers.js";

/* ---------------------------------------------------------------- readings */

/** Polls `check` every 100 ms until it is true, or fails after `ms` with `what`. */
export async function poll<T>(what: string, check: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms${last === undefined ? "" : ` (last error: ${String(last)})`}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A poll's context: the runtime's timeout, 5 s here. */
export const context = () => ({ backfill: "health-test", signal: AbortSignal.timeout(5_000) });

/** Polls the indicator until a reading passes `accept`; the error shows the last reading. */
export async function until(indicator: HealthIndicator, what: string, accept: (reading: HealthReading) => boolean, ms = 15_000): Promise<HealthReading> {
  let last: HealthReading | undefined;
  try {
    return await poll(what, async () => {
      last = await indicator(context());
      return accept(last) ? last : undefined;
    }, ms);
  } catch (error) {
    throw new Error(`${String(error)}; last reading: ${JSON.stringify(last)}`, { cause: error });
  }
}

/** Polls the indicator until it answers `level`. */
export const untilLevel = (indicator: HealthIndicator, level: HealthLevel, ms?: number): Promise<HealthReading> =>
  until(indicator, `level ${level}`, (r) => r.level === level, ms);

/** Expects `promise` to reject with an ADAPTER_ERROR whose message matches. */
export async function expectFailure(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(isSuperSpreaderError(error), `expected a SuperSpreaderError, got ${String(error)}`).toBe(true);
  expect((error as { code: string }).code).toBe("ADAPTER_ERROR");
  expect((error as Error).message).toMatch(message);
}

/* ---------------------------------------------------------------- PostgreSQL */

const run = promisify(execFile);

export interface TestServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const PG_BIN = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"].find((d) => existsSync(join(d, "postgres")));
const isRoot = process.getuid?.() === 0;

function pgBin(name: string): string {
  if (PG_BIN === undefined) throw new Error("PostgreSQL binaries not found; install them with: apt-get install -y postgresql");
  return join(PG_BIN, name);
}

/** Runs a PostgreSQL binary, as the postgres user when we are root (initdb and postgres refuse root). */
async function asPostgres(binary: string, args: string[]): Promise<void> {
  const [cmd, argv] = isRoot ? ["runuser", ["-u", "postgres", "--", pgBin(binary), ...args]] : [pgBin(binary), args];
  try {
    await run(cmd, argv, { timeout: 60_000 });
  } catch (error) {
    const { stderr = "", stdout = "" } = error as { stderr?: string; stdout?: string };
    throw new Error(`${binary} ${args.join(" ")} failed: ${stderr || stdout || String(error)}`, { cause: error });
  }
}

function pgDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (isRoot) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  return dir;
}

let ids: { uid: number; gid: number } | undefined;
function postgresIds(): { uid: number; gid: number } {
  if (ids === undefined) {
    const passwd = /^postgres:[^:]*:(\d+):(\d+):/m.exec(readFileSync("/etc/passwd", "utf8"));
    if (passwd === null) throw new Error("no postgres user: install PostgreSQL with apt-get install -y postgresql");
    ids = { uid: Number(passwd[1]), gid: Number(passwd[2]) };
  }
  return ids;
}

/** Starts a PostgreSQL server on `dir/data` (`pg_ctl -w` waits until it accepts connections); stop() removes `dir`. */
async function startPgOn(dir: string, settings: Record<string, string | number>): Promise<TestServer> {
  const port = await freePort();
  const all: Record<string, string | number> = {
    listen_addresses: "127.0.0.1", fsync: "off", synchronous_commit: "off", full_page_writes: "off", shared_buffers: "16MB", ...settings,
  };
  const options = ["-p", String(port), "-k", dir, ...Object.entries(all).map(([k, v]) => `-c ${k}=${v}`)].join(" ");
  const data = join(dir, "data");
  const stop = async () => {
    await asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await asPostgres("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-w", "-t", "60", "-o", options, "start"]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop };
}

/** A fresh PostgreSQL primary (initdb, trust auth; replication connections from 127.0.0.1 allowed by initdb's pg_hba). */
export async function startPgPrimary(settings: Record<string, string | number>): Promise<TestServer> {
  const dir = pgDir("ss-health-pg-");
  try {
    await asPostgres("initdb", ["-D", join(dir, "data"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  // WAL kept for the replicas: without it a checkpoint during pg_basebackup -X stream can recycle the
  // segment the backup still streams ("requested WAL segment … has already been removed"), under load.
  return startPgOn(dir, { wal_keep_size: "256MB", ...settings });
}

/**
 * A streaming replica of `primary`: pg_basebackup -R (standby.signal and primary_conninfo),
 * started as a hot standby. `cluster_name` becomes its application_name in pg_stat_replication.
 */
export async function startPgReplica(primary: TestServer, name: string, settings: Record<string, string | number>): Promise<TestServer> {
  const dir = pgDir(`ss-health-${name}-`);
  try {
    await asPostgres("pg_basebackup", ["-h", "127.0.0.1", "-p", String(primary.port), "-U", "postgres", "-D", join(dir, "data"), "-R", "-X", "stream", "-c", "fast", "--no-sync"]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return startPgOn(dir, { cluster_name: name, hot_standby: "on", ...settings });
}

/* ----------------------------------------------------------------- MariaDB */

function binary(name: string): string {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/bin"])) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} not found; install it with: apt-get install -y mariadb-server`);
}

async function startMariadbOn(dir: string, args: string[]): Promise<TestServer> {
  const port = await freePort();
  const child = spawn(
    binary("mariadbd"),
    [
      "--no-defaults", "--user=root", `--datadir=${join(dir, "data")}`, `--port=${port}`, "--bind-address=127.0.0.1",
      `--socket=${join(dir, "sock")}`, `--pid-file=${join(dir, "pid")}`, "--innodb-flush-log-at-trx-commit=0",
      "--innodb-buffer-pool-size=32M", ...args,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `mysql://root@127.0.0.1:${port}/test`;
  try {
    await poll(`mariadbd on port ${port}`, async () => {
      if (child.exitCode !== null) throw new Error(`mariadbd exited: ${stderr}`);
      const connection = await mysql.createConnection({ host: "127.0.0.1", port, user: "root" });
      await connection.end();
      return true;
    }, 60_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, url, stop };
}

/**
 * A MariaDB primary (binlog, server_id 1) and a replica of it (server_id 2), replicating from
 * the primary's first binlog. Both start from one mariadb-install-db, copied, so the replica
 * begins with the same system tables and needs no dump.
 */
export async function startMariadbPair(): Promise<{ primary: TestServer; replica: TestServer; stop(): Promise<void> }> {
  const primaryDir = mkdtempSync(join(tmpdir(), "ss-health-maria-primary-"));
  const replicaDir = mkdtempSync(join(tmpdir(), "ss-health-maria-replica-"));
  const started: TestServer[] = [];
  const stop = async () => {
    await Promise.all(started.map((s) => s.stop()));
    rmSync(primaryDir, { recursive: true, force: true });
    rmSync(replicaDir, { recursive: true, force: true });
  };
  try {
    await run(binary("mariadb-install-db"), ["--user=root", `--datadir=${join(primaryDir, "data")}`, "--auth-root-authentication-method=normal", "--skip-test-db"], { timeout: 60_000 });
    cpSync(join(primaryDir, "data"), join(replicaDir, "data"), { recursive: true });
    const [primary, replica] = await Promise.all([
      startMariadbOn(primaryDir, ["--server-id=1", "--log-bin=primary-bin", "--binlog-format=ROW"]),
      startMariadbOn(replicaDir, ["--server-id=2", "--skip-log-bin", "--relay-log=replica-relay"]),
    ]);
    started.push(primary, replica);
    const admin = await mysql.createConnection({ host: "127.0.0.1", port: primary.port, user: "root" });
    await admin.query("CREATE DATABASE test");
    await admin.end();
    const replicaAdmin = await mysql.createConnection({ host: "127.0.0.1", port: replica.port, user: "root" });
    await replicaAdmin.query(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, MASTER_USER='root', MASTER_LOG_FILE='primary-bin.000001', MASTER_LOG_POS=4`,
    );
    await replicaAdmin.query("START SLAVE");
    // CREATE DATABASE test reaching the replica shows that replication runs.
    await poll("the replica did not replicate CREATE DATABASE test", async () => {
      const [rows] = await replicaAdmin.query("SHOW DATABASES LIKE 'test'");
      return (rows as unknown[]).length === 1;
    });
    await replicaAdmin.end();
    return { primary, replica, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
