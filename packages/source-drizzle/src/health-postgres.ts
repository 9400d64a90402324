/**
 * Health indicators for PostgreSQL (node-postgres, postgres.js, PGlite through drizzle). Each is
 * one catalog query per poll over shared-memory views (pg_stat_activity, pg_stat_replication,
 * pg_stat_progress_vacuum, pg_locks): no table is read and no lock is taken. They need the
 * privileges of `pg_read_all_stats` (granted by `pg_monitor`): without it PostgreSQL shows other
 * roles' sessions with their state, lag and relation columns NULL, which would read as "all
 * clear". So every query also asks `pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')`
 * and the indicator throws (fails closed) when the answer is no.
 */
import { invalidOption, describeValue, wholeNumberOption } from "@superspreader/core/adapter";
import type { HealthContext, HealthIndicator, HealthLevel, HealthReading } from "@superspreader/core";
import { getTableName, is, sql } from "drizzle-orm";
import { PgTable, getTableConfig } from "drizzle-orm/pg-core";
import type { SQL } from "drizzle-orm";
import {
  BYTES,
  COUNT,
  RATIO,
  SECONDS,
  checkOptions,
  compareLevels,
  dbOption,
  json,
  levelOption,
  measure,
  namesOption,
  plural,
  signalError,
  readSignal,
  round,
  rowsOf,
  thresholdOptions,
  worse,
} from "./health.js";
import type { DrizzleDatabase } from "./target.js";

/* ------------------------------------------------------------------ shared */

/** `current_user` and whether it may see every session's details; selected by every query. */
const PRIVILEGE = sql`current_user::text as "user", pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') as privileged`;

/** Runs `query` (one row), failing closed when the role lacks pg_read_all_stats. */
async function queryPg(db: DrizzleDatabase, factory: string, what: string, context: HealthContext | undefined, query: SQL): Promise<Record<string, unknown>> {
  const rows = await readSignal(factory, what, context, async () => rowsOf(await db.execute(query), "pg"));
  const row = rows[0];
  if (row === undefined) throw signalError(factory, `reading ${what} returned no row`);
  if (row.privileged !== true) {
    throw signalError(
      factory,
      `role "${String(row.user)}" cannot see other sessions in ${what} (their details read as NULL); ` +
        `grant it pg_monitor: GRANT pg_monitor TO "${String(row.user)}"`,
    );
  }
  return row;
}

/** A PostgreSQL table option, as the text `to_regclass()` takes: `"schema"."name"`, or `"name"` (found through search_path). */
function pgTableOption(value: unknown, field: string, factory: string): { regclass: string; label: string } {
  if (!is(value, PgTable)) {
    throw invalidOption(field, `of ${factory} must be a drizzle table from pgTable(), got ${describeValue(value)}`);
  }
  const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
  const name = getTableName(value);
  const schema = getTableConfig(value).schema;
  return {
    regclass: schema === undefined ? quote(name) : `${quote(schema)}.${quote(name)}`,
    label: schema === undefined ? name : `${schema}.${name}`,
  };
}

function tableNotFound(factory: string, label: string): Error {
  return signalError(factory, `table ${label} does not exist (looked up with to_regclass through the search_path)`);
}

/* ------------------------------------------------------- replication lag */

/** Options of {@link createPgReplicationLagIndicator}. */
export interface PgReplicationLagIndicatorOptions {
  /** A drizzle database on the primary (node-postgres, postgres.js, PGlite, …). Used, never closed. */
  db: DrizzleDatabase;
  /**
   * Replay lag (seconds) of the worst replica at which the backfill slows down.
   * @default 1 (below gh-ost's `--max-lag-millis 1500`, so the rate comes down before the stop)
   */
  slowSeconds?: number | null | undefined;
  /**
   * Replay lag (seconds) at which the backfill stops. Reads from replicas a second and a half
   * stale are what gh-ost's default `--max-lag-millis 1500` protects against.
   * @default 1.5
   */
  stopSeconds?: number | null | undefined;
  /**
   * WAL bytes not yet replayed (`pg_wal_lsn_diff`) at which the backfill slows down. Off by
   * default: how long a byte count takes to replay depends on the replica, and the time
   * (replay_lag) is what readers see. Set it when replay_lag is not reported (see the README).
   * @default null
   */
  slowBytes?: number | null | undefined;
  /** WAL bytes not yet replayed at which the backfill stops. @default null */
  stopBytes?: number | null | undefined;
  /**
   * `application_name`s of walsenders to leave out: a replica delayed on purpose
   * (`recovery_min_apply_delay`) would otherwise hold every backfill.
   * @default []
   */
  ignore?: readonly string[] | undefined;
  /**
   * Replicas that must be connected: fewer answers `stop`. A replica that disconnects
   * vanishes from pg_stat_replication, so with the default a lost replica reads as
   * "no replicas, ok"; set the number you run.
   * @default 0
   */
  minReplicas?: number | undefined;
}

