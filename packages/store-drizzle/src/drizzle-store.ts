import { SuperSpreaderError, rangeSize } from "@superspreader/core";
import type {
  BatchTiming,
  BudgetMember,
  ConfigChange,
  FailedRange,
  FailureCounts,
  IdRange,
  OutputAdded,
  OutstandingEntry,
  RangeEntry,
  RangeRun,
  RangeTransactions,
  RunMetrics,
  StateStore,
  Versioned,
} from "@superspreader/core";
import {
  checkBudgetClaim,
  checkEntry,
  checkLimit,
  checkName,
  checkOutput,
  checkOutputPage,
  checkRunId,
  checkStartRate,
  checkTime,
  checkTiming,
  claimShare,
  describeValue,
  invalidOption,
  checkConfigChange as checkChange,
  checkEntries as checkList,
  checkExpectedVersion as checkVersion,
  checkFailure as checkFailed,
  toJson as jsonOf,
} from "@superspreader/core/adapter";
import { entityKind, sql } from "drizzle-orm";
import type { SQL } from "drizzle-orm";
import { type Dialect, type SqlDatabase, execute, flavour, isDuplicateKey, resolveDialect, translate, writeAll } from "./dialect.js";
import { checkTablePrefix, schemaCheck, tables } from "./schema.js";

/** Options of {@link createDrizzleStateStore}. */
export interface DrizzleStateStoreOptions<TDb = unknown> {
  /**
   * A drizzle database: `drizzle-orm/node-postgres` (a `pg.Pool` is best: transactions take a
   * connection of their own), `drizzle-orm/pglite` or `drizzle-orm/mysql2` (MySQL 8 or MariaDB
   * 10.6+, a pool). The store never closes it. Its tables must have been created with
   * {@link migrateStateStore}. Required.
   *
   * @default none (required)
   */
  readonly db: TDb;
  /**
   * The dialect, when `db` is not a drizzle `PgDatabase` or `MySqlDatabase` itself (a wrapper).
   *
   * @default read from `db`
   */
  readonly dialect?: Dialect;
  /**
   * Prefix of the store's table names (`<prefix>docs`, `<prefix>done`, …): lower-case letters,
   * digits and `_`, starting with a letter or `_`, at most 40 characters. Two prefixes are two
   * independent stores in one database.
   *
   * @default "superspreader_"
   */
  readonly tablePrefix?: string;
}

/** The transaction object a drizzle database hands to `transaction(tx => …)`. */
export type TransactionOf<TDb> = TDb extends { transaction(work: (tx: infer Tx) => Promise<never>, ...rest: never[]): unknown } ? Tx : unknown;

/** A {@link StateStore} that can commit a batch's writes with its ledger record. */
export interface DrizzleStateStore<Tx = unknown> extends StateStore {
  readonly capabilities: { readonly transactions: RangeTransactions<Tx> };
}

/** How many configuration changes a backfill keeps (newest first). */
const CONFIG_CHANGES_KEPT = 1000;
/** Per-minute metric buckets this much older than a new one are dropped. */
const BUCKET_WINDOW_MS = 60 * 60_000;
/** Entries per statement in list operations (PostgreSQL binds at most 65,535 parameters). */
const CHUNK = 1000;

/** Thrown inside a transaction to roll it back because the range was already done. */
const ALREADY_DONE = Symbol("already done");

function chunks<T>(list: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += CHUNK) out.push(list.slice(i, i + CHUNK));
  return out;
}

const entryKey = (e: RangeEntry): string => `${e.beginId}:${e.endId}:${e.cycle}`;

/** Keeps the last of several entries with the same key, in first-seen order. */
function dedupe<T extends RangeEntry>(entries: readonly T[]): T[] {
  const byKey = new Map<string, T>();
  for (const e of entries) byKey.set(entryKey(e), e);
  return [...byKey.values()];
}

const text = (v: unknown): string => String(v);
const count = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

/**
 * Creates a {@link StateStore} on a drizzle database: PostgreSQL (node-postgres, PGlite) or
 * MySQL/MariaDB (mysql2), in tables created by {@link migrateStateStore}.
 *
 * Reads are one statement. Writes that touch one row are one statement; the others are one short
 * transaction (READ COMMITTED) that first locks the run's row, so a run's ledger, counters and
 * entries change one writer at a time while other runs go on. No hot path reads more than the
 * rows it changes: the ledger is merged on write (its neighbours found by primary key), counters
 * live in one row per run. Id sums are `DECIMAL(40,0)`, exact far beyond 2^53.
 *
 * `capabilities.transactions.runRange` runs a batch's work in a transaction of this database and
 * records the range in the same transaction: exactly once, as long as the work writes only
 * through the `tx` it is given.
 *
 * @example
 * ```ts
 * import pg from "pg";
 * import { drizzle } from "drizzle-orm/node-postgres";
 * import { createSuperSpreader } from "@superspreader/core";
 * import { createDrizzleStateStore, migrateStateStore } from "@superspreader/store-drizzle";
 *
 * const db = drizzle({ client: new pg.Pool({ connectionString: process.env.DATABASE_URL }) });
 * await migrateStateStore(db); // once per deployment; idempotent
 * const store = createDrizzleStateStore({ db });
 * const spreader = createSuperSpreader({ queue, store });
 * ```
 */
