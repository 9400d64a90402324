/**
 * The CLI on store-drizzle's tables (--database-url) in a real PostgreSQL and a real MariaDB: the
 * migration, reading and changing backfills whose workers keep their state there, and the flag checks.
 * The workers run in this process on the in-memory queue, their state in the test's own database.
 */
import { createMemoryIdSource, createMemoryJobQueue, createMemoryWorker, createSuperSpreader, type MemoryWorker, type SuperSpreader } from "@superspreader/core";
import { SCHEMA_VERSION, createDrizzleStateStore } from "@superspreader/store-drizzle";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../src/index.js";
import { mariadbDatabase, postgresDatabase, type TestDatabase } from "./databases.js";
import { cli, waitUntil } from "./helpers.js";

/** An app whose worker keeps its state in `db`, with one backfill. */
function workerApp(db: object, name: string, maxId: number, perSecond: number): { spreader: SuperSpreader; worker: MemoryWorker } {
  const queue = createMemoryJobQueue();
  const spreader = createSuperSpreader({ queue, store: createDrizzleStateStore({ db }) });
  spreader.define(name, {
    source: createMemoryIdSource({ minId: 1, maxId }),
    config: { batchSize: 10, duration: 1, perSecondOnPeak: perSecond, perSecondOffPeak: perSecond },
    handle: async () => {},
  });
  const worker = createMemoryWorker({ queue, spreader, concurrency: 4, watchdogIntervalMs: 100 });
  worker.start();
  return { spreader, worker };
}

let postgres: TestDatabase;
let mariadb: TestDatabase;
const workers: MemoryWorker[] = [];

beforeAll(async () => {
  [postgres, mariadb] = await Promise.all([postgresDatabase(), mariadbDatabase()]);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all([postgres?.close(), mariadb?.close()]);
});

describe("superspreader migrate", () => {
  it("creates the tables on PostgreSQL; a second run, or two at once, change nothing", async () => {
    const before = await cli(["list", "--database-url", postgres.url]);
    expect(before.code).toBe(1);
    expect(before.stderr).toContain('tables "superspreader_*" do not exist; run `superspreader migrate --database-url URL` once to create them');

    const first = await cli(["migrate", "--database-url", postgres.url]);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toBe(`created the tables "superspreader_*" in PostgreSQL at ${postgres.url} (schema version ${SCHEMA_VERSION})\n`);
    const second = await cli(["migrate", "--database-url", postgres.url]);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(`nothing to do: the tables "superspreader_*" in PostgreSQL at ${postgres.url} are already at schema version ${SCHEMA_VERSION}\n`);
    expect((await cli(["migrate", "--database-url", postgres.url, "--json"])).json()).toEqual({
      database: postgres.url,
      dialect: "PostgreSQL",
      tablePrefix: "superspreader_",
      from: SCHEMA_VERSION,
      to: SCHEMA_VERSION,
      created: false,
      changed: false,
    });
    // The store reads the migrated tables: nothing stored yet.
    const empty = await cli(["list", "--database-url", postgres.url, "--json"]);
    expect(empty.code).toBe(0);
    expect(empty.json()).toEqual({ backfills: [] });

    // Two at once (two pools: two sessions as far as the lock goes): one creates, the other finds it done.
    const both = await Promise.all([0, 1].map(() => cli(["migrate", "--database-url", postgres.url, "--table-prefix", "twice_", "--json"])));
    expect(both.map((r) => r.code)).toEqual([0, 0]);
    expect(both.map((r) => r.json().created).sort()).toEqual([false, true]);
  });

  it("takes --table-prefix (or $SUPERSPREADER_TABLE_PREFIX) and refuses tables of a newer schema", async () => {
    const created = await cli(["migrate", "--table-prefix", "bf_"], { REDIS_URL: undefined, SUPERSPREADER_DATABASE_URL: postgres.url });
    expect(created.stdout).toContain('created the tables "bf_*" in PostgreSQL');
    const again = await cli(["migrate"], { REDIS_URL: undefined, SUPERSPREADER_DATABASE_URL: postgres.url, SUPERSPREADER_TABLE_PREFIX: "bf_" });
    expect(again.stdout).toContain('nothing to do: the tables "bf_*"');

    await postgres.query("UPDATE bf_schema SET version = 99 WHERE id = 1");
    const newer = await cli(["migrate", "--database-url", postgres.url, "--table-prefix", "bf_"]);
    expect(newer.code).toBe(1);
    expect(newer.stderr).toBe(
      `superspreader: the tables "bf_*" are at schema version 99, newer than this @superspreader/store-drizzle knows (${SCHEMA_VERSION}); upgrade @superspreader/store-drizzle\n`,
    );
    const list = await cli(["list", "--database-url", postgres.url, "--table-prefix", "bf_"]);
    expect(list.code).toBe(1);
    expect(list.stderr).toContain("schema version 99, newer than");
  });

  it("creates the tables on MariaDB (mysql:// and mariadb://), once", async () => {
    const first = await cli(["migrate", "--database-url", mariadb.url]);
    expect(first.stderr).toBe("");
    expect(first.stdout).toBe(`created the tables "superspreader_*" in MySQL/MariaDB at ${mariadb.url} (schema version ${SCHEMA_VERSION})\n`);
    const second = await cli(["migrate", "--database-url", mariadb.url.replace(/^mysql:/, "mariadb:"), "--json"]);
    expect(second.code).toBe(0);
    expect(second.json()).toMatchObject({ dialect: "MySQL/MariaDB", from: SCHEMA_VERSION, to: SCHEMA_VERSION, created: false, changed: false });
  });
});