interface ReplicaRow {
  pid: number;
  name: string | null;
  addr: string | null;
  state: string | null;
  seconds: number | null;
  bytes: number | null;
}

/**
 * Replication lag of each replica, read on the primary from `pg_stat_replication`: `replay_lag`
 * (seconds from a WAL flush on the primary to its replay on the replica) and the WAL bytes not
 * yet replayed (`pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)`). Answers for the worst
 * replica and names it; `value` is its replay lag in seconds (0 when caught up, null when it has
 * not reported a replay time yet). Needs `pg_monitor`.
 *
 * - No replica connected: `ok`, value 0, "no replicas connected" (unless `minReplicas` says otherwise).
 * - WAL receivers that do not replay (pg_receivewal, pg_basebackup's stream) have no `replay_lsn` and are skipped.
 * - Run on a standby, it reads the cascading replicas fed by that standby.
 *
 * @example
 * ```ts
 * import { drizzle } from "drizzle-orm/node-postgres";
 * import pg from "pg";
 * const db = drizzle({ client: new pg.Pool({ connectionString: process.env.PRIMARY_URL }) });
 * const lag = createPgReplicationLagIndicator({ db, minReplicas: 2, ignore: ["dr_delayed"] });
 * await lag({ backfill: "reencrypt", signal: AbortSignal.timeout(2_000) });
 * // { level: "stop", reason: "replica \"replica_a\" (10.0.0.7, streaming) replay lag 2.3 s ≥ 1.5 s, unreplayed WAL 18 MiB; worst of 2 replicas", value: 2.3 }
 * ```
 */
export function createPgReplicationLagIndicator(options: PgReplicationLagIndicatorOptions): HealthIndicator {
  const factory = "createPgReplicationLagIndicator";
  const o = checkOptions(options, factory, ["db", "slowSeconds", "stopSeconds", "slowBytes", "stopBytes", "ignore", "minReplicas"]);
  const db = dbOption(o.db, "pg", factory);
  const seconds = thresholdOptions(o, ["slowSeconds", "stopSeconds"], { slow: 1, stop: 1.5 }, SECONDS);
  const bytes = thresholdOptions(o, ["slowBytes", "stopBytes"], { slow: null, stop: null }, BYTES);
  const ignore = new Set(namesOption(o.ignore, "ignore"));
  const minReplicas = wholeNumberOption(o.minReplicas, "minReplicas", 0, 0);
  // On a standby pg_current_wal_lsn() raises; its own replay position is what it has to pass on.
  const query = sql`select ${PRIVILEGE}, coalesce((
      select json_agg(json_build_object(
        'pid', pid, 'name', application_name, 'addr', host(client_addr), 'state', state,
        'seconds', extract(epoch from replay_lag)::float8,
        'bytes', pg_wal_lsn_diff(case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end, replay_lsn)::float8))
      from pg_stat_replication where replay_lsn is not null), '[]'::json) as replicas`;

  return async (context) => {
    const row = await queryPg(db, factory, "pg_stat_replication", context, query);
    const replicas = json<ReplicaRow[]>(row.replicas).filter((r) => !ignore.has(r.name ?? ""));
    const judged = replicas.map((r) => {
      // Nothing left to replay means no lag, whatever replay_lag says: it goes NULL once an idle
      // replica has replayed everything, and it keeps the last lag it measured until the
      // replica's next status reply (wal_receiver_status_interval, 10 s by default).
      const lag = (r.bytes ?? 0) <= 0 ? 0 : r.seconds;
      const time: { level: HealthLevel; text: string } = lag === null ? { level: "ok", text: "not reported yet" } : measure(lag, seconds, SECONDS);
      const behind = measure(Math.max(0, r.bytes ?? 0), bytes, BYTES);
      const label = `replica "${r.name || `pid ${r.pid}`}" (${[r.addr, r.state].filter(Boolean).join(", ")})`;
      return { lag, bytes: r.bytes ?? 0, level: worse(time.level, behind.level), text: `${label} replay lag ${time.text}, unreplayed WAL ${behind.text}` };
    });
    judged.sort((a, b) => compareLevels(b.level, a.level) || (b.lag ?? 0) - (a.lag ?? 0) || b.bytes - a.bytes);
    const worst = judged[0];
    const missing =
      replicas.length < minReplicas ? `only ${replicas.length} of ${plural(minReplicas, "expected replica")} connected` : null;
    if (worst === undefined) {
      if (missing !== null) return { level: "stop", reason: `${missing} (pg_stat_replication)`, value: null };
      return { level: "ok", reason: ignore.size > 0 ? "no replicas connected (other than ignored ones)" : "no replicas connected", value: 0 };
    }
    const more = judged.length > 1 ? `; worst of ${judged.length} replicas` : "";
    if (missing !== null) return { level: "stop", reason: `${missing}; ${worst.text}`, value: worst.lag };
    return { level: worst.level, reason: `${worst.text}${more}`, value: worst.lag };
  };
}

