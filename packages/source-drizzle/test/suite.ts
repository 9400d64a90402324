/**
 * The shared test body, run on PGlite, PostgreSQL and MariaDB (see *.test.ts).
 */
import {
  createManualClock,
  createMemoryJobQueue,
  createMemoryStateStore,
  createMemoryWorker,
  createSuperSpreader,
  isSuperSpreaderError,
} from "@superspreader/core";
import { and, eq, getTableName, gte, sql } from "drizzle-orm";
import { int, sqliteTable } from "drizzle-orm/sqlite-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { IdRange } from "@superspreader/core";
import type { SuperSpreaderError } from "@superspreader/core";
import { batchExecute, createDrizzleIdSource, idRange, selectIdsInRange } from "../src/index.js";
import type { BatchProgress } from "../src/index.js";
import { ID_KINDS, randomName } from "./kits.js";
import type { Kit, TestTable } from "./kits.js";

const TWO_53 = 2n ** 53n;

/** Asserts that `run` throws (or rejects with) a SuperSpreaderError of `code` whose message matches `message`. */
async function expectError(run: () => unknown, code: string, message: RegExp): Promise<SuperSpreaderError> {
  let caught: unknown;
  try {
    await run();
  } catch (error) {
    caught = error;
  }
  expect(isSuperSpreaderError(caught), `expected a SuperSpreaderError, got ${String(caught)}`).toBe(true);
  const error = caught as SuperSpreaderError;
  expect(error.code).toBe(code);
  expect(error.message).toMatch(message);
  return error;
}

/** Ids first..last (inclusive) except those in `gaps`. */
function idsBetween(first: bigint, last: bigint, gaps: readonly bigint[] = []): bigint[] {
  const ids: bigint[] = [];
  for (let id = first; id <= last; id++) if (!gaps.includes(id)) ids.push(id);
  return ids;
}

/** Checks that windows tile [low, high] exactly, in order, with no overlap. */
function expectTiling(windows: readonly IdRange[], low: bigint, high: bigint, direction: "up" | "down"): void {
  const ascending = direction === "up" ? windows : [...windows].reverse();
  expect(ascending[0]?.beginId).toBe(low);
  expect(ascending[ascending.length - 1]?.endId).toBe(high);
  for (let i = 1; i < ascending.length; i++) expect(ascending[i]?.beginId).toBe((ascending[i - 1]?.endId ?? -1n) + 1n);
}

