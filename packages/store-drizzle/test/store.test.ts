import { sql } from "drizzle-orm";
import type { SQL } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCHEMA_VERSION, createDrizzleStateStore, migrateStateStore } from "../src/index.js";
import { KIT_NAMES, OPENERS, randomName, type Kit, type KitName } from "./kits.js";

const kits: Partial<Record<KitName, Kit>> = {};
beforeAll(async () => {
  await Promise.all(
    KIT_NAMES.map(async (name) => {
      kits[name] = await OPENERS[name]();
    }),
  );
}, 60_000);
afterAll(async () => {
  await Promise.all(Object.values(kits).map((kit) => kit.close()));
});

/** Every column of the prefix's tables, and the schema row: what a migration could change. */
async function snapshot(kit: Kit, prefix: string): Promise<unknown> {
  const where =
    kit.dialect === "pg"
      ? `table_schema = current_schema() AND table_name LIKE '${prefix}%'`
      : `table_schema = database() AND table_name LIKE '${prefix}%'`;
  const columns = await kit.query(
    `SELECT table_name AS t, column_name AS c, data_type AS d, is_nullable AS n FROM information_schema.columns WHERE ${where} ORDER BY table_name, column_name`,
  );
  const version = await kit.query(`SELECT id, version FROM ${prefix}schema`);
  return { columns: columns.map((r) => Object.values(r).map(String).join(" ")), version: version.map((r) => `${r.id}:${r.version}`) };
}

/** What the tests do with the transaction a store hands to work. */
type Exec = { execute(query: SQL): PromiseLike<unknown> };

const prefix = (): string => `${randomName("t")}_`;