/* ------------------------------------------------------ long transactions */

/** Options of {@link createPgLongTransactionIndicator}. */
export interface PgLongTransactionIndicatorOptions {
  /** A drizzle database on the server to watch. Used, never closed. */
  db: DrizzleDatabase;
  /**
   * Age (seconds) of the oldest open transaction at which the backfill slows down. While any
   * transaction is older than the backfill's updates, vacuum cannot remove the row versions
   * they leave behind: the backfill then only adds bloat. A minute is longer than an OLTP
   * transaction should ever take.
   * @default 60
   */
  slowSeconds?: number | null | undefined;
  /**
   * Age at which the backfill stops, so that it does not pile up dead rows behind a forgotten
   * `BEGIN` (an "idle in transaction" session) or a runaway report.
   * @default 300
   */
  stopSeconds?: number | null | undefined;
  /** `application_name`s whose transactions do not count (e.g. `["pg_dump"]` if nightly dumps may run alongside). @default [] */
  ignore?: readonly string[] | undefined;
}

interface TransactionRow {
  pid: number;
  user: string | null;
  app: string | null;
  state: string | null;
  seconds: number;
}

/**
 * The age of the oldest open transaction of a client session (`now() - xact_start` in
 * `pg_stat_activity`, client backends only, the indicator's own session left out): a long
 * single statement counts as much as an idle `BEGIN`. `value` is the age in seconds, 0 when
 * no transaction is open. Needs `pg_monitor`. Transactions prepared for two-phase commit
 * (`pg_prepared_xacts`) and replication slots' xmin are not looked at.
 *
 * @example
 * ```ts
 * const db = drizzle({ client: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * const longTx = createPgLongTransactionIndicator({ db, slowSeconds: 120, stopSeconds: 600 });
 * await longTx({ backfill: "reencrypt", signal: AbortSignal.timeout(2_000) });
 * // { level: "slow", reason: "oldest transaction 131 s ≥ 120 s (pid 4242, \"psql\", user alice, idle in transaction)", value: 131.2 }
 * ```
 */
export function createPgLongTransactionIndicator(options: PgLongTransactionIndicatorOptions): HealthIndicator {
  const factory = "createPgLongTransactionIndicator";
  const o = checkOptions(options, factory, ["db", "slowSeconds", "stopSeconds", "ignore"]);
  const db = dbOption(o.db, "pg", factory);
  const thresholds = thresholdOptions(o, ["slowSeconds", "stopSeconds"], { slow: 60, stop: 300 }, SECONDS);
  const ignore = namesOption(o.ignore, "ignore");
  const ignored = ignore.length === 0 ? sql`` : sql` and application_name not in (${sql.join(ignore.map((name) => sql`${name}`), sql`, `)})`;
  const query = sql`select ${PRIVILEGE}, (select row_to_json(t) from (
      select pid, usename as "user", application_name as app, state,
        extract(epoch from statement_timestamp() - xact_start)::float8 as seconds
      from pg_stat_activity
      where backend_type = 'client backend' and xact_start is not null and pid <> pg_backend_pid()${ignored}
      order by xact_start limit 1) t) as oldest`;

  return async (context) => {
    const row = await queryPg(db, factory, "pg_stat_activity", context, query);
    const oldest = json<TransactionRow | null>(row.oldest);
    if (oldest === null) return { level: "ok", reason: "no open transactions", value: 0 };
    const age = Math.max(0, oldest.seconds);
    const { level, text } = measure(age, thresholds, SECONDS);
    const who = [`pid ${oldest.pid}`, oldest.app ? JSON.stringify(oldest.app) : null, oldest.user ? `user ${oldest.user}` : null, oldest.state]
      .filter(Boolean)
      .join(", ");
    return { level, reason: `oldest transaction ${text} (${who})`, value: age };
  };
}

