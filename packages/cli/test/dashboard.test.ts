import { spawn } from "node:child_process";
import { createMemoryIdSource, createMemoryJobQueue, createSuperSpreader } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_DIR, redisUrl, unique } from "./helpers.js";

const client = new Redis(redisUrl(), { maxRetriesPerRequest: null });
afterAll(() => client.disconnect());

describe("superspreader dashboard", () => {
  it("serves the page and the API of the store, read-only by default, and exits 0 on SIGINT", async () => {
    const prefix = unique("cli-dash");
    const spreader = createSuperSpreader({ queue: createMemoryJobQueue(), store: createRedisStateStore({ client, prefix }) });
    spreader.define("orders", {
      source: createMemoryIdSource({ minId: 1, maxId: 1_000 }),
      config: { batchSize: 10, duration: 1, perSecondOnPeak: 1, perSecondOffPeak: 1 },
      handle: async () => {},
    });
    await spreader.start("orders");

    const child = spawn(process.execPath, ["--import", "tsx", "--conditions", "@superspreader/source", "src/cli.ts", "dashboard", "--port", "0", "--redis-url", redisUrl(), "--prefix", prefix], {
      cwd: PACKAGE_DIR,
      env: { PATH: process.env.PATH ?? "", USER: "ops" },
    });
    let stderr = "";
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no address within 30 s: ${stderr}`)), 30_000);
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /dashboard on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
    });
    expect(stderr).toContain("(read-only; --allow-control turns the controls on)");
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toMatch(/^default-src 'none'; script-src 'self'/);
    const list = (await (await fetch(new URL("api/backfills", url))).json()) as { rows: Array<{ name: string; status: string }> };
    expect(list.rows.map((b) => [b.name, b.status])).toEqual([["orders", "running"]]);
    // Read-only: a same-origin change is refused without --allow-control.
    const pause = await fetch(new URL("api/backfills/orders/pause", url), { method: "POST", headers: { "sec-fetch-site": "same-origin", "content-type": "application/json" }, body: "{}" });
    expect(pause.status).toBe(403);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect((await spreader.status("orders")).status).toBe("running");
  }, 60_000);
});