for (const name of KIT_NAMES) {
  describe(`store-drizzle on ${name}`, () => {
    const kit = () => kits[name]!;

    describe("migrateStateStore", () => {
      it("creates the tables once; a second run changes nothing", async () => {
        const p = prefix();
        expect(await migrateStateStore(kit().db, { tablePrefix: p })).toEqual({ from: 0, to: SCHEMA_VERSION });
        const before = await snapshot(kit(), p);
        expect((before as { columns: string[] }).columns.length).toBeGreaterThan(50);
        expect(await migrateStateStore(kit().db, { tablePrefix: p })).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
        expect(await snapshot(kit(), p)).toEqual(before);
      });

      it("is safe from two connections at once: one migrates, the other finds nothing to do", async () => {
        const p = prefix();
        const other = await kit().second();
        try {
          const results = await Promise.all([migrateStateStore(kit().db, { tablePrefix: p }), migrateStateStore(other.db, { tablePrefix: p })]);
          expect(results.map((r) => r.from).sort()).toEqual([0, SCHEMA_VERSION]);
          const reference = prefix();
          await migrateStateStore(kit().db, { tablePrefix: reference });
          const strip = (s: unknown, q: string) => JSON.stringify(s).replaceAll(q, "P_");
          expect(strip(await snapshot(kit(), p), p)).toEqual(strip(await snapshot(kit(), reference), reference));
        } finally {
          await other.close();
        }
      });

      it("refuses tables of a newer schema version, naming it, in the migration and in the store", async () => {
        const p = prefix();
        await migrateStateStore(kit().db, { tablePrefix: p });
        await kit().query(`UPDATE ${p}schema SET version = 99`);
        await expect(migrateStateStore(kit().db, { tablePrefix: p })).rejects.toThrow(new RegExp(`schema version 99, newer than .*\\(${SCHEMA_VERSION}\\)`));
        const store = createDrizzleStateStore({ db: kit().db, tablePrefix: p });
        await expect(store.get("x")).rejects.toMatchObject({ code: "INVALID_STATE", message: expect.stringMatching(/version 99/) });
      });

      it("upgrades tables of version 1 to 2 (collected output), keeping their rows; a step cut short runs again", async () => {
        const p = prefix();
        await migrateStateStore(kit().db, { tablePrefix: p });
        const before = createDrizzleStateStore({ db: kit().db, tablePrefix: p });
        expect(await before.compareAndSet("kept", 0, { written: "by version 1" })).toBe(1);
        await before.markDone("kept", "r1", { beginId: 1n, endId: 10n, cycle: 0 }, 1_000);
        // Back to what version 1 created, with version 2's first table already there (a migration cut short on MySQL).
        await kit().query(`DROP TABLE ${p}output`);
        await kit().query(`UPDATE ${p}schema SET version = 1`);
        expect(await migrateStateStore(kit().db, { tablePrefix: p })).toEqual({ from: 1, to: 2 });
        expect(await migrateStateStore(kit().db, { tablePrefix: p })).toEqual({ from: 2, to: 2 });
        const after = createDrizzleStateStore({ db: kit().db, tablePrefix: p });
        expect(await after.get("kept")).toEqual({ version: 1, value: { written: "by version 1" } });
        expect(await after.listDone("kept", "r1")).toEqual([{ beginId: 1n, endId: 10n }]);
        expect(await after.addOutput("kept", "r1", { beginId: 1n, endId: 10n, at: 1_000, result: "3" }, 100)).toBe("added");
        expect((await after.listOutput("kept", "r1", 0, 10)).entries).toEqual([{ beginId: 1n, endId: 10n, at: 1_000, result: "3" }]);
      });

      it("is never implicit: a store on missing tables says to call migrateStateStore, and works once it ran", async () => {
        const p = prefix();
        const store = createDrizzleStateStore({ db: kit().db, tablePrefix: p });
        await expect(store.compareAndSet("bf", 0, { a: 1 })).rejects.toMatchObject({
          code: "INVALID_STATE",
          message: expect.stringContaining(`call migrateStateStore(db, { tablePrefix: "${p}" })`),
        });
        await migrateStateStore(kit().db, { tablePrefix: p });
        expect(await store.compareAndSet("bf", 0, { a: 1 })).toBe(1);
      });
    });

    describe("capabilities.transactions.runRange", () => {
      let items: string;
      const p = prefix();
      beforeAll(async () => {
        await migrateStateStore(kit().db, { tablePrefix: p });
        items = randomName("items");
        await kit().query(`CREATE TABLE ${items} (id INTEGER NOT NULL PRIMARY KEY, n INTEGER NOT NULL)`);
      });
      const rows = async (): Promise<Array<[number, number]>> =>
        (await kit().query(`SELECT id, n FROM ${items} ORDER BY id`)).map((r) => [Number(r.id), Number(r.n)]);
      const store = () => createDrizzleStateStore({ db: kit().db, tablePrefix: p });
      const timing = { handlerMs: 3, lateMs: 1 };

      it("commits the work with the range's record, and runs a repeat's work never", async () => {
        const s = store();
        const bf = randomName("bf");
        const entry = { beginId: 1n, endId: 10n, cycle: 0 };
        await s.addOutstanding(bf, "r", [{ ...entry, checkAt: 1 }]);
        await s.recordFailure(bf, "r", 1_000);
        const first = await s.capabilities.transactions.runRange(bf, "r", entry, async (tx: Exec) => {
          await tx.execute(sql`INSERT INTO ${sql.identifier(items)} (id, n) VALUES (1, 1)`);
          return timing;
        }, () => 2_000);
        expect(first).toEqual({ committed: true, alreadyDone: false });
        expect(await rows()).toEqual([[1, 1]]);
        expect(await s.listDone(bf, "r")).toEqual([{ beginId: 1n, endId: 10n }]);
        expect(await s.listOutstanding(bf, "r", 10, 10)).toEqual([]);
        expect(await s.metrics(bf, "r")).toMatchObject({ batchesDone: 1, idsDone: "10", consecutiveFailures: 0, lastDoneAt: 2_000 });
        expect((await s.metrics(bf, "r")).recent).toEqual([{ minute: 0, ids: "10", batches: 1, failures: 1, handlerMs: 3, lateMs: 1 }]);
        let called = false;
        const again = await s.capabilities.transactions.runRange(bf, "r", { beginId: 2n, endId: 5n, cycle: 3 }, async () => {
          called = true;
          return timing;
        }, () => 3_000);
        expect(again).toEqual({ committed: false, alreadyDone: true });
        expect(called).toBe(false);
        expect((await s.metrics(bf, "r")).batchesDone).toBe(1);
      });

      it("rolls back the work and records nothing when the work throws, rethrowing its error", async () => {
        const s = store();
        const bf = randomName("bf");
        const boom = new Error("handler failed");
        await expect(
          s.capabilities.transactions.runRange(bf, "r", { beginId: 100n, endId: 110n, cycle: 0 }, async (tx: Exec) => {
            await tx.execute(sql`INSERT INTO ${sql.identifier(items)} (id, n) VALUES (100, 1)`);
            throw boom;
          }, () => 1),
        ).rejects.toBe(boom);
        expect((await rows()).filter(([id]) => id === 100)).toEqual([]);
        expect(await s.listDone(bf, "r")).toEqual([]);
        // The claim went with the rollback: the range can run again.
        const retry = await s.capabilities.transactions.runRange(bf, "r", { beginId: 100n, endId: 110n, cycle: 0 }, async (tx: Exec) => {
          await tx.execute(sql`INSERT INTO ${sql.identifier(items)} (id, n) VALUES (100, 2)`);
          return timing;
        }, () => 1);
        expect(retry.committed).toBe(true);
        expect((await rows()).filter(([id]) => id === 100)).toEqual([[100, 2]]);
      });

      it("lets exactly one of two concurrent deliveries of a range run its work; the other waits and finds it done", async () => {
        const s = store();
        const bf = randomName("bf");
        const entry = { beginId: 200n, endId: 210n, cycle: 0 };
        let runs = 0;
        const work = async (tx: Exec) => {
          runs += 1;
          await tx.execute(sql`INSERT INTO ${sql.identifier(items)} (id, n) VALUES (200, 1)`);
          await new Promise((r) => setTimeout(r, 150));
          return timing;
        };
        const results = await Promise.all([1, 2].map(() => s.capabilities.transactions.runRange(bf, "r", entry, work, () => 5)));
        expect(results.map((r) => r.committed).sort()).toEqual([false, true]);
        expect(results.filter((r) => r.alreadyDone)).toHaveLength(1);
        expect(runs).toBe(1);
        expect((await rows()).filter(([id]) => id === 200)).toEqual([[200, 1]]);
        expect((await s.metrics(bf, "r")).batchesDone).toBe(1);
      });

      it("rolls the work back when a plain markDone recorded the range meanwhile", async () => {
        const s = store();
        const bf = randomName("bf");
        const entry = { beginId: 300n, endId: 310n, cycle: 0 };
        const result = await s.capabilities.transactions.runRange(bf, "r", entry, async (tx: Exec) => {
          await tx.execute(sql`INSERT INTO ${sql.identifier(items)} (id, n) VALUES (300, 1)`);
          // Another connection records the range (a plain, non-transactional delivery).
          if (name !== "pglite") await store().markDone(bf, "r", entry, 1);
          return timing;
        }, () => 2);
        if (name === "pglite") {
          // One connection: the plain markDone could only run after this transaction.
          expect(result.committed).toBe(true);
        } else {
          expect(result).toEqual({ committed: false, alreadyDone: true });
          expect((await rows()).filter(([id]) => id === 300)).toEqual([]);
        }
      });
    });

    it("counts the statements of the per-batch hot paths", async () => {
      const p = prefix();
      await migrateStateStore(kit().db, { tablePrefix: p });
      const { db, statements } = kit().counted();
      const s = createDrizzleStateStore({ db, tablePrefix: p });
      const bf = randomName("bf");
      await s.compareAndSet(bf, 0, { n: 1 });
      await s.setStartRate(bf, "r", 100, 1, 0);
      await s.markDone(bf, "r", { beginId: 1n, endId: 10n, cycle: 0 }, 60_000);
      const measure = async (action: () => Promise<unknown>): Promise<number> => {
        statements.length = 0;
        await action();
        return statements.length;
      };
      const counts = {
        readForStart: await measure(() => s.readForStart(bf, "r", 70_000)),
        markDone: await measure(async () => {
          await s.addOutstanding(bf, "r", [{ beginId: 11n, endId: 20n, cycle: 0, checkAt: 1 }]);
          statements.length = 0;
          await s.markDone(bf, "r", { beginId: 11n, endId: 20n, cycle: 0 }, 60_500, { handlerMs: 1, lateMs: 0 });
        }),
        markDoneRepeat: await measure(() => s.markDone(bf, "r", { beginId: 11n, endId: 20n, cycle: 0 }, 61_000)),
      };
      // PGlite's transactions are BEGIN and COMMIT inside PGlite, which drizzle's logger does not see.
      const hidden = name === "pglite" ? 2 : 0;
      console.log(`${name}: statements per call, BEGIN/COMMIT included`, {
        readForStart: counts.readForStart,
        markDone: counts.markDone + hidden,
        markDoneRepeat: counts.markDoneRepeat + hidden,
      });
      // PostgreSQL: one statement; MySQL: BEGIN, UPDATE, SELECT, COMMIT.
      expect(counts.readForStart).toBe(kit().dialect === "pg" ? 1 : 4);
      // PostgreSQL: BEGIN, lock, read, one write statement, COMMIT. MySQL: SET TRANSACTION, BEGIN, lock, read, 4 writes, COMMIT.
      expect(counts.markDone + hidden).toBe(kit().dialect === "pg" ? 5 : 9);
      expect(counts.markDoneRepeat + hidden).toBe(kit().dialect === "pg" ? 4 : 5);
    });
  });
}

