import { execFile } from "node:child_process";
import { createMemoryIdSource, createMemoryJobQueue, createSuperSpreader } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_DIR, redisUrl, unique } from "./helpers.js";

/**
 * Runs the real bin in a child process, through tsx with workspace packages resolved to their sources
 * (no build needed); a process of its own shows it exits by itself, even with a --config module's
 * connections open.
 */
function bin(args: readonly string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--conditions", "@superspreader/source", "src/cli.ts", ...args],
      { cwd: PACKAGE_DIR, env: { PATH: process.env.PATH ?? "", ...env }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const client = new Redis(redisUrl());
afterAll(() => client.disconnect());

describe("the superspreader bin", () => {
  it("runs as a process: JSON output, exit codes, and a TypeScript --config module", async () => {
    const prefix = unique("cli-bin");
    // State for the bin to read: a started backfill (its queue is in memory; no worker needed).
    const spreader = createSuperSpreader({ queue: createMemoryJobQueue(), store: createRedisStateStore({ client, prefix }) });
    spreader.define("demo", {
      source: createMemoryIdSource({ minId: 1, maxId: 500 }),
      config: { batchSize: 50, duration: 10, perSecondOnPeak: 1, perSecondOffPeak: 1 },
      handle: async () => {},
    });
    await spreader.start("demo");
    const env = { REDIS_URL: redisUrl(), SUPERSPREADER_PREFIX: prefix };

    const status = await bin(["status", "demo", "--json"], env);
    expect(status.stderr).toBe("");
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ name: "demo", status: "running", ids: { total: "500", done: "0" } });

    const missing = await bin(["status", "missing"], env);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('backfill "missing" not found');

    const viaConfig = await bin(["list", "--json", "--config", "test/fixtures/app.ts"], {
      SUPERSPREADER_REDIS_URL: redisUrl(),
      CLI_TEST_PREFIX: prefix,
      CLI_TEST_QUEUE: unique("cli-bin-q"),
    });
    expect(viaConfig.code).toBe(0);
    expect(JSON.parse(viaConfig.stdout).backfills).toEqual([expect.objectContaining({ name: "demo", status: "running" })]);
  }, 60_000);
});
