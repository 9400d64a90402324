import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { Redis } from "ioredis";
import pg from "pg";
import { afterEach, describe, expect, it, vi } from "vitest";
import { runReal } from "../src/real.js";

/** The test servers' URLs; a missing one fails the test rather than skipping it. */
function url(name: "SUPERSPREADER_PG_URL" | "SUPERSPREADER_REDIS_URL"): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run through the root vitest config with SUPERSPREADER_SERVERS=redis,postgres`);
  return value;
}

async function exampleKeys(redisUrl: string): Promise<string[]> {
  const redis = new Redis(redisUrl);
  try {
    const [store, queue] = await Promise.all([redis.keys("superspreader-example-*"), redis.keys("bull:superspreader-example-*")]);
    return [...store, ...queue];
  } finally {
    await redis.quit();
  }
}

/** True when something accepts TCP connections on the URL's port. */
function listening(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("runReal", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("runs the backfill on PostgreSQL, Redis and BullMQ with 2 worker processes and verifies every row", async () => {
    const databaseUrl = url("SUPERSPREADER_PG_URL");
    const redisUrl = url("SUPERSPREADER_REDIS_URL");
    const table = `accounts_real_${randomBytes(4).toString("hex")}`;
    const chunks: string[] = [];
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
    try {
      const summary = await runReal({
        rows: 6_000,
        batchSize: 300,
        perSecond: 20,
        duration: 1,
        workers: 2,
        concurrency: 2,
        databaseUrl,
        redisUrl,
        table,
        output: { write: (text: string) => chunks.push(text) },
        progress: "lines",
      });
      expect(summary).toMatchObject({
        verified: true,
        status: "completed",
        rows: 6_000,
        wrongRows: 0,
        batches: 20,
        batchesFailed: 0,
        gaps: [],
        configuredRowsPerSecond: 6_000,
      });
      // Both processes report; together they ran every batch (a range may run twice: at-least-once).
      expect(summary.workerBatches).toHaveLength(2);
      expect(summary.workerBatches.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(20);
      expect(summary.rowsWritten).toBe(6_000);
      const text = chunks.join("");
      expect(text).toContain("Starting 2 worker processes");
      expect(text).toContain("Verified: all 6,000 rows are normalised and checksummed");
      expect(text).not.toContain("Started PostgreSQL");

      // The table stays for inspection; the run's Redis keys are gone.
      const { rows } = await pool.query<{ n: string }>(`select count(*) as n from "${table}" where email_md5 = md5(email_normalized)`);
      expect(rows[0]?.n).toBe("6000");
      expect(await exampleKeys(redisUrl)).toEqual([]);
    } finally {
      await pool.query(`drop table if exists "${table}"`);
      await pool.end();
    }
  }, 120_000);

  it("starts its own PostgreSQL and redis-server when given no URL, and stops them", async () => {
    // Empty counts as unset, whatever the machine's environment holds.
    vi.stubEnv("DATABASE_URL", "");
    vi.stubEnv("REDIS_URL", "");
    const chunks: string[] = [];
    const summary = await runReal({
      rows: 2_000,
      batchSize: 200,
      perSecond: 20,
      duration: 1,
      workers: 1,
      output: { write: (text: string) => chunks.push(text) },
      progress: "off",
    });
    expect(summary).toMatchObject({ verified: true, rows: 2_000, batches: 10, gaps: [], workerBatches: [10] });
    const text = chunks.join("");
    const postgres = /Started PostgreSQL on (\S+)/.exec(text)?.[1];
    const redis = /Started redis-server on (\S+)/.exec(text)?.[1];
    expect(postgres).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    expect(redis).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(await listening(postgres as string)).toBe(false);
    expect(await listening(redis as string)).toBe(false);
  }, 120_000);

  it("rejects bad options before starting anything", async () => {
    await expect(runReal({ workers: 0, databaseUrl: "postgres://unused", redisUrl: "redis://unused" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      field: "workers",
    });
  });
});
