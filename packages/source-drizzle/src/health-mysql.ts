/**
 * Health indicators for MySQL and MariaDB (mysql2 through drizzle): replica lag and
 * `Threads_running`, the two signals pt-online-schema-change and gh-ost throttle on.
 */
import { booleanOption, describeValue, invalidOption } from "@superspreader/core/adapter";
import type { HealthIndicator, HealthLevel } from "@superspreader/core";
import { Column, getTableName, is, sql } from "drizzle-orm";
import { MySqlTable } from "drizzle-orm/mysql-core";
import type { SQL } from "drizzle-orm";
import { COUNT, SECONDS, checkOptions, compareLevels, dbOption, measure, plural, readSignal, rowsOf, signalError, thresholdOptions } from "./health.js";
import type { DrizzleDatabase } from "./target.js";

/* ------------------------------------------------------------ replica lag */

/** Options of {@link createMySqlReplicaLagIndicator}. */
export interface MySqlReplicaLagIndicatorOptions {
  /**
   * A drizzle database (mysql2) on the REPLICA: MySQL and MariaDB report lag where it is,
   * unlike PostgreSQL's primary-side view. Watch several replicas with one indicator each,
   * combined with `worstOf`. Used, never closed.
   */
  db: DrizzleDatabase;
  /** Lag (seconds) at which the backfill slows down. @default 1 (pt-online-schema-change's `--max-lag 1`) */
  slowSeconds?: number | null | undefined;
  /**
   * Lag at which the backfill stops. @default 1.5 (gh-ost's `--max-lag-millis 1500`).
   * `Seconds_Behind_Master` is a whole number, so with it 1 reads slow and 2 or more stop.
   */
  stopSeconds?: number | null | undefined;
  /**
   * A `TIMESTAMP(6)` (or `DATETIME(6)`) column of a `mysqlTable()` on the replica that a writer
   * on the primary keeps at `NOW(6)` every ~100 ms (pt-heartbeat, or your own `UPDATE hb SET
   * ts = NOW(6)`). Lag is then `NOW(6) − MAX(column)` to the microsecond, instead of
   * `Seconds_Behind_Master` (whole seconds, measured from each event's start: a long
   * transaction reads late and high). Needs only SELECT on the table, and synchronised
   * clocks; a `DATETIME` column also needs the writer and this session in one time zone.
   * @default undefined (SHOW REPLICA STATUS)
   */
  heartbeat?: Column | undefined;
  /**
   * Whether a server that is not a replica (SHOW REPLICA STATUS is empty) answers `stop`
   * instead of `ok`. Set it when `db` must be a replica, so that a wrong URL does not read as
   * "no lag".
   * @default false
   */
  requireReplication?: boolean | undefined;
}

// Tried in order, the first that parses is kept: MariaDB lists every connection of a
// multi-source replica; MySQL 8.0.22+ says REPLICA (8.4 dropped SLAVE); older ones say SLAVE.
const STATUS_STATEMENTS = ["SHOW ALL SLAVES STATUS", "SHOW REPLICA STATUS", "SHOW SLAVE STATUS"] as const;
const ER_PARSE_ERROR = 1064;
const ER_SPECIFIC_ACCESS_DENIED = 1227;

/** The driver's error number behind drizzle's DrizzleQueryError, if any. */
function errnoOf(error: unknown): number | undefined {
  for (let e: unknown = error; typeof e === "object" && e !== null; e = (e as { cause?: unknown }).cause) {
    const errno = (e as { errno?: unknown }).errno;
    if (typeof errno === "number") return errno;
  }
  return undefined;
}

/** The first of `keys` the row has (MySQL 8 renamed Master → Source and Slave → Replica). */
function pick(row: Record<string, unknown>, ...keys: string[]): unknown {
  for (const key of keys) if (Object.prototype.hasOwnProperty.call(row, key)) return row[key];
  return undefined;
}

const text = (value: unknown): string => (value === null || value === undefined ? "" : Buffer.isBuffer(value) ? value.toString("utf8") : String(value));