describe("options", () => {
  it("names the field and the value of a bad option", async () => {
    const db = kits.pglite!.db;
    expect(() => createDrizzleStateStore(null as never)).toThrow(/options must be an object with a db, got null/);
    expect(() => createDrizzleStateStore({ db: 42 as never })).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT", field: "db", message: expect.stringContaining("got 42") }));
    expect(() => createDrizzleStateStore({ db: { execute() {}, transaction() {} } })).toThrow(expect.objectContaining({ field: "db", message: expect.stringContaining('pass dialect: "pg" or "mysql"') }));
    expect(() => createDrizzleStateStore({ db, tablePrefix: "Bad-Prefix" })).toThrow(
      expect.objectContaining({ field: "tablePrefix", message: expect.stringContaining('got "Bad-Prefix"') }),
    );
    expect(() => createDrizzleStateStore({ db, dialect: "oracle" as never })).toThrow(
      expect.objectContaining({ field: "dialect", message: expect.stringContaining('got "oracle"') }),
    );
    await expect(migrateStateStore(db, { tablePrefix: 5 as never })).rejects.toMatchObject({ field: "tablePrefix", message: expect.stringContaining("got 5") });
    await expect(migrateStateStore("postgres://x")).rejects.toMatchObject({ field: "db", message: expect.stringContaining('got "postgres://x"') });
  });

  it("refuses calls after close, and a bad work function before any statement", async () => {
    const p = prefix();
    await migrateStateStore(kits.pglite!.db, { tablePrefix: p });
    const store = createDrizzleStateStore({ db: kits.pglite!.db, tablePrefix: p });
    await expect(store.capabilities.transactions.runRange("bf", "r", { beginId: 1n, endId: 2n, cycle: 0 }, "no" as never, () => 1)).rejects.toMatchObject({ field: "work" });
    await store.close();
    await store.close();
    await expect(store.get("bf")).rejects.toMatchObject({ code: "INVALID_STATE", message: expect.stringContaining("was closed") });
  });
});