describe("a backfill whose state is in PostgreSQL", () => {
  it("list, status, pause and resume", async () => {
    const { spreader, worker } = workerApp(postgres.db, "orders", 1_000_000, 5);
    workers.push(worker);
    await spreader.start("orders");
    await waitUntil("orders to make progress", async () => (await spreader.status("orders")).progress.idsDone > 0n, 15_000);
    const db = ["--database-url", postgres.url];

    const list = await cli(["list", ...db]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^orders +running\b/m);
    const status = await cli(["status", "orders", ...db, "--json"]);
    expect(status.code).toBe(0);
    expect(status.json()).toMatchObject({ name: "orders", status: "running" });
    expect((await cli(["status", "orders", ...db])).stdout).toMatch(/^orders {2}running {2}run \w+ · cycle \d+/);

    const paused = await cli(["pause", "orders", ...db, "--reason", "database maintenance"]);
    expect(paused.stderr).toBe("");
    expect(paused.code).toBe(0);
    expect((await spreader.status("orders")).status).toBe("paused");
    expect((await cli(["list", ...db, "--json"])).json()).toMatchObject({ backfills: [{ name: "orders", status: "paused" }] });
    const idsPaused = (await spreader.status("orders")).progress.idsDone;

    const resumed = await cli(["resume", "orders", ...db, "--json"]);
    expect(resumed.code).toBe(0);
    expect(resumed.json()).toMatchObject({ previous: "paused", status: "running" });
    // Only the state was written: the worker's watchdog enqueues the tick, and the run moves on.
    await waitUntil("orders to move on after resume", async () => (await spreader.status("orders")).progress.idsDone > idsPaused, 15_000);
    const history = await cli(["config", "get", "orders", ...db, "--json"]);
    expect(history.code).toBe(0);

    const typo = await cli(["status", "ordres", ...db]);
    expect(typo.code).toBe(3);
    expect(typo.stderr).toContain("did you mean `orders`?");
  }, 60_000);

  it("superspreader dashboard --database-url serves it", async () => {
    const controller = new AbortController();
    let stderr = "";
    const io = { stdout: { write: () => true }, stderr: { write: (chunk: string) => (stderr += chunk) }, env: { USER: "ops" }, signal: controller.signal };
    const done = runCli(["dashboard", "--port", "0", "--database-url", postgres.url], io);
    await waitUntil("the dashboard's address", async () => /dashboard on http:\/\/127\.0\.0\.1:\d+\//.test(stderr), 15_000);
    const url = /dashboard on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr)?.[1] as string;
    const list = (await (await fetch(new URL("api/backfills", url))).json()) as { rows: Array<{ name: string; status: string }> };
    expect(list.rows.map((b) => [b.name, b.status])).toEqual([["orders", "running"]]);
    controller.abort();
    expect(await done).toBe(0);
  }, 30_000);
});

describe("a backfill whose state is in MariaDB", () => {
  it("list and status", async () => {
    const { spreader, worker } = workerApp(mariadb.db, "invoices", 50, 100);
    workers.push(worker);
    await spreader.start("invoices");
    await waitUntil("invoices to complete", async () => (await spreader.status("invoices")).status === "completed", 30_000);
    const db = ["--database-url", mariadb.url];
    const list = await cli(["list", ...db]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^invoices +completed\b/m);
    const status = await cli(["status", "invoices", ...db, "--json"]);
    expect(status.code).toBe(0);
    expect(status.json()).toMatchObject({ name: "invoices", status: "completed", ids: { done: "50", total: "50" } });
    expect((await cli(["status", "invoices", "--database-url", mariadb.url.replace(/^mysql:/, "mariadb:")])).stdout).toMatch(/^invoices {2}completed {2}run \w+/);
  }, 60_000);
});