/**
 * Replica lag on MySQL or MariaDB, read on the replica: `Seconds_Behind_Master`
 * (`Seconds_Behind_Source`) of every replication connection from `SHOW ALL SLAVES STATUS`
 * (MariaDB), `SHOW REPLICA STATUS` (MySQL 8.0.22+) or `SHOW SLAVE STATUS`, the worst one
 * named; or, with `heartbeat`, the age of the newest heartbeat row. `value` is the lag in
 * seconds. Replication that is not running (the SQL or I/O thread stopped, lag NULL) answers
 * `stop` with value null and the last error. A server that is not a replica answers `ok`,
 * value 0 (or `stop` with `requireReplication`).
 *
 * Privileges: `REPLICA MONITOR` on MariaDB 10.5.9+ (`REPLICATION CLIENT` before, or
 * SUPER), `REPLICATION CLIENT` on MySQL; with `heartbeat` only SELECT on its table.
 *
 * @example
 * ```ts
 * import { drizzle } from "drizzle-orm/mysql2";
 * import mysql from "mysql2/promise";
 * const replica = drizzle({ client: mysql.createPool(process.env.REPLICA_URL!) });
 * const lag = createMySqlReplicaLagIndicator({ db: replica, requireReplication: true });
 * await lag({ backfill: "reencrypt", signal: AbortSignal.timeout(2_000) });
 * // { level: "stop", reason: "replica lag 3 s ≥ 1.5 s (from 10.0.0.5:3306)", value: 3 }
 * ```
 */
export function createMySqlReplicaLagIndicator(options: MySqlReplicaLagIndicatorOptions): HealthIndicator {
  const factory = "createMySqlReplicaLagIndicator";
  const o = checkOptions(options, factory, ["db", "slowSeconds", "stopSeconds", "heartbeat", "requireReplication"]);
  const db = dbOption(o.db, "mysql", factory);
  const thresholds = thresholdOptions(o, ["slowSeconds", "stopSeconds"], { slow: 1, stop: 1.5 }, SECONDS);
  const requireReplication = booleanOption(o.requireReplication, "requireReplication", false);

  if (o.heartbeat !== undefined) {
    const column = o.heartbeat;
    if (!is(column, Column) || !is(column.table, MySqlTable)) {
      throw invalidOption("heartbeat", `of ${factory} must be a column of a mysqlTable() (a TIMESTAMP(6) kept at NOW(6) by the primary), got ${describeValue(column)}`);
    }
    const label = `${getTableName(column.table)}.${column.name}`;
    const query = sql`select timestampdiff(microsecond, max(${column}), now(6)) as lag_us from ${column.table}`;
    return async (context) => {
      const rows = await readSignal(factory, `heartbeat ${label}`, context, async () => rowsOf(await db.execute(query), "mysql"));
      const micros = rows[0]?.lag_us;
      if (micros === null || micros === undefined) {
        throw signalError(factory, `heartbeat ${label} has no rows: is the heartbeat writer running on the primary?`);
      }
      // A writer whose clock runs ahead would read as negative lag.
      const lag = Math.max(0, Number(micros) / 1e6);
      const { level, text: versus } = measure(lag, thresholds, SECONDS);
      return { level, reason: `replica lag ${versus} (heartbeat ${label})`, value: lag };
    };
  }

  // The statement this server understands, found by the first poll. Each poll walks on from it
  // with an index of its own, so two overlapping polls cannot skip one together.
  let statement = 0;
  const readStatus = async (): Promise<Array<Record<string, unknown>>> => {
    for (let i = statement; ; i++) {
      const current = STATUS_STATEMENTS[i]!;
      try {
        const rows = rowsOf(await db.execute(sql.raw(current)), "mysql");
        statement = i;
        return rows;
      } catch (error) {
        const errno = errnoOf(error);
        if (errno === ER_PARSE_ERROR && i < STATUS_STATEMENTS.length - 1) continue;
        if (errno === ER_SPECIFIC_ACCESS_DENIED) {
          throw signalError(
            factory,
            `${current} was refused: the user needs REPLICA MONITOR (MariaDB 10.5.9+), REPLICATION CLIENT (MySQL, older MariaDB) or SUPER`,
          );
        }
        throw error;
      }
    }
  };

  return async (context) => {
    const rows = await readSignal(factory, "replica status", context, readStatus);
    if (rows.length === 0) {
      const reason = `not a replica (${STATUS_STATEMENTS[statement]} is empty)`;
      return requireReplication ? { level: "stop", reason: `${reason}, and requireReplication is set`, value: null } : { level: "ok", reason: `${reason}: no replica lag`, value: 0 };
    }
    const judged = rows.map((row) => {
      const name = text(pick(row, "Connection_name", "Channel_Name", "Channel_name"));
      const host = text(pick(row, "Master_Host", "Source_Host"));
      const port = text(pick(row, "Master_Port", "Source_Port"));
      const from = `${name ? `connection "${name}" ` : ""}from ${host}:${port}`;
      const behind = pick(row, "Seconds_Behind_Master", "Seconds_Behind_Source");
      if (behind === null || behind === undefined || text(behind) === "") {
        const io = text(pick(row, "Slave_IO_Running", "Replica_IO_Running"));
        const sqlThread = text(pick(row, "Slave_SQL_Running", "Replica_SQL_Running"));
        const error = text(pick(row, "Last_SQL_Error")) || text(pick(row, "Last_IO_Error"));
        return {
          level: "stop" as HealthLevel,
          lag: null,
          reason: `replication ${from} is not running (I/O thread: ${io || "?"}, SQL thread: ${sqlThread || "?"})${error ? `: ${error}` : ""}`,
        };
      }
      const lag = Number(text(behind));
      const { level, text: versus } = measure(lag, thresholds, SECONDS);
      return { level, lag, reason: `replica lag ${versus} (${from})` };
    });
    judged.sort((a, b) => compareLevels(b.level, a.level) || (b.lag ?? 0) - (a.lag ?? 0));
    const worst = judged[0]!;
    const more = judged.length > 1 ? `; worst of ${judged.length} replication connections` : "";
    return { level: worst.level, reason: `${worst.reason}${more}`, value: worst.lag };
  };
}