/* ------------------------------------------------------------- autovacuum */

/** Options of {@link createPgAutovacuumIndicator}. */
export interface PgAutovacuumIndicatorOptions {
  /** A drizzle database on the primary. Used, never closed. */
  db: DrizzleDatabase;
  /** The table the backfill writes, from `pgTable()` (its TOAST table counts too). */
  table: PgTable;
  /**
   * What an autovacuum on the table answers. GitLab's batched migrations treat it as stop:
   * the backfill's updates keep adding dead rows for the vacuum to chase, and an anti-wraparound
   * vacuum must not be slowed. `"slow"` only lowers the rate.
   * @default "stop"
   */
  level?: "slow" | "stop" | undefined;
}

interface VacuumRow {
  pid: number;
  relation: string;
  phase: string;
  scanned: number;
  total: number;
  seconds: number | null;
  query: string | null;
}

/**
 * Whether an autovacuum worker is vacuuming the target table (or its TOAST table), from
 * `pg_stat_progress_vacuum` joined to `pg_stat_activity` (`backend_type = 'autovacuum worker'`).
 * `value` is the number of such workers (0 or 1, 2 with TOAST); the reason gives the phase,
 * progress and whether it runs to prevent wraparound. A manual `VACUUM` and an analyze-only
 * autovacuum do not count. Needs `pg_monitor`; a table that does not exist throws.
 * PGlite runs no autovacuum: there it always answers ok.
 *
 * @example
 * ```ts
 * const db = drizzle({ client: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * const vacuum = createPgAutovacuumIndicator({ db, table: messages });
 * await vacuum({ backfill: "reencrypt", signal: AbortSignal.timeout(2_000) });
 * // { level: "stop", reason: "autovacuum is vacuuming messages (scanning heap, 40% of 1200 blocks, 3.1 s)", value: 1 }
 * ```
 */
export function createPgAutovacuumIndicator(options: PgAutovacuumIndicatorOptions): HealthIndicator {
  const factory = "createPgAutovacuumIndicator";
  const o = checkOptions(options, factory, ["db", "table", "level"]);
  const db = dbOption(o.db, "pg", factory);
  const table = pgTableOption(o.table, "table", factory);
  const running = levelOption(o.level, "level", "stop");
  const query = sql`with target as (select to_regclass(${table.regclass}) as rel)
    select ${PRIVILEGE}, (select rel is not null from target) as found, coalesce((
      select json_agg(json_build_object(
        'pid', p.pid, 'relation', p.relid::regclass::text, 'phase', p.phase,
        'scanned', p.heap_blks_scanned, 'total', p.heap_blks_total, 'query', a.query,
        'seconds', extract(epoch from statement_timestamp() - a.xact_start)::float8))
      from pg_stat_progress_vacuum p join pg_stat_activity a on a.pid = p.pid
      where a.backend_type = 'autovacuum worker'
        and p.relid in (select rel from target union all select c.reltoastrelid from pg_class c join target on c.oid = target.rel)
    ), '[]'::json) as vacuums`;

  return async (context) => {
    const row = await queryPg(db, factory, "pg_stat_progress_vacuum", context, query);
    if (row.found !== true) throw tableNotFound(factory, table.label);
    const vacuums = json<VacuumRow[]>(row.vacuums);
    const first = vacuums[0];
    if (first === undefined) return { level: "ok", reason: `no autovacuum on ${table.label}`, value: 0 };
    const progress = first.total > 0 ? `, ${round((100 * first.scanned) / first.total)}% of ${first.total} blocks` : "";
    const since = first.seconds === null ? "" : `, ${SECONDS.format(first.seconds)}`;
    const wraparound = first.query?.includes("to prevent wraparound") ? " to prevent wraparound" : "";
    const what = first.relation.includes("pg_toast") ? `the TOAST table of ${table.label}` : table.label;
    return { level: running, reason: `autovacuum is vacuuming ${what}${wraparound} (${first.phase}${progress}${since})`, value: vacuums.length };
  };
}

