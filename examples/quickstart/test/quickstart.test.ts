import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { countReencrypted, createDatabase, plainTexts, redisDatabase, run, start, waitUntil, wrongRows } from "./harness.js";
import type { TestDatabase, TestRedis } from "./harness.js";

const EXAMPLE = fileURLToPath(new URL("..", import.meta.url));
/** The example's TypeScript, as `pnpm start` runs it: workspace packages from their sources. */
const TSX = ["--import", "tsx", "--conditions", "@superspreader/source"];
/** The Redis database of this test (see redisDatabase); the release test uses others. */
const REDIS_DB = 1;

describe("examples/quickstart on PostgreSQL, Redis and BullMQ", () => {
  let database: TestDatabase | undefined;
  let redis: TestRedis | undefined;
  afterEach(async () => {
    await database?.drop();
    await redis?.flush();
  });

  it("re-encrypts every row; SIGTERM stops it gracefully mid-run and the next start finishes the job", async () => {
    database = await createDatabase("quickstart");
    redis = await redisDatabase(REDIS_DB);
    const env = { DATABASE_URL: database.url, REDIS_URL: redis.url };
    // 30 batches of 70 at 7.5/s (3/s on peak in Los Angeles): 4 to 10 s of work.
    await run(process.execPath, [...TSX, "src/seed.ts", "2100"], { cwd: EXAMPLE, env, timeoutMs: 60_000 });
    const before = await plainTexts(database.url);
    expect(before.size).toBe(2100);

    const first = start(process.execPath, [...TSX, "src/main.ts"], { cwd: EXAMPLE, env });
    const url = database.url;
    await waitUntil("the first batch is done", async () => (await countReencrypted(url)) >= 70, 60_000, first);
    first.child.kill("SIGTERM");
    const stoppedAt = Date.now();
    const { code, signal } = await first.exited;
    expect({ code, signal, output: first.output() }).toMatchObject({ code: 0, signal: null });
    // Graceful: running batches were handed back at once, not waited for up to the shutdown timeout.
    expect(Date.now() - stoppedAt).toBeLessThan(10_000);
    expect(first.output()).toContain("reencrypt-messages: running, 0 of 2100 ids done");
    // No stack trace: an aborted batch is handed back, not reported as a failure.
    expect(first.output()).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    const done = await countReencrypted(database.url);
    expect(done).toBeLessThan(2100);

    // Started again, it carries on with the same run (no second chain) and exits when the run completes.
    const output = await run(process.execPath, [...TSX, "src/main.ts"], { cwd: EXAMPLE, env, timeoutMs: 90_000 });
    expect(output).toMatch(/reencrypt-messages: running, \d+ of 2100 ids done/);
    expect(output).toContain("reencrypt-messages: completed");
    expect(await wrongRows(database.url, before)).toEqual([]);

    // A third start of the completed backfill is a no-op that exits at once.
    const again = await run(process.execPath, [...TSX, "src/main.ts"], { cwd: EXAMPLE, env, timeoutMs: 60_000 });
    expect(again).toContain("reencrypt-messages: completed, 2100 of 2100 ids done");
  }, 180_000);
});