/* -------------------------------------------------------- Threads_running */

/** Options of {@link createMySqlThreadsRunningIndicator}. */
export interface MySqlThreadsRunningIndicatorOptions {
  /** A drizzle database (mysql2) on the server the backfill writes (the primary). Used, never closed. */
  db: DrizzleDatabase;
  /**
   * Running threads (the sampler left out) at which the backfill slows down: the default of
   * pt-online-schema-change's `--max-load Threads_running=25`. Scale it to the server: a few
   * times its cores.
   * @default 25
   */
  slowThreads?: number | null | undefined;
  /** Running threads at which the backfill stops: pt-online-schema-change's `--critical-load Threads_running=50`. @default 50 */
  stopThreads?: number | null | undefined;
}

/**
 * `Threads_running` from `SHOW GLOBAL STATUS` (MySQL and MariaDB alike, no privilege needed),
 * minus one for the sampling session itself: threads executing a statement right now,
 * including replication threads and the binlog dump thread of each connected replica. `value`
 * is that count. One sample per poll, so a momentary spike counts as much as a sustained load.
 *
 * @example
 * ```ts
 * const db = drizzle({ client: mysql.createPool(process.env.DATABASE_URL!) });
 * const load = createMySqlThreadsRunningIndicator({ db });
 * await load({ backfill: "reencrypt", signal: AbortSignal.timeout(2_000) });
 * // { level: "slow", reason: "34 threads running ≥ 25", value: 34 }
 * ```
 */
export function createMySqlThreadsRunningIndicator(options: MySqlThreadsRunningIndicatorOptions): HealthIndicator {
  const factory = "createMySqlThreadsRunningIndicator";
  const o = checkOptions(options, factory, ["db", "slowThreads", "stopThreads"]);
  const db = dbOption(o.db, "mysql", factory);
  const thresholds = thresholdOptions(o, ["slowThreads", "stopThreads"], { slow: 25, stop: 50 }, COUNT);
  const query: SQL = sql.raw("SHOW GLOBAL STATUS LIKE 'Threads_running'");

  return async (context) => {
    const rows = await readSignal(factory, "Threads_running", context, async () => rowsOf(await db.execute(query), "mysql"));
    const raw = rows[0] === undefined ? undefined : pick(rows[0], "Value", "VALUE");
    const total = Number(text(raw));
    if (raw === undefined || !Number.isFinite(total)) throw signalError(factory, `SHOW GLOBAL STATUS gave no Threads_running (got ${describeValue(rows)})`);
    const running = Math.max(0, total - 1);
    const { level, bound } = measure(running, thresholds, COUNT);
    return { level, reason: `${plural(running, "thread")} running${bound === "" ? "" : ` ${bound}`}`, value: running };
  };
}