/* ------------------------------------------------------------- lock waits */

/** Options of {@link createPgLockWaitIndicator}. */
export interface PgLockWaitIndicatorOptions {
  /** A drizzle database on the server to watch. Used, never closed. */
  db: DrizzleDatabase;
  /**
   * Count only sessions blocked on this table: waiting for a lock on it (e.g. behind an
   * `ALTER TABLE`) or queued for one of its rows (holding or awaiting a row's tuple lock).
   * @default undefined (every session waiting on a lock of any kind)
   */
  table?: PgTable | undefined;
  /**
   * A session counts once it has waited this long (`pg_locks.waitstart`). The default is
   * PostgreSQL's `deadlock_timeout`, the wait after which `log_lock_waits` reports one:
   * shorter waits are ordinary row contention.
   * @default 1000
   */
  minWaitMs?: number | undefined;
  /** Waiting sessions at which the backfill slows down: one blocked session means contention the backfill may add to. @default 1 */
  slowSessions?: number | null | undefined;
  /** Waiting sessions at which the backfill stops: a lock queue is forming (typically behind DDL waiting for a transaction). @default 5 */
  stopSessions?: number | null | undefined;
}

interface WaitRow {
  pid: number;
  user: string | null;
  app: string | null;
  locktype: string;
  mode: string;
  relation: string | null;
  xid: string | null;
  seconds: number;
  blockers: number[];
}

/**
 * The number of client sessions waiting on a heavyweight lock for at least `minWaitMs`, from
 * `pg_locks` (not granted, `waitstart`, PostgreSQL 14 or later) joined to `pg_stat_activity`,
 * optionally only those blocked on the target table. The reason names the longest waiter,
 * what it waits for and who blocks it (`pg_blocking_pids`, called for that one session only).
 * `value` is the count. Needs `pg_monitor`. Reading `pg_locks` briefly takes the lock
 * manager's partition locks: poll every second or slower, not in a tight loop.
 *
 * @example
 * ```ts
 * const db = drizzle({ client: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * const locks = createPgLockWaitIndicator({ db, table: messages });
 * await locks({ backfill: "reencrypt", signal: AbortSignal.timeout(2_000) });
 * // { level: "slow", reason: "1 session waiting on a lock for ≥ 1 s, 1 ≥ 1 (longest: pid 4242 waits 3.2 s for AccessShareLock on messages, blocked by pid 4100)", value: 1 }
 * ```
 */