export function describeDrizzleSuite(open: () => Promise<Kit>): void {
  let kit: Kit;
  // PGlite boots a WebAssembly PostgreSQL: seconds, more on a busy machine.
  beforeAll(async () => {
    kit = await open();
  }, 60_000);
  afterEach(async () => {
    await kit.dropTables();
  });
  afterAll(async () => {
    await kit?.close();
  });

  const source = (t: TestTable, where?: ReturnType<typeof sql>) =>
    createDrizzleIdSource({ db: kit.db, table: t.table, column: t.id, where });

  describe("createDrizzleIdSource", () => {
    it("returns null bounds and a zero count for an empty table", async () => {
      const t = await kit.createTable("integer", []);
      const s = source(t);
      expect(await s.minId()).toBeNull();
      expect(await s.maxId()).toBeNull();
      expect(await s.capabilities.countRange?.(0n, 100n)).toBe(0n);
    });

    for (const kind of ID_KINDS) {
      it(`reads exact bounds of a ${kind} key, up to the type's largest value`, async () => {
        const max = kit.maxOf(kind);
        // Beyond 2^53 where the type allows it: a number-mode column must not round.
        const big = max > TWO_53 ? [TWO_53 + 1n, TWO_53 + 2n] : [];
        const t = await kit.createTable(kind, [7n, 8n, 12n, ...big, max - 1n, max]);
        const s = source(t);
        expect(await s.minId()).toBe(7n);
        expect(await s.maxId()).toBe(max);
        expect(await s.capabilities.countRange?.(max - 1n, max)).toBe(2n);
        expect(await s.capabilities.countRange?.(8n, 12n)).toBe(2n);
        if (big.length > 0) {
          expect(await s.capabilities.countRange?.(TWO_53 + 1n, TWO_53 + 1n)).toBe(1n);
          expect(await s.capabilities.countRange?.(TWO_53, TWO_53)).toBe(0n);
        }
      });
    }

    it("honours the where scope in minId, maxId and countRange", async () => {
      const t = await kit.createTable("bigint", idsBetween(1n, 30n)); // grp = id % 3
      const s = source(t, eq(t.grp, 1));
      expect(await s.minId()).toBe(1n);
      expect(await s.maxId()).toBe(28n);
      expect(await s.capabilities.countRange?.(1n, 30n)).toBe(10n);
      expect(await s.capabilities.countRange?.(2n, 3n)).toBe(0n);
      const none = source(t, and(eq(t.grp, 1), gte(t.id, 29)) ?? sql`false`);
      expect(await none.minId()).toBeNull();
      expect(await none.maxId()).toBeNull();
    });

    it("accepts where: undefined, as and() of nothing returns", async () => {
      const t = await kit.createTable("integer", [3n, 9n]);
      expect(await source(t, and()).maxId()).toBe(9n);
    });

    it("works on a transaction, seeing its uncommitted rows", async () => {
      const t = await kit.createTable("bigint", [5n]);
      const inside = await kit.transaction(async (tx) => {
        await tx.execute(sql`insert into ${t.table} (id) values (${sql.raw("77")})`);
        return createDrizzleIdSource({ db: tx, table: t.table, column: t.id }).maxId();
      });
      expect(inside).toBe(77n);
    });

    it("rejects a non-integer column at creation, naming the column and its type", async () => {
      const t = await kit.createTable("integer", [1n]);
      for (const column of t.others) {
        const error = await expectError(
          () => createDrizzleIdSource({ db: kit.db, table: t.table, column }),
          "INVALID_ARGUMENT",
          new RegExp(`"${t.name}"\\."${column.name}" has type ${column.getSQLType().replace(/[()]/g, "\\$&")}`),
        );
        expect(error.field).toBe("column");
      }
    });

    it("rejects a column of another table, a table of another dialect and a mismatched db", async () => {
      const t = await kit.createTable("integer", [1n]);
      const other = await kit.createTable("integer", [1n]);
      await expectError(
        () => createDrizzleIdSource({ db: kit.db, table: t.table, column: other.id }),
        "INVALID_ARGUMENT",
        new RegExp(`belongs to table "${other.name}", not to table "${t.name}"`),
      );
      const lite = sqliteTable("lite", { id: int("id").primaryKey() });
      await expectError(
        () => createDrizzleIdSource({ db: kit.db, table: lite, column: lite.id }),
        "INVALID_ARGUMENT",
        /table "lite" is a SQLiteTable; only PostgreSQL \(pgTable\) and MySQL \(mysqlTable\) tables are supported/,
      );
      const foreign = kit.foreignTable();
      await expectError(
        () => createDrizzleIdSource({ db: kit.db, table: foreign.table, column: foreign.id }),
        "INVALID_ARGUMENT",
        /db is a (PostgreSQL|MySQL) database but table "foreign_t" is a (MySQL|PostgreSQL) table/,
      );
      await expectError(
        () => createDrizzleIdSource({ db: kit.db, table: t.table, column: t.id, where: "id > 3" as never }),
        "INVALID_ARGUMENT",
        /where must be a drizzle condition/,
      );
    });

    it("wraps a failing query in ADAPTER_ERROR naming the column, with the driver's error as cause", async () => {
      const t = await kit.createTable("integer", [1n]);
      const s = source(t);
      await kit.dropTables();
      const error = await expectError(() => s.maxId(), "ADAPTER_ERROR", new RegExp(`MAX of "${t.name}"\\."id" failed`));
      expect(error.cause).toBeInstanceOf(Error);
    });
  });

  describe("idRange and selectIdsInRange", () => {
    it("selects the ids of an inclusive range, ascending, within scope", async () => {
      const t = await kit.createTable("integer", [1n, 2n, 3n, 10n, 11n, 50n]);
      const select = (beginId: bigint, endId: bigint, where?: ReturnType<typeof sql>) =>
        selectIdsInRange({ db: kit.db, table: t.table, column: t.id, beginId, endId, where });
      expect(await select(2n, 11n)).toEqual([2n, 3n, 10n, 11n]);
      expect(await select(12n, 49n)).toEqual([]);
      expect(await select(1n, 50n, eq(t.grp, 2))).toEqual([2n, 11n, 50n]);
      expect(await kit.count(t, idRange(t.id, 3, "10"))).toBe(2);
    });

    it("accepts a range reaching past the largest value of a small column type", async () => {
      const t = await kit.createTable("smallint", [1n, 5n, 32_767n]);
      expect(await kit.count(t, idRange(t.id, 2, 2 ** 40))).toBe(2);
      expect(await kit.count(t, idRange(t.id, 40_000, 2 ** 40))).toBe(0);
      const s = createDrizzleIdSource({ db: kit.db, table: t.table, column: t.id });
      expect(await s.capabilities.countRange?.(0n, kit.maxOf("bigint"))).toBe(3n);
    });

    it("binds ids beyond 2^53 exactly, even on a number-mode column", async () => {
      const max = kit.maxOf("bigint-number");
      const t = await kit.createTable("bigint-number", [TWO_53, TWO_53 + 1n, TWO_53 + 2n, max]);
      expect(await kit.count(t, idRange(t.id, TWO_53 + 1n, TWO_53 + 1n))).toBe(1);
      expect(await kit.count(t, idRange(t.id, max, max))).toBe(1);
      expect(await selectIdsInRange({ db: kit.db, table: t.table, column: t.id, beginId: TWO_53 + 1n, endId: max })).toEqual([
        TWO_53 + 1n,
        TWO_53 + 2n,
        max,
      ]);
    });

    it("rejects ids that are not exact non-negative integers", async () => {
      const t = await kit.createTable("integer", [1n]);
      await expectError(() => idRange(t.id, 1.5, 2), "INVALID_ARGUMENT", /beginId must be a non-negative integer id/);
      await expectError(() => idRange(t.id, 1, 2 ** 60), "INVALID_ARGUMENT", /endId .*beyond 2\^53/);
      await expectError(() => idRange("id" as never, 1, 2), "INVALID_ARGUMENT", /column must be a drizzle column/);
    });
  });

  describe("batchExecute", () => {
    const touchSql = (t: TestTable) => (w: IdRange) =>
      sql`update ${t.table} set ${sql.identifier("touched")} = coalesce(${sql.identifier("touched")}, 0) + 1 where ${idRange(t.id, w.beginId, w.endId)}`;
    /** Every row touched exactly once (inclusive windows, no double processing at the edges). */
    const expectTouchedOnce = async (t: TestTable, rows: number) => {
      expect(await kit.count(t, sql`${t.touched} = 1`)).toBe(rows);
      expect(await kit.count(t)).toBe(rows);
    };

    it("goes up in inclusive windows with a SQL statement, touching every row once", async () => {
      const ids = idsBetween(5n, 104n, [6n, 50n, 51n, 99n]);
      const t = await kit.createTable("integer", ids);
      const progress: BatchProgress[] = [];
      const summary = await batchExecute({
        db: kit.db, table: t.table, column: t.id, windowSize: 7, statement: touchSql(t),
        onProgress: (p) => void progress.push(p),
      });
      await expectTouchedOnce(t, ids.length);
      expect(summary).toMatchObject({ windows: 15, ids: 100n, completed: true, resumeFrom: null });
      expectTiling(progress, 5n, 104n, "up");
      expect(progress[0]).toMatchObject({ beginId: 5n, endId: 11n, windowsDone: 1, windowsTotal: 15, idsDone: 7n, idsTotal: 100n, resumeFrom: 12n });
      expect(progress[14]).toMatchObject({ beginId: 103n, endId: 104n, windowsDone: 15, idsDone: 100n, resumeFrom: null });
    });

    it("goes down with an async callback, within given bounds", async () => {
      const t = await kit.createTable("integer", idsBetween(1n, 40n));
      const seen: bigint[] = [];
      const windows: IdRange[] = [];
      const summary = await batchExecute({
        db: kit.db, table: t.table, column: t.id, windowSize: 4n, direction: "down", beginId: 3, endId: "20",
        run: async ({ beginId, endId, signal }) => {
          expect(signal).toBeInstanceOf(AbortSignal);
          windows.push({ beginId, endId });
          seen.push(...(await selectIdsInRange({ db: kit.db, table: t.table, column: t.id, beginId, endId })));
        },
      });
      expect(windows).toEqual([
        { beginId: 17n, endId: 20n }, { beginId: 13n, endId: 16n }, { beginId: 9n, endId: 12n },
        { beginId: 5n, endId: 8n }, { beginId: 3n, endId: 4n },
      ]);
      expect([...seen].sort((a, b) => Number(a - b))).toEqual(idsBetween(3n, 20n));
      expect(summary).toMatchObject({ windows: 5, ids: 18n, completed: true, resumeFrom: null });
    });

    it("runs a query-builder statement and honours where for the bounds", async () => {
      const t = await kit.createTable("serial", idsBetween(1n, 30n));
      const windows: IdRange[] = [];
      const summary = await batchExecute({
        db: kit.db, table: t.table, column: t.id, windowSize: 10, where: eq(t.grp, 2),
        statement: (w) => {
          windows.push(w);
          return t.touchBuilder(w);
        },
      });
      // grp 2 spans ids 2..29: every row in that span is touched (the scope only narrows the bounds).
      expect(windows).toEqual([{ beginId: 2n, endId: 11n }, { beginId: 12n, endId: 21n }, { beginId: 22n, endId: 29n }]);
      expect(await kit.count(t, sql`${t.touched} = 1`)).toBe(28);
      expect(summary).toMatchObject({ windows: 3, ids: 28n, completed: true });
    });

    for (const direction of ["up", "down"] as const) {
      it(`stops cleanly on abort and resumes from resumeFrom (${direction})`, async () => {
        const ids = idsBetween(1n, 50n);
        const t = await kit.createTable("bigint", ids);
        const controller = new AbortController();
        const progress: BatchProgress[] = [];
        const first = await batchExecute({
          db: kit.db, table: t.table, column: t.id, windowSize: 6, direction, statement: touchSql(t), signal: controller.signal,
          onProgress: (p) => {
            progress.push(p);
            if (p.windowsDone === 3) controller.abort();
          },
        });
        const expectedNext = direction === "up" ? 19n : 32n;
        expect(first).toMatchObject({ windows: 3, ids: 18n, completed: false, resumeFrom: expectedNext });
        expect(progress[2]?.resumeFrom).toBe(expectedNext);
        expect(await kit.count(t, sql`${t.touched} = 1`)).toBe(18);

        const rest: BatchProgress[] = [];
        const second = await batchExecute({
          db: kit.db, table: t.table, column: t.id, windowSize: 6, direction, statement: touchSql(t),
          resumeFrom: first.resumeFrom ?? -1, onProgress: (p) => void rest.push(p),
        });
        expect(second).toMatchObject({ windows: 6, ids: 32n, completed: true, resumeFrom: null });
        expect(rest[0]).toMatchObject({ windowsTotal: 6, idsTotal: 32n });
        expectTiling([...progress, ...rest], 1n, 50n, direction);
        await expectTouchedOnce(t, ids.length);
      });
    }

    it("treats resumeFrom beyond the far bound as done and before the near bound as a fresh start", async () => {
      const t = await kit.createTable("integer", idsBetween(10n, 19n));
      const base = { db: kit.db, table: t.table, column: t.id, windowSize: 5, statement: touchSql(t) };
      expect(await batchExecute({ ...base, resumeFrom: 20 })).toMatchObject({ windows: 0, completed: true });
      expect(await batchExecute({ ...base, direction: "down", resumeFrom: 9 })).toMatchObject({ windows: 0, completed: true });
      expect(await batchExecute({ ...base, resumeFrom: 0 })).toMatchObject({ windows: 2, ids: 10n, completed: true });
      await expectTouchedOnce(t, 10);
    });

    it("pauses between windows, and an abort cuts the pause short", async () => {
      const t = await kit.createTable("integer", idsBetween(1n, 9n));
      const paused = await batchExecute({ db: kit.db, table: t.table, column: t.id, windowSize: 3, pauseMs: 40, statement: touchSql(t) });
      // Two pauses of 40 ms sit between three windows.
      expect(paused.ms).toBeGreaterThanOrEqual(79);
      expect(paused.windows).toBe(3);

      const controller = new AbortController();
      // A pause of 10 minutes: the test can only finish in time if abort wakes it.
      const stopped = await batchExecute({
        db: kit.db, table: t.table, column: t.id, windowSize: 3, pauseMs: 600_000, statement: touchSql(t), signal: controller.signal,
        onProgress: () => void setTimeout(() => controller.abort(), 20),
      });
      expect(stopped).toMatchObject({ windows: 1, completed: false, resumeFrom: 4n });
    });

    it("does nothing when already aborted or when the table is empty", async () => {
      const t = await kit.createTable("integer", idsBetween(1n, 9n));
      const aborted = await batchExecute({
        db: kit.db, table: t.table, column: t.id, windowSize: 3, statement: touchSql(t), signal: AbortSignal.abort(),
      });
      expect(aborted).toMatchObject({ windows: 0, completed: false, resumeFrom: 1n });
      const empty = await kit.createTable("integer", []);
      const none = await batchExecute({ db: kit.db, table: empty.table, column: empty.id, windowSize: 3, statement: touchSql(empty) });
      expect(none).toMatchObject({ windows: 0, ids: 0n, completed: true, resumeFrom: null });
      expect(await kit.count(t, sql`${t.touched} is not null`)).toBe(0);
    });

    it("keeps windows exact at the top of a 64-bit key", async () => {
      const max = kit.maxOf("bigint");
      const ids = [max - 4n, max - 3n, max - 1n, max];
      const t = await kit.createTable("bigint", ids);
      const windows: IdRange[] = [];
      const summary = await batchExecute({
        db: kit.db, table: t.table, column: t.id, windowSize: 2, direction: "down",
        run: async (w) => void windows.push({ beginId: w.beginId, endId: w.endId }),
      });
      expect(windows).toEqual([{ beginId: max - 1n, endId: max }, { beginId: max - 3n, endId: max - 2n }, { beginId: max - 4n, endId: max - 4n }]);
      expect(summary.ids).toBe(5n);
      const up = await batchExecute({ db: kit.db, table: t.table, column: t.id, windowSize: 3, statement: touchSql(t) });
      expect(up).toMatchObject({ windows: 2, ids: 5n, completed: true });
      await expectTouchedOnce(t, 4);
    });

    it("names the failing window and the resumeFrom that retries it", async () => {
      const t = await kit.createTable("integer", idsBetween(1n, 20n));
      const boom = new Error("boom");
      const error = await expectError(
        () =>
          batchExecute({
            db: kit.db, table: t.table, column: t.id, windowSize: 5, direction: "down",
            run: async (w) => {
              if (w.beginId === 11n) throw boom;
            },
          }),
        "ADAPTER_ERROR",
        new RegExp(`window 11\\.\\.15 of "${t.name}"\\."id" failed: boom\\. .*resumeFrom: 15n`),
      );
      expect(error.cause).toBe(boom);
    });

    it("quotes the table name: an injection-looking name runs no SQL", async () => {
      const victim = await kit.createTable("integer", [1n, 2n]);
      const quote = kit.dialect === "pg" ? '"' : "`";
      // Would drop the victim table if the name were interpolated into the SQL.
      const evil = `${randomName()}${quote}; drop table ${quote}${victim.name}${quote}; --`;
      const bare = kit.bareTable(evil);
      const error = await expectError(
        () => batchExecute({ db: kit.db, table: bare.table, column: bare.id, windowSize: 5, run: async () => {} }),
        "ADAPTER_ERROR",
        /MIN of .* failed: .*exist/,
      );
      expect(error.cause).toBeInstanceOf(Error);
      expect(await kit.count(victim)).toBe(2);
      // And a table with that very name works: the quoting is exact, not lossy.
      const weird = await kit.createTable("integer", [1n, 2n, 3n], evil);
      expect(getTableName(weird.table)).toBe(evil);
      const summary = await batchExecute({ db: kit.db, table: weird.table, column: weird.id, windowSize: 2, statement: touchSql(weird) });
      expect(summary).toMatchObject({ windows: 2, completed: true });
      await expectTouchedOnce(weird, 3);
      expect(await kit.count(victim)).toBe(2);
    });

    it("rejects bad options before touching the database", async () => {
      const t = await kit.createTable("integer", [1n]);
      const base = { db: kit.db, table: t.table, column: t.id, windowSize: 5, run: async () => {} };
      await expectError(() => batchExecute({ ...base, windowSize: 0 }), "INVALID_ARGUMENT", /windowSize must be at least 1, got 0/);
      await expectError(() => batchExecute({ ...base, windowSize: 2.5 }), "INVALID_ARGUMENT", /windowSize must be a non-negative integer/);
      await expectError(() => batchExecute({ ...base, statement: touchSql(t) }), "INVALID_ARGUMENT", /exactly one of statement .* and run/);
      await expectError(() => batchExecute({ ...base, run: undefined }), "INVALID_ARGUMENT", /exactly one of statement/);
      await expectError(() => batchExecute({ ...base, direction: "sideways" as never }), "INVALID_ARGUMENT", /direction must be "up" or "down", got "sideways"/);
      await expectError(() => batchExecute({ ...base, pauseMs: -1 }), "INVALID_ARGUMENT", /pauseMs must be a finite number/);
      await expectError(() => batchExecute({ ...base, beginId: 9, endId: 3 }), "INVALID_ARGUMENT", /endId \(3\) must be ≥ beginId \(9\)/);
      await expectError(() => batchExecute({ ...base, signal: {} as never }), "INVALID_ARGUMENT", /signal must be an AbortSignal/);
      await expectError(() => batchExecute({ ...base, column: t.others[0]! }), "INVALID_ARGUMENT", /has type/);
      const raw = { ...base, run: undefined, statement: () => `update ${t.name} set touched = 1` as never };
      await expectError(() => batchExecute(raw), "INVALID_ARGUMENT", /statement must return drizzle SQL .*, got "update/);
      expect(await kit.count(t, sql`${t.touched} is not null`)).toBe(0);
    });
  });

  describe("with the superspreader runtime", () => {
    it("backfills every row of a scoped table once, at the top of a 64-bit key", async () => {
      const max = kit.maxOf("bigint");
      const ids = idsBetween(max - 119n, max, [max - 50n, max - 51n, max - 7n]);
      const t = await kit.createTable("bigint", ids);
      const clock = createManualClock(Date.parse("2026-01-05T12:00:00Z"));
      const queue = createMemoryJobQueue({ clock });
      const spreader = createSuperSpreader({ queue, store: createMemoryStateStore(), clock });
      const inScope = sql`${t.grp} <> 0`;
      const name = randomName("bf");
      spreader.define(name, {
        source: createDrizzleIdSource({ db: kit.db, table: t.table, column: t.id, where: inScope }),
        config: { batchSize: 10, duration: 1, perSecondOnPeak: 4, perSecondOffPeak: 4 },
        async handle({ beginId, endId }) {
          await kit.db.execute(
            sql`update ${t.table} set ${sql.identifier("touched")} = coalesce(${sql.identifier("touched")}, 0) + 1 where ${and(idRange(t.id, beginId, endId), inScope)}`,
          );
        },
      });
      await spreader.start(name);
      await createMemoryWorker({ queue, spreader }).runUntilIdle(clock);
      expect((await spreader.status(name)).status).toBe("completed");
      expect((await spreader.audit(name)).complete).toBe(true);
      const scoped = ids.filter((id) => id % 3n !== 0n).length;
      expect(await kit.count(t, sql`${t.touched} = 1`)).toBe(scoped);
      expect(await kit.count(t, sql`${t.touched} is null`)).toBe(ids.length - scoped);
    });
  });
}