export function createDrizzleStateStore<TDb extends object>(options: DrizzleStateStoreOptions<TDb>): DrizzleStateStore<TransactionOf<TDb>> {
  if (typeof options !== "object" || options === null) {
    throw invalidOption("options", `must be an object with a db, got ${describeValue(options)}`);
  }
  const dialect = resolveDialect(options.db, options.dialect);
  const T = tables(checkTablePrefix(options.tablePrefix));
  const db = options.db as unknown as SqlDatabase;
  const f = flavour(dialect);
  const ready = schemaCheck(db, T);
  let closed = false;

  async function op<R>(operation: string, body: () => Promise<R>): Promise<R> {
    if (closed) {
      throw new SuperSpreaderError("INVALID_STATE", `${operation}: this drizzle state store was closed; create a new one with createDrizzleStateStore()`);
    }
    await ready();
    try {
      return await body();
    } catch (error) {
      throw translate(error, operation);
    }
  }

  /**
   * READ COMMITTED: every statement sees what committed before it, and MySQL takes no gap locks.
   * PGlite is one connection whose transactions run one at a time: setting it would cost a statement.
   */
  const isolation = isPglite(options.db) ? undefined : ({ isolationLevel: "read committed" } as const);
  const transaction = <R>(work: (tx: SqlDatabase) => Promise<R>): Promise<R> => db.transaction(work, isolation);

  /** An entry's columns, read back exactly (see `toEntry`). */
  const entryColumns = sql`${f.text(sql`begin_id`)} AS b, ${f.text(sql`end_id`)} AS e, ${f.text(sql`cycle`)} AS c`;
  const run = (name: string, runId: string): SQL => sql`name = ${name} AND run_id = ${runId}`;
  const entryIs = (e: RangeEntry): SQL => sql`(begin_id = ${f.id(e.beginId)} AND end_id = ${f.id(e.endId)} AND cycle = ${e.cycle})`;
  const anyEntry = (entries: readonly RangeEntry[]): SQL => sql`(${sql.join(entries.map(entryIs), sql` OR `)})`;
  const entryValues = (name: string, runId: string, e: RangeEntry): SQL => sql`(${name}, ${runId}, ${f.id(e.beginId)}, ${f.id(e.endId)}, ${e.cycle})`;

  /**
   * Locks the run's row for the rest of the transaction (creating it the first time) and returns
   * its consecutive-failure count. Every multi-row write of a run starts here.
   */
  async function lockRun(tx: SqlDatabase, name: string, runId: string): Promise<number> {
    const lock = sql`SELECT ${f.text(sql`consecutive_failures`)} AS cf FROM ${T.runs} WHERE ${run(name, runId)} FOR UPDATE`;
    let { rows } = await execute(tx, lock);
    if (rows.length === 0) {
      await execute(tx, sql`${f.insertInto(T.runs)} (name, run_id) VALUES (${name}, ${runId}) ${f.onConflictKeep("name, run_id", "name")}`);
      ({ rows } = await execute(tx, lock));
    }
    return count(rows[0]?.cf);
  }

  /** `body` in a transaction holding the run's row lock, given the run's consecutive-failure count. */
  const locked = <R>(operation: string, name: string, runId: string, body: (tx: SqlDatabase, failures: number) => Promise<R>): Promise<R> =>
    op(operation, () => transaction(async (tx) => body(tx, await lockRun(tx, name, runId))));

  /** The ledger member at or below `beginId`, or null. */
  const predecessor = (name: string, runId: string, beginId: bigint, tag: SQL = sql`'p'`): SQL =>
    sql`(SELECT ${tag} AS k, ${f.text(sql`begin_id`)} AS b, ${f.text(sql`end_id`)} AS e FROM ${T.done}
      WHERE ${run(name, runId)} AND begin_id <= ${f.id(beginId)} ORDER BY begin_id DESC LIMIT 1)`;

  const minuteUpsert = (name: string, runId: string, minute: number, ids: bigint, batches: number, failures: number, timing?: BatchTiming): SQL =>
    sql`${f.insertInto(T.minutes)} (name, run_id, minute, ids, batches, failures, handler_ms, late_ms)
      VALUES (${name}, ${runId}, ${f.double(minute)}, CAST(${ids.toString()} AS DECIMAL(40,0)), ${batches}, ${failures}, ${timing?.handlerMs ?? 0}, ${timing?.lateMs ?? 0})
      ${f.onConflict(
        "name, run_id, minute",
        sql`ids = ${f.cur("ids")} + ${f.excluded("ids")}, batches = ${f.cur("batches")} + ${f.excluded("batches")},
          failures = ${f.cur("failures")} + ${f.excluded("failures")}, handler_ms = ${f.cur("handler_ms")} + ${f.excluded("handler_ms")},
          late_ms = ${f.cur("late_ms")} + ${f.excluded("late_ms")}`,
      )}`;

  /** As in memory: the buckets a new one pushes out of the window go when it is created. */
  const prune = (name: string, runId: string, minute: number): SQL =>
    sql`DELETE FROM ${T.minutes} WHERE ${run(name, runId)} AND minute <= ${f.double(minute - BUCKET_WINDOW_MS)}`;

  /**
   * `markDone` inside `tx`: lock the run, read the range's ledger neighbours (by key, never a
   * scan), then every write in one statement (PostgreSQL) or a few (MySQL). `extra` writes join them.
   */
  async function recordDone(tx: SqlDatabase, name: string, runId: string, entry: RangeEntry, at: number, timing: BatchTiming | undefined, extra: SQL[] = []): Promise<boolean> {
    const failures = await lockRun(tx, name, runId);
    const { beginId: B, endId: E } = entry;
    const minute = Math.floor(at / 60_000) * 60_000;
    const { rows } = await execute(
      tx,
      sql`${predecessor(name, runId, B)}
        UNION ALL (SELECT 's', ${f.text(sql`begin_id`)}, ${f.text(sql`end_id`)} FROM ${T.done}
          WHERE ${run(name, runId)} AND begin_id > ${f.id(B)} AND begin_id <= ${f.id(E + 1n)})
        UNION ALL (SELECT 'm', NULL, NULL FROM ${T.minutes} WHERE ${run(name, runId)} AND minute = ${f.double(minute)})
        UNION ALL (SELECT 'o', NULL, NULL FROM ${T.outstanding} WHERE ${run(name, runId)} AND ${entryIs(entry)})`,
    );
    const kinds = new Set(rows.map((r) => r.k));
    const pred = rows.find((r) => r.k === "p");
    const writes = [...extra];
    if (kinds.has("o")) writes.push(sql`DELETE FROM ${T.outstanding} WHERE ${run(name, runId)} AND ${entryIs(entry)}`);
    if (timing?.slotAt !== undefined) {
      // A start that reserved no slot is counted in the bucket at its slot, as a reservation there would be.
      writes.push(
        sql`UPDATE ${T.starts} SET tat = GREATEST(tat, ${f.double(timing.slotAt)}) + 1000 / per_second WHERE ${run(name, runId)} AND per_second > 0`,
      );
    }
    if (pred && BigInt(text(pred.e)) >= E) {
      if (failures !== 0) writes.push(sql`UPDATE ${T.runs} SET consecutive_failures = 0 WHERE ${run(name, runId)}`);
      await writeAll(tx, dialect, writes);
      return false;
    }
    const mergesPred = pred !== undefined && (B === 0n || BigInt(text(pred.e)) >= B - 1n);
    let newEnd = E;
    const swallowed = rows.filter((r) => r.k === "s").map((r) => BigInt(text(r.b)));
    for (const r of rows) if (r.k === "s" && BigInt(text(r.e)) > newEnd) newEnd = BigInt(text(r.e));
    writes.push(
      mergesPred
        ? sql`UPDATE ${T.done} SET end_id = ${f.id(newEnd)} WHERE ${run(name, runId)} AND begin_id = ${f.id(BigInt(text(pred.b)))}`
        : sql`INSERT INTO ${T.done} (name, run_id, begin_id, end_id) VALUES (${name}, ${runId}, ${f.id(B)}, ${f.id(newEnd)})`,
    );
    if (swallowed.length > 0) {
      writes.push(sql`DELETE FROM ${T.done} WHERE ${run(name, runId)} AND begin_id IN (${sql.join(swallowed.map((b) => f.id(b)), sql`, `)})`);
    }
    const size = rangeSize(entry);
    writes.push(
      sql`UPDATE ${T.runs} SET batches_done = batches_done + 1, ids_done = ids_done + CAST(${size.toString()} AS DECIMAL(40,0)),
        last_done_at = ${f.double(at)}, consecutive_failures = 0 WHERE ${run(name, runId)}`,
      minuteUpsert(name, runId, minute, size, 1, 0, timing),
    );
    if (!kinds.has("m")) writes.push(prune(name, runId, minute));
    await writeAll(tx, dialect, writes);
    return true;
  }

  /** The first of `rows` as a Versioned, or null. */
  const versioned = (row: Record<string, unknown> | undefined): Versioned<unknown> | null => {
    if (!row || row.version === null || row.version === undefined) return null;
    return { version: Number(row.version), value: JSON.parse(text(row.value)) as unknown };
  };

  /** The wait of a reserved GCRA slot, exactly as the in-memory store computes it. */
  const waitOf = (at: number, row: Record<string, unknown> | undefined, updated: boolean): number => {
    if (row && updated && row.per_second !== null && row.per_second !== undefined) {
      const interval = 1000 / Number(row.per_second);
      const startAt = Math.max(at, Number(row.prev_tat) - (Number(row.burst) - 1) * interval);
      return Math.ceil(startAt - at);
    }
    return row && row.rate !== null && row.rate !== undefined && Number(row.rate) === 0 ? Number.POSITIVE_INFINITY : 0;
  };

  const reserve = (name: string, runId: string, at: number): SQL =>
    // Both assignments read the old tat, so MySQL's left-to-right and MariaDB's simultaneous assignment agree.
    sql`UPDATE ${T.starts} SET prev_tat = GREATEST(tat, ${f.double(at)}), tat = GREATEST(tat, ${f.double(at)}) + 1000 / per_second
      WHERE ${run(name, runId)} AND per_second > 0`;

  const transactions: RangeTransactions<TransactionOf<TDb>> = {
    async runRange(name, runId, entry, work, at): Promise<RangeRun> {
      checkRun(name, runId);
      checkEntry(entry);
      if (typeof work !== "function") throw invalidOption("work", `must be a function (tx) => Promise<BatchTiming>, got ${describeValue(work)}`);
      if (typeof at !== "function") throw invalidOption("at", `must be a function returning epoch ms, got ${describeValue(at)}`);
      let workError: { error: unknown } | null = null;
      const claim = sql`${run(name, runId)} AND begin_id = ${f.id(entry.beginId)} AND end_id = ${f.id(entry.endId)}`;
      try {
        return await op("runRange", () =>
          transaction(async (tx) => {
            // A second delivery of the range blocks here until this transaction ends; the claim is
            // deleted again before commit, so the table stays empty and the waiter then finds the ledger.
            await execute(tx, sql`INSERT INTO ${T.claims} (name, run_id, begin_id, end_id) VALUES (${name}, ${runId}, ${f.id(entry.beginId)}, ${f.id(entry.endId)})`);
            const { rows } = await execute(tx, predecessor(name, runId, entry.beginId));
            if (rows[0] && BigInt(text(rows[0].e)) >= entry.endId) throw ALREADY_DONE;
            let timing: BatchTiming;
            try {
              timing = await work(tx as TransactionOf<TDb>);
            } catch (error) {
              workError = { error };
              throw error;
            }
            checkTiming(timing);
            const completedAt = at();
            checkTime(completedAt, "at()");
            const added = await recordDone(tx, name, runId, entry, completedAt, timing, [sql`DELETE FROM ${T.claims} WHERE ${claim}`]);
            // Recorded meanwhile by a plain markDone of the same range: roll the work back, it ran already.
            if (!added) throw ALREADY_DONE;
            return { committed: true, alreadyDone: false };
          }),
        );
      } catch (error) {
        if (error === ALREADY_DONE || (error instanceof SuperSpreaderError && error.cause === ALREADY_DONE)) return { committed: false, alreadyDone: true };
        const failed = workError as { error: unknown } | null;
        if (failed && (error === failed.error || (error as { cause?: unknown }).cause === failed.error)) throw failed.error;
        throw error;
      }
    },
  };

  return {
    capabilities: { transactions },

    async get(name) {
      checkName(name);
      return op("get", async () => {
        const { rows } = await execute(db, sql`SELECT ${f.text(sql`version`)} AS version, value FROM ${T.docs} WHERE name = ${name}`);
        return versioned(rows[0]);
      });
    },

    async readForStart(name, runId, at) {
      checkRun(name, runId);
      checkTime(at, "at");
      return op("readForStart", async () => {
        if (dialect === "pg") {
          // One statement: the slot is reserved by the UPDATE in the CTE, the document read beside it.
          const { rows } = await execute(
            db,
            sql`WITH b AS (${reserve(name, runId, at)} RETURNING prev_tat, per_second, burst)
              SELECT ${f.text(sql`d.version`)} AS version, d.value AS value, b.prev_tat AS prev_tat, b.per_second AS per_second, ${f.text(sql`b.burst`)} AS burst,
                (SELECT s.per_second FROM ${T.starts} s WHERE s.name = ${name} AND s.run_id = ${runId}) AS rate
              FROM (SELECT 1 AS one) o LEFT JOIN ${T.docs} d ON d.name = ${name} LEFT JOIN b ON true`,
          );
          const row = rows[0];
          return { doc: versioned(row), waitMs: waitOf(at, row, row?.per_second !== null && row?.per_second !== undefined) };
        }
        // MySQL has no UPDATE … RETURNING: reserve, then read the row this transaction now holds.
        return transactionDefault(async (tx) => {
          const { count: updated } = await execute(tx, reserve(name, runId, at));
          const { rows } = await execute(
            tx,
            sql`SELECT ${f.text(sql`d.version`)} AS version, d.value AS value, s.prev_tat AS prev_tat, s.per_second AS per_second,
                ${f.text(sql`s.burst`)} AS burst, s.per_second AS rate
              FROM (SELECT 1 AS one) o LEFT JOIN ${T.docs} d ON d.name = ${name} LEFT JOIN ${T.starts} s ON s.name = ${name} AND s.run_id = ${runId}`,
          );
          return { doc: versioned(rows[0]), waitMs: waitOf(at, rows[0], updated > 0) };
        });
      });
    },

    async setStartRate(name, runId, perSecond, burst, at) {
      checkRun(name, runId);
      checkStartRate(perSecond, burst);
      checkTime(at, "at");
      await op("setStartRate", () =>
        transaction(async (tx) => {
          const { rows } = await execute(tx, sql`SELECT per_second, tat FROM ${T.starts} WHERE ${run(name, runId)} FOR UPDATE`);
          const old = rows[0];
          // Slots already handed out stay reserved; the next one comes one interval of the new rate
          // after the last one (the stored tat is one old interval after it). Computed here, in
          // doubles, exactly as the in-memory store does.
          let tat = old ? Number(old.tat) : at;
          const before = old?.per_second === null || old?.per_second === undefined ? null : Number(old.per_second);
          if (old && before && perSecond) tat = tat - 1000 / before + 1000 / perSecond;
          await execute(
            tx,
            sql`${f.insertInto(T.starts)} (name, run_id, per_second, burst, tat) VALUES (${name}, ${runId}, ${f.double(perSecond)}, ${burst}, ${f.double(tat)})
              ${f.onConflict("name, run_id", sql`per_second = ${f.excluded("per_second")}, burst = ${f.excluded("burst")}, tat = ${f.excluded("tat")}`)}`,
          );
        }),
      );
    },

    async claimBudget(key, member, claim, at) {
      checkBudgetClaim(key, member, claim, at);
      return op("claimBudget", () =>
        transaction(async (tx) => {
          const lock = sql`SELECT version FROM ${T.budgets} WHERE budget_key = ${key} FOR UPDATE`;
          if ((await execute(tx, lock)).rows.length === 0) {
            await execute(tx, sql`${f.insertInto(T.budgets)} (budget_key, version) VALUES (${key}, 0) ${f.onConflictKeep("budget_key", "budget_key")}`);
            await execute(tx, lock);
          }
          const { rows } = await execute(tx, sql`SELECT member, weight, want, cap, at FROM ${T.budgetMembers} WHERE budget_key = ${key}`);
          const stored: Record<string, Omit<BudgetMember, "member">> = {};
          for (const r of rows) stored[text(r.member)] = { weight: Number(r.weight), want: Number(r.want), cap: Number(r.cap), at: Number(r.at) };
          const { record, expired, members } = claimShare(stored, member, claim, at);
          const writes: SQL[] = [];
          if (expired.length > 0) {
            writes.push(sql`DELETE FROM ${T.budgetMembers} WHERE budget_key = ${key} AND member IN (${sql.join(expired.map((m) => sql`${m}`), sql`, `)})`);
          }
          writes.push(
            sql`${f.insertInto(T.budgetMembers)} (budget_key, member, weight, want, cap, at)
              VALUES (${key}, ${member}, ${f.double(record.weight)}, ${f.double(record.want)}, ${f.double(record.cap)}, ${f.double(record.at)})
              ${f.onConflict(
                "budget_key, member",
                sql`weight = ${f.excluded("weight")}, want = ${f.excluded("want")}, cap = ${f.excluded("cap")}, at = ${f.excluded("at")}`,
              )}`,
          );
          await writeAll(tx, dialect, writes);
          return { cap: record.cap, members };
        }),
      );
    },

    async compareAndSet(name, expectedVersion, value) {
      checkName(name);
      checkVersion(expectedVersion);
      const json = jsonOf(value, "value");
      return op("compareAndSet", async () => {
        if (expectedVersion > 0) {
          const { count: n } = await execute(
            db,
            sql`UPDATE ${T.docs} SET version = version + 1, value = ${json} WHERE name = ${name} AND version = ${expectedVersion}`,
          );
          return n === 1 ? expectedVersion + 1 : null;
        }
        if (dialect === "pg") {
          const { count: n } = await execute(db, sql`INSERT INTO ${T.docs} (name, version, value) VALUES (${name}, 1, ${json}) ON CONFLICT (name) DO NOTHING`);
          return n === 1 ? 1 : null;
        }
        try {
          await execute(db, sql`INSERT INTO ${T.docs} (name, version, value) VALUES (${name}, 1, ${json})`);
          return 1;
        } catch (error) {
          // MySQL's upsert reports "inserted" and "already there" alike under CLIENT_FOUND_ROWS (mysql2's default).
          if (isDuplicateKey(error)) return null;
          throw error;
        }
      });
    },

    async list() {
      return op("list", async () => {
        const { rows } = await execute(db, sql`SELECT name FROM ${T.docs}`);
        // Sorted here, by code unit as in memory, whatever the column's collation.
        return rows.map((r) => text(r.name)).sort();
      });
    },

    async appendConfigChange(name, change) {
      checkName(name);
      checkChange(change);
      const json = jsonOf(change, "change");
      await op("appendConfigChange", async () => {
        await execute(db, sql`INSERT INTO ${T.configChanges} (name, change_json) VALUES (${name}, ${json})`);
        // The derived table keeps MySQL from refusing a subquery on the table being deleted from.
        await execute(
          db,
          sql`DELETE FROM ${T.configChanges} WHERE name = ${name} AND id <= (SELECT id FROM (SELECT id FROM ${T.configChanges} WHERE name = ${name}
            ORDER BY id DESC LIMIT 1 OFFSET ${sql.raw(String(CONFIG_CHANGES_KEPT))}) x)`,
        );
      });
    },

    async listConfigChanges(name, limit) {
      checkName(name);
      checkLimit(limit);
      return op("listConfigChanges", async () => {
        const { rows } = await execute(db, sql`SELECT change_json FROM ${T.configChanges} WHERE name = ${name} ORDER BY id DESC LIMIT ${sql.raw(String(limit))}`);
        return rows.map((r) => JSON.parse(text(r.change_json)) as ConfigChange);
      });
    },

    async markDone(name, runId, entry, at, timing) {
      checkRun(name, runId);
      checkEntry(entry);
      checkTime(at, "at");
      if (timing !== undefined) checkTiming(timing);
      return op("markDone", () => transaction((tx) => recordDone(tx, name, runId, entry, at, timing)));
    },

    async listDone(name, runId) {
      checkRun(name, runId);
      return op("listDone", async () => {
        const { rows } = await execute(
          db,
          sql`SELECT ${f.text(sql`begin_id`)} AS b, ${f.text(sql`end_id`)} AS e FROM ${T.done} WHERE ${run(name, runId)} ORDER BY begin_id`,
        );
        return rows.map((r): IdRange => ({ beginId: BigInt(text(r.b)), endId: BigInt(text(r.e)) }));
      });
    },

    async addDeferred(name, runId, entry) {
      checkRun(name, runId);
      checkEntry(entry);
      await locked("addDeferred", name, runId, async (tx) => {
        const { rows } = await execute(
          tx,
          sql`(SELECT 'd' AS k FROM ${T.deferred} WHERE ${run(name, runId)} AND ${entryIs(entry)})
            UNION ALL (SELECT 'o' FROM ${T.outstanding} WHERE ${run(name, runId)} AND ${entryIs(entry)})`,
        );
        const kinds = new Set(rows.map((r) => r.k));
        const writes: SQL[] = [];
        if (kinds.has("o")) writes.push(sql`DELETE FROM ${T.outstanding} WHERE ${run(name, runId)} AND ${entryIs(entry)}`);
        if (!kinds.has("d")) {
          writes.push(
            sql`INSERT INTO ${T.deferred} (name, run_id, begin_id, end_id, cycle) VALUES ${entryValues(name, runId, entry)}`,
            sql`UPDATE ${T.runs} SET batches_deferred = batches_deferred + 1 WHERE ${run(name, runId)}`,
          );
        }
        await writeAll(tx, dialect, writes);
      });
    },

    async listDeferred(name, runId, limit) {
      checkRun(name, runId);
      checkLimit(limit);
      return op("listDeferred", async () => {
        const { rows } = await execute(
          db,
          sql`SELECT ${entryColumns} FROM ${T.deferred} WHERE ${run(name, runId)}
            ORDER BY end_id DESC, cycle ASC, begin_id DESC LIMIT ${sql.raw(String(limit))}`,
        );
        return rows.map(toEntry);
      });
    },

    async removeDeferred(name, runId, entries) {
      checkRun(name, runId);
      checkList(entries);
      if (entries.length === 0) return;
      await op("removeDeferred", async () => {
        for (const part of chunks(entries)) await execute(db, sql`DELETE FROM ${T.deferred} WHERE ${run(name, runId)} AND ${anyEntry(part)}`);
      });
    },

    async addFailed(name, runId, failure) {
      checkRun(name, runId);
      checkFailed(failure);
      await locked("addFailed", name, runId, async (tx) => {
        await writeAll(tx, dialect, [
          sql`${f.insertInto(T.failed)} (name, run_id, begin_id, end_id, cycle, error, error_name, attempts, at)
            VALUES (${name}, ${runId}, ${f.id(failure.beginId)}, ${f.id(failure.endId)}, ${failure.cycle}, ${failure.error}, ${failure.errorName},
              ${failure.attempts}, ${f.double(failure.at)})
            ${f.onConflict(
              "name, run_id, begin_id, end_id",
              sql`cycle = ${f.excluded("cycle")}, error = ${f.excluded("error")}, error_name = ${f.excluded("error_name")},
                attempts = ${f.excluded("attempts")}, at = ${f.excluded("at")}`,
            )}`,
          sql`UPDATE ${T.runs} SET batches_failed = batches_failed + 1 WHERE ${run(name, runId)}`,
          sql`DELETE FROM ${T.outstanding} WHERE ${run(name, runId)} AND ${entryIs(failure)}`,
        ]);
      });
    },

    async recordFailure(name, runId, at): Promise<FailureCounts> {
      checkRun(name, runId);
      checkTime(at, "at");
      return locked("recordFailure", name, runId, async (tx, failures) => {
        const consecutive = failures + 1;
        const minute = Math.floor(at / 60_000) * 60_000;
        const { rows } = await execute(
          tx,
          sql`SELECT minute, ${f.text(sql`batches`)} AS b, ${f.text(sql`failures`)} AS fl FROM ${T.minutes}
            WHERE ${run(name, runId)} AND minute IN (${f.double(minute)}, ${f.double(minute - 60_000)})`,
        );
        const writes = [
          sql`UPDATE ${T.runs} SET consecutive_failures = consecutive_failures + 1 WHERE ${run(name, runId)}`,
          minuteUpsert(name, runId, minute, 0n, 0, 1),
        ];
        if (!rows.some((r) => Number(r.minute) === minute)) writes.push(prune(name, runId, minute));
        await writeAll(tx, dialect, writes);
        let recentFailures = 1;
        let recentDone = 0;
        for (const r of rows) {
          recentFailures += count(r.fl);
          recentDone += count(r.b);
        }
        return { consecutive, recentFailures, recentDone };
      });
    },

    async addOutstanding(name, runId, entries) {
      checkRun(name, runId);
      checkList(entries, true);
      if (entries.length === 0) return;
      await op("addOutstanding", async () => {
        // Deduplicated: PostgreSQL refuses to upsert one row twice in a statement. Adding again only moves checkAt.
        for (const part of chunks(dedupe(entries))) {
          const values = part.map((e) => sql`(${name}, ${runId}, ${f.id(e.beginId)}, ${f.id(e.endId)}, ${e.cycle}, ${f.double(e.checkAt)})`);
          await execute(
            db,
            sql`${f.insertInto(T.outstanding)} (name, run_id, begin_id, end_id, cycle, check_at) VALUES ${sql.join(values, sql`, `)}
              ${f.onConflict("name, run_id, begin_id, end_id, cycle", sql`check_at = ${f.excluded("check_at")}`)}`,
          );
        }
      });
    },

    async listOutstanding(name, runId, dueBefore, limit) {
      checkRun(name, runId);
      checkTime(dueBefore, "dueBefore");
      checkLimit(limit);
      return op("listOutstanding", async () => {
        const { rows } = await execute(
          db,
          sql`SELECT ${entryColumns}, check_at FROM ${T.outstanding}
            WHERE ${run(name, runId)} AND check_at <= ${f.double(dueBefore)} ORDER BY check_at ASC, end_id DESC, cycle ASC LIMIT ${sql.raw(String(limit))}`,
        );
        return rows.map((r): OutstandingEntry => ({ ...toEntry(r), checkAt: Number(r.check_at) }));
      });
    },

    async touchOutstanding(name, runId, entries, checkAt) {
      checkRun(name, runId);
      checkList(entries);
      checkTime(checkAt, "checkAt");
      if (entries.length === 0) return;
      await op("touchOutstanding", async () => {
        for (const part of chunks(entries)) {
          await execute(db, sql`UPDATE ${T.outstanding} SET check_at = ${f.double(checkAt)} WHERE ${run(name, runId)} AND ${anyEntry(part)}`);
        }
      });
    },

    async reclaimOutstanding(name, runId, entries): Promise<RangeEntry[]> {
      checkRun(name, runId);
      checkList(entries);
      if (entries.length === 0) return [];
      const unique = dedupe(entries);
      return locked("reclaimOutstanding", name, runId, async (tx) => {
        const present = new Set<string>();
        for (const part of chunks(unique)) {
          const { rows } = await execute(
            tx,
            sql`SELECT ${entryColumns} FROM ${T.outstanding}
              WHERE ${run(name, runId)} AND ${anyEntry(part)}`,
          );
          for (const r of rows) present.add(entryKey(toEntry(r)));
        }
        const reclaimed = unique.filter((e) => present.has(entryKey(e)));
        if (reclaimed.length === 0) return [];
        // Each entry's ledger predecessor, the only member that can cover it.
        const covered = new Set<number>();
        const deferred = new Set<string>();
        for (const [c, part] of chunks(reclaimed).entries()) {
          const { rows } = await execute(
            tx,
            sql.join(
              part.map((e, i) => predecessor(name, runId, e.beginId, sql.raw(`'${c * CHUNK + i}'`))),
              sql` UNION ALL `,
            ),
          );
          for (const r of rows) {
            const i = Number(r.k);
            if (BigInt(text(r.e)) >= (reclaimed[i] as RangeEntry).endId) covered.add(i);
          }
          const known = await execute(
            tx,
            sql`SELECT ${entryColumns} FROM ${T.deferred}
              WHERE ${run(name, runId)} AND ${anyEntry(part)}`,
          );
          for (const r of known.rows) deferred.add(entryKey(toEntry(r)));
        }
        const moved = reclaimed.filter((_, i) => !covered.has(i)).map(({ beginId, endId, cycle }) => ({ beginId, endId, cycle }));
        const added = moved.filter((e) => !deferred.has(entryKey(e)));
        const writes: SQL[] = chunks(reclaimed).map((part) => sql`DELETE FROM ${T.outstanding} WHERE ${run(name, runId)} AND ${anyEntry(part)}`);
        for (const part of chunks(added)) {
          writes.push(
            sql`INSERT INTO ${T.deferred} (name, run_id, begin_id, end_id, cycle) VALUES ${sql.join(part.map((e) => entryValues(name, runId, e)), sql`, `)}`,
          );
        }
        if (moved.length > 0) {
          writes.push(
            sql`UPDATE ${T.runs} SET batches_lost = batches_lost + ${moved.length}, batches_deferred = batches_deferred + ${added.length} WHERE ${run(name, runId)}`,
          );
        }
        await writeAll(tx, dialect, writes);
        return moved;
      });
    },

    async listFailed(name, runId, limit) {
      checkRun(name, runId);
      checkLimit(limit);
      return op("listFailed", async () => {
        const { rows } = await execute(
          db,
          sql`SELECT ${entryColumns}, error, error_name, ${f.text(sql`attempts`)} AS attempts, at
            FROM ${T.failed} WHERE ${run(name, runId)} ORDER BY end_id DESC, cycle ASC LIMIT ${sql.raw(String(limit))}`,
        );
        return rows.map(
          (r): FailedRange => ({ ...toEntry(r), error: text(r.error), errorName: text(r.error_name), attempts: Number(r.attempts), at: Number(r.at) }),
        );
      });
    },

    async requeueFailed(name, runId, since) {
      checkRun(name, runId);
      if (since !== undefined) checkTime(since, "since");
      return locked("requeueFailed", name, runId, async (tx) => {
        const which = since === undefined ? sql`${run(name, runId)}` : sql`${run(name, runId)} AND at >= ${f.double(since)}`;
        const { rows } = await execute(
          tx,
          sql`SELECT ${entryColumns} FROM ${T.failed} WHERE ${which}`,
        );
        if (rows.length === 0) return 0;
        const failed = rows.map(toEntry);
        const known = new Set<string>();
        for (const part of chunks(failed)) {
          const r = await execute(
            tx,
            sql`SELECT ${entryColumns} FROM ${T.deferred}
              WHERE ${run(name, runId)} AND ${anyEntry(part)}`,
          );
          for (const row of r.rows) known.add(entryKey(toEntry(row)));
        }
        const added = failed.filter((e) => !known.has(entryKey(e)));
        const writes: SQL[] = chunks(added).map(
          (part) => sql`INSERT INTO ${T.deferred} (name, run_id, begin_id, end_id, cycle) VALUES ${sql.join(part.map((e) => entryValues(name, runId, e)), sql`, `)}`,
        );
        // The run is locked: the rows this condition matches now are the ones just read.
        writes.push(sql`DELETE FROM ${T.failed} WHERE ${which}`);
        if (added.length > 0) writes.push(sql`UPDATE ${T.runs} SET batches_deferred = batches_deferred + ${added.length} WHERE ${run(name, runId)}`);
        await writeAll(tx, dialect, writes);
        return failed.length;
      });
    },

    async addOutput(name, runId, entry, maxBytes) {
      checkRun(name, runId);
      const bytes = checkOutput(entry, maxBytes);
      return op("addOutput", () =>
        transaction(async (tx): Promise<OutputAdded> => {
          // The run's counters row, locked: concurrent additions are counted against the bound one at a time.
          const lock = sql`SELECT ${f.text(sql`kept`)} AS k, ${f.text(sql`bytes`)} AS b FROM ${T.outputRuns} WHERE ${run(name, runId)} FOR UPDATE`;
          let { rows } = await execute(tx, lock);
          if (rows.length === 0) {
            await execute(tx, sql`${f.insertInto(T.outputRuns)} (name, run_id) VALUES (${name}, ${runId}) ${f.onConflictKeep("name, run_id", "name")}`);
            ({ rows } = await execute(tx, lock));
          }
          const kept = count(rows[0]?.k);
          const used = count(rows[0]?.b);
          const range = sql`${run(name, runId)} AND begin_id = ${f.id(entry.beginId)} AND end_id = ${f.id(entry.endId)}`;
          if ((await execute(tx, sql`SELECT 1 AS x FROM ${T.output} WHERE ${range}`)).rows.length > 0) return "exists";
          if (used + bytes > maxBytes) {
            await execute(tx, sql`UPDATE ${T.outputRuns} SET dropped = dropped + 1 WHERE ${run(name, runId)}`);
            return "full";
          }
          await execute(
            tx,
            sql`INSERT INTO ${T.output} (name, run_id, seq, begin_id, end_id, at, result)
              VALUES (${name}, ${runId}, ${kept}, ${f.id(entry.beginId)}, ${f.id(entry.endId)}, ${f.double(entry.at)}, ${entry.result})`,
          );
          await execute(tx, sql`UPDATE ${T.outputRuns} SET kept = kept + 1, bytes = bytes + ${bytes} WHERE ${run(name, runId)}`);
          return "added";
        }),
      );
    },

    async listOutput(name, runId, cursor, limit) {
      checkRun(name, runId);
      checkOutputPage(cursor, limit);
      return op("listOutput", async () => {
        // One statement, so the page and the totals come from one snapshot.
        const { rows } = await execute(
          db,
          sql`SELECT ${f.text(sql`r.kept`)} AS k, ${f.text(sql`r.bytes`)} AS ob, ${f.text(sql`r.dropped`)} AS d,
              ${f.text(sql`o.begin_id`)} AS b, ${f.text(sql`o.end_id`)} AS e, o.at AS at, o.result AS result
            FROM (SELECT 1 AS one) x LEFT JOIN ${T.outputRuns} r ON r.name = ${name} AND r.run_id = ${runId}
              LEFT JOIN ${T.output} o ON o.name = ${name} AND o.run_id = ${runId} AND o.seq >= ${cursor} AND o.seq < ${cursor + limit}
            ORDER BY o.seq`,
        );
        const first = rows[0] ?? {};
        const total = count(first.k);
        const entries = rows
          .filter((r) => r.b !== null && r.b !== undefined)
          .map((r) => ({ beginId: BigInt(text(r.b)), endId: BigInt(text(r.e)), at: Number(r.at), result: text(r.result) }));
        return { entries, next: cursor + limit < total ? cursor + limit : null, count: total, bytes: count(first.ob), dropped: count(first.d) };
      });
    },

    async metrics(name, runId): Promise<RunMetrics> {
      checkRun(name, runId);
      return op("metrics", async () => {
        // One statement, so counters and buckets come from one snapshot.
        const { rows } = await execute(
          db,
          sql`SELECT ${f.text(sql`r.batches_done`)} AS bd, ${f.text(sql`r.ids_done`)} AS idd, ${f.text(sql`r.batches_failed`)} AS bf,
              ${f.text(sql`r.batches_deferred`)} AS bdf, ${f.text(sql`r.batches_lost`)} AS bl, ${f.text(sql`r.consecutive_failures`)} AS cf,
              r.last_done_at AS lda, m.minute AS minute, ${f.text(sql`m.ids`)} AS mi, ${f.text(sql`m.batches`)} AS mb, ${f.text(sql`m.failures`)} AS mf,
              ${f.text(sql`m.handler_ms`)} AS mh, ${f.text(sql`m.late_ms`)} AS ml
            FROM (SELECT 1 AS one) o LEFT JOIN ${T.runs} r ON r.name = ${name} AND r.run_id = ${runId}
              LEFT JOIN ${T.minutes} m ON m.name = ${name} AND m.run_id = ${runId}
            ORDER BY m.minute DESC LIMIT 60`,
        );
        const first = rows[0] ?? {};
        const recent = rows
          .filter((r) => r.minute !== null && r.minute !== undefined)
          .map((r) => ({
            minute: Number(r.minute),
            ids: BigInt(text(r.mi)).toString(),
            batches: count(r.mb),
            failures: count(r.mf),
            handlerMs: count(r.mh),
            lateMs: count(r.ml),
          }))
          .reverse();
        return {
          batchesDone: count(first.bd),
          idsDone: first.idd === null || first.idd === undefined ? "0" : BigInt(text(first.idd)).toString(),
          batchesFailed: count(first.bf),
          batchesDeferred: count(first.bdf),
          batchesLost: count(first.bl),
          consecutiveFailures: count(first.cf),
          lastDoneAt: first.lda === null || first.lda === undefined ? null : Number(first.lda),
          recent,
        };
      });
    },

    async close() {
      closed = true;
    },
  };

  /** A transaction at the database's default isolation (MySQL's readForStart needs no more). */
  function transactionDefault<R>(work: (tx: SqlDatabase) => Promise<R>): Promise<R> {
    return db.transaction(work);
  }
}

function checkRun(name: string, runId: string): void {
  checkName(name);
  checkRunId(runId);
}

function isPglite(db: object): boolean {
  return (db.constructor as { [entityKind]?: unknown } | undefined)?.[entityKind] === "PgliteDatabase";
}

function toEntry(r: Record<string, unknown>): RangeEntry {
  return { beginId: BigInt(text(r.b)), endId: BigInt(text(r.e)), cycle: Number(r.c) };
}