export function createPgLockWaitIndicator(options: PgLockWaitIndicatorOptions): HealthIndicator {
  const factory = "createPgLockWaitIndicator";
  const o = checkOptions(options, factory, ["db", "table", "minWaitMs", "slowSessions", "stopSessions"]);
  const db = dbOption(o.db, "pg", factory);
  const table = o.table === undefined ? undefined : pgTableOption(o.table, "table", factory);
  const minWaitMs = wholeNumberOption(o.minWaitMs, "minWaitMs", 1000, 0);
  const thresholds = thresholdOptions(o, ["slowSessions", "stopSessions"], { slow: 1, stop: 5 }, COUNT);
  // A row-lock waiter holds (or queues for) the row's tuple lock and waits on the holder's
  // transaction id; a table-lock waiter waits on the relation itself.
  const onTable =
    table === undefined
      ? sql``
      : sql` and exists (select 1 from pg_locks t where t.pid = l.pid and t.database = (select oid from pg_database where datname = current_database())
          and t.relation = (select to_regclass(${table.regclass})) and (t.locktype = 'tuple' or (t.locktype = 'relation' and not t.granted)))`;
  const found = table === undefined ? sql`true` : sql`to_regclass(${table.regclass}) is not null`;
  const query = sql`with waiting as (
      select l.pid, a.usename as "user", a.application_name as app, l.locktype, l.mode,
        l.relation::regclass::text as relation, l.transactionid::text as xid,
        extract(epoch from statement_timestamp() - l.waitstart)::float8 as seconds
      from pg_locks l join pg_stat_activity a on a.pid = l.pid
      where not l.granted and a.backend_type = 'client backend' and a.pid <> pg_backend_pid()
        and l.waitstart <= statement_timestamp() - ${minWaitMs}::int * interval '1 millisecond'${onTable})
    select ${PRIVILEGE}, ${found} as found, (select count(distinct pid)::int from waiting) as waiting,
      (select row_to_json(w) from (select waiting.*, pg_blocking_pids(waiting.pid) as blockers from waiting order by seconds desc limit 1) w) as longest`;
  const scope = `${table === undefined ? "" : ` on ${table.label}`} for ≥ ${SECONDS.format(minWaitMs / 1000)}`;

  return async (context) => {
    const row = await queryPg(db, factory, "pg_locks", context, query);
    if (row.found !== true && table !== undefined) throw tableNotFound(factory, table.label);
    const count = Number(row.waiting);
    const { level, text } = measure(count, thresholds, COUNT);
    const what = `${count === 1 ? "1 session" : `${count} sessions`} waiting on a lock${scope}, ${text}`;
    const longest = json<WaitRow | null>(row.longest);
    if (longest === null) return { level, reason: what, value: count };
    const on = longest.relation ?? (longest.xid === null ? longest.locktype : `transaction ${longest.xid}`);
    const by = longest.blockers.length === 0 ? "" : `, blocked by ${longest.blockers.length === 1 ? "pid" : "pids"} ${longest.blockers.join(", ")}`;
    const detail = `longest: pid ${longest.pid} waits ${SECONDS.format(longest.seconds)} for ${longest.mode} on ${on}${by}`;
    return { level, reason: `${what} (${detail})`, value: count };
  };
}

/* ------------------------------------------------------------ connections */

/** Options of {@link createPgConnectionIndicator}. */
export interface PgConnectionIndicatorOptions {
  /** A drizzle database on the server to watch. Used, never closed. */
  db: DrizzleDatabase;
  /** Share of usable connections in use at which the backfill slows down (0–1]. @default 0.8 */
  slowRatio?: number | null | undefined;
  /**
   * Share at which it stops. At 100% new connections fail ("sorry, too many clients already");
   * the application's pools and the backfill's own workers need the last tenth.
   * @default 0.9
   */
  stopRatio?: number | null | undefined;
}

/**
 * Connection saturation: client backends in `pg_stat_activity` over the usable connections
 * (`max_connections` − `superuser_reserved_connections` − `reserved_connections` on
 * PostgreSQL 16+). `value` is that ratio (superusers may push it above 1). Needs `pg_monitor`
 * (without it other roles' `backend_type` reads NULL). Connections held by a pooler
 * (PgBouncer) in front count as the server sees them.
 *
 * @example
 * ```ts
 * const db = drizzle({ client: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * const connections = createPgConnectionIndicator({ db });
 * await connections({ backfill: "reencrypt", signal: AbortSignal.timeout(2_000) });
 * // { level: "slow", reason: "83 of 97 usable connections in use, 86% ≥ 80%", value: 0.856 }
 * ```
 */
export function createPgConnectionIndicator(options: PgConnectionIndicatorOptions): HealthIndicator {
  const factory = "createPgConnectionIndicator";
  const o = checkOptions(options, factory, ["db", "slowRatio", "stopRatio"]);
  const db = dbOption(o.db, "pg", factory);
  const thresholds = thresholdOptions(o, ["slowRatio", "stopRatio"], { slow: 0.8, stop: 0.9 }, RATIO);
  // current_setting(…, true) is NULL where reserved_connections does not exist (before 16).
  const query = sql`select ${PRIVILEGE},
      (select count(*)::int from pg_stat_activity where backend_type = 'client backend') as used,
      current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
        - coalesce(current_setting('reserved_connections', true)::int, 0) as usable`;

  return async (context): Promise<HealthReading> => {
    const row = await queryPg(db, factory, "pg_stat_activity", context, query);
    const used = Number(row.used);
    const usable = Math.max(1, Number(row.usable));
    const ratio = used / usable;
    const { level, text } = measure(ratio, thresholds, RATIO);
    return { level, reason: `${used} of ${usable} usable connections in use, ${text}`, value: ratio };
  };
}