describe("--database-url flag checks", () => {
  it("takes exactly one store, a known scheme and the prefix of its kind (exit 2)", async () => {
    for (const [args, env, message] of [
      [["list", "--redis-url", "redis://127.0.0.1:6379", "--database-url", "postgres://x@127.0.0.1/db"], {}, "--redis-url and --database-url name two stores: pass one of them"],
      [["list"], { REDIS_URL: undefined }, "no store to connect to: pass --redis-url redis://host:6379 or set REDIS_URL, or pass --database-url postgres://"],
      [["list"], { SUPERSPREADER_DATABASE_URL: "postgres://x@127.0.0.1/db" }, "both REDIS_URL and SUPERSPREADER_DATABASE_URL are set: pass --redis-url or --database-url"],
      [["list", "--database-url", "sqlite:///tmp/state.db"], {}, 'must be a postgres://, postgresql://, mysql:// or mariadb:// URL (e.g. postgres://user:password@host:5432/db), got "sqlite:///tmp/state.db"'],
      [["list", "--database-url", "localhost:5432"], {}, 'got "localhost:5432"'],
      [["list", "--table-prefix", "bf_"], {}, "--table-prefix applies to --database-url only (a Redis store takes --prefix)"],
      [["list", "--database-url", "postgres://x@127.0.0.1/db", "--prefix", "bf"], {}, "--prefix is the Redis store's key prefix: with --database-url, pass --table-prefix"],
      [["migrate"], {}, "migrate needs --database-url (a PostgreSQL or MySQL/MariaDB URL): a Redis store has no tables to create"],
      [["migrate", "extra", "--database-url", "__PG__"], {}, 'unexpected argument "extra": superspreader migrate --database-url URL'],
      [["list", "--database-url", "__PG__", "--table-prefix", "Bad-Prefix"], {}, 'tablePrefix must be 1–40 lower-case letters, digits or "_"'],
      [["list", "--database-ulr", "postgres://x@127.0.0.1/db"], {}, "unknown option --database-ulr: did you mean --database-url?"],
      [["migrate", "--table-prefx", "bf_"], {}, "unknown option --table-prefx: did you mean --table-prefix?"],
      [["migrat", "--database-url", "postgres://x@127.0.0.1/db"], {}, 'unknown command "migrat": did you mean `migrate`?'],
    ] as const) {
      const result = await cli(
        args.map((a) => (a === "__PG__" ? postgres.url : a)),
        env,
      );
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr, args.join(" ")).toContain(message);
      expect(result.stderr.trimEnd().split("\n"), args.join(" ")).toHaveLength(1);
    }
    // A flag wins over the other store's variable; the variable alone works too.
    expect((await cli(["list", "--database-url", postgres.url])).code).toBe(0);
    expect((await cli(["list", "--redis-url", "redis://127.0.0.1:1"], { SUPERSPREADER_DATABASE_URL: postgres.url })).stderr).toContain("cannot reach Redis");
    expect((await cli(["list", "--json"], { REDIS_URL: undefined, SUPERSPREADER_DATABASE_URL: postgres.url })).json()).toMatchObject({ backfills: [{ name: "orders" }] });
  });

  it("exits 4 with one line when the database cannot be reached", async () => {
    const pg = await cli(["list", "--database-url", "postgres://app:secret@127.0.0.1:1/app"]);
    expect(pg.code).toBe(4);
    expect(pg.stderr).toMatch(
      /^superspreader: cannot reach PostgreSQL at postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/app \(.*ECONNREFUSED.*\): check --database-url \/ SUPERSPREADER_DATABASE_URL and that the server is running\n$/,
    );
    const my = await cli(["migrate", "--json", "--database-url", "mysql://root:secret@127.0.0.1:1/app"]);
    expect(my.code).toBe(4);
    expect(JSON.parse(my.stderr)).toMatchObject({ error: { exitCode: 4, code: "DATABASE_UNREACHABLE", message: expect.stringMatching(/^cannot reach MySQL\/MariaDB at mysql:\/\/root:\*\*\*@127\.0\.0\.1:1\/app \(.*ECONNREFUSED/) } });
    expect(my.stderr).not.toContain("secret");
    // A server that is up, a database that is not.
    const missing = new URL(postgres.url);
    missing.pathname = "/no_such_database";
    const absent = await cli(["status", "orders", "--database-url", missing.toString()]);
    expect(absent.code).toBe(4);
    expect(absent.stderr).toContain('(database "no_such_database" does not exist): check --database-url');
  });

  it("is in the help", async () => {
    const help = await cli(["--help"]);
    expect(help.stdout).toMatch(/^ {2}--database-url URL +instead: the PostgreSQL/m);
    expect(help.stdout).toMatch(/^ {2}--table-prefix PREFIX +with --database-url/m);
    expect(help.stdout).toMatch(/^ {2}migrate --database-url URL +create or upgrade store-drizzle's tables/m);
    const page = await cli(["migrate", "--help"]);
    expect(page.stdout).toMatch(/^Usage: superspreader migrate --database-url URL \[--table-prefix PREFIX\]/);
  });
});
