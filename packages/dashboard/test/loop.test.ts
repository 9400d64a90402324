/**
 * The closed loop in the dashboard's API (issue #9): rows carry the rate in force under the configured
 * ceiling, the tuned batch size, autotune's share, health, a deadline and a shared budget; `pin` holds the
 * rate or batch size. Redis store, in-memory queue and worker in this process.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createMemoryIdSource, createMemoryJobQueue, createMemoryWorker, createSuperSpreader, type MemoryWorker, type StateStore, type SuperSpreader } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDashboard, toNodeListener, type Dashboard, type WireList, type WireProblem, type WireRow, type WireSession } from "../src/index.js";
import { connect, listen, unique, waitUntil, type TestServer } from "./helpers.js";

/** 1,000,000 ids at 5 batches of 10 a second: runs for the whole file. */
const STEADY = { batchSize: 10, duration: 1, perSecondOnPeak: 5, perSecondOffPeak: 5 };
const HOUR = 3_600_000;
const DEADLINE = Date.now() + 30 * 24 * HOUR;

describe("the closed loop in the API", () => {
  let redis: Redis;
  let store: StateStore;
  let spreader: SuperSpreader;
  let worker: MemoryWorker;
  let server: TestServer;
  const dashboards: Dashboard[] = [];

  beforeAll(async () => {
    redis = connect();
    store = createRedisStateStore({ client: redis, prefix: unique("dash-loop") });
    const queue = createMemoryJobQueue();
    spreader = createSuperSpreader({ queue, store });
    const define = (name: string, config: Record<string, unknown>, health?: Parameters<SuperSpreader["define"]>[1]["health"]) =>
      spreader.define(name, { source: createMemoryIdSource({ minId: 1n, maxId: 1_000_000n }), config: { ...STEADY, ...config }, handle: async () => {}, ...(health ? { health } : {}) });
    define("tuned", { autotune: {}, finishBy: DEADLINE });
    define("shareA", { budget: { key: "orders-db", perSecond: 4, weight: 1 } });
    define("shareB", { budget: { key: "orders-db", perSecond: 4, weight: 3 } });
    define("slowed", { autotune: {} }, [async () => ({ level: "slow", reason: "replica lag 2.3 s > 1.5 s", value: 2.3 })]);
    define("plain", {});
    worker = createMemoryWorker({ queue, spreader, concurrency: 4 });
    worker.start();
    for (const name of ["tuned", "shareA", "shareB", "slowed", "plain"]) await spreader.start(name, { actor: "setup" });

    const mount = (basePath: string, options: Partial<Parameters<typeof createDashboard>[0]> = {}) => {
      const dashboard = createDashboard({ spreader, store, basePath, refreshMs: 200, ...options });
      dashboards.push(dashboard);
      return { basePath, listener: toNodeListener(dashboard) };
    };
    const mounts = [mount("/full", { authorize: () => ({ actor: "tester" }) }), mount("/ro"), mount("/viewer", { authorize: (_request, action) => action === "view" })];
    server = await listen((req: IncomingMessage, res: ServerResponse) => {
      const m = mounts.find((x) => req.url?.startsWith(`${x.basePath}/`));
      if (m) m.listener(req, res);
      else res.writeHead(404).end();
    });
  });

  afterAll(async () => {
    for (const d of dashboards) await d.close();
    await server.close();
    await worker.stop();
    await store.close();
    redis.disconnect();
  });

  const call = (method: string, path: string, options: { body?: unknown; etag?: string | null } = {}) =>
    fetch(`${server.origin}${path}`, {
      method,
      headers: { origin: server.origin, ...(options.body === undefined ? {} : { "content-type": "application/json" }), ...(options.etag ? { "if-match": `"${options.etag}"` } : {}) },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  const rows = async (base = "/full") => {
    const list = (await (await call("GET", `${base}/api/backfills`)).json()) as WireList;
    return Object.fromEntries(list.rows.filter((r): r is WireRow => r.readable).map((r) => [r.name, r]));
  };
  const rowOf = async (name: string) => (await rows())[name] as WireRow;

  it("sends the rate in force under the configured ceiling, autotune's share, the batch sizes and the deadline", async () => {
    await waitUntil("tuned's deadline to be planned", async () => (await spreader.status("tuned")).control?.deadline?.finishAt != null, 20_000);
    const tuned = await rowOf("tuned");
    expect(tuned.rate.configured).toEqual({ perSecond: 5, batchSize: 10, idsPerSecond: 50 });
    // 100,000 batches in 30 days: deadline mode runs far under the ceiling.
    expect(tuned.rate.perSecond).toBeGreaterThan(0);
    expect(tuned.rate.perSecond).toBeLessThan(5);
    expect(tuned.rate.idsPerSecond).toBeCloseTo(tuned.rate.perSecond * tuned.rate.batchSize, 9);
    expect(tuned.control).toMatchObject({
      ceiling: 5,
      perSecond: tuned.rate.perSecond,
      autotuneShare: expect.any(Number),
      configuredBatchSize: 10,
      pins: { perSecond: null, batchSize: null },
      health: { state: "clear", reason: null },
      budget: null,
      deadline: { finishBy: DEADLINE, feasible: true, needs: null },
    });
    expect(tuned.control!.summary).toMatch(/^deadline \S+: on pace \(/);
    expect(tuned.control!.deadline!.share).toBeLessThan(1);
    expect(tuned.control!.deadline!.finishAt).toBeLessThanOrEqual(DEADLINE);

    const plain = await rowOf("plain");
    expect(plain.control).toBeNull();
    expect(plain.rate).toMatchObject({ perSecond: 5, batchSize: 10, idsPerSecond: 50, configured: { perSecond: 5, batchSize: 10, idsPerSecond: 50 } });
  });

  it("sends a health indicator saying slow, and a shared budget with each member's weight and share", async () => {
    await waitUntil("slowed to be throttled", async () => (await spreader.status("slowed")).control?.reason?.includes("replica lag") === true, 20_000);
    const slowed = await rowOf("slowed");
    expect(slowed.control!.health).toEqual({ state: "slow", reason: "replica lag 2.3 s > 1.5 s" });
    expect(slowed.control!.autotuneShare).toBeLessThan(1);
    expect(slowed.rate.perSecond).toBeLessThan(slowed.rate.configured.perSecond);

    await waitUntil("the weighted split of the budget", async () => {
      const [a, b] = [(await spreader.status("shareA")).control?.budget?.cap, (await spreader.status("shareB")).control?.budget?.cap];
      return a != null && b != null && b > a;
    }, 20_000);
    const all = await rows();
    const a = all.shareA!.control!.budget!;
    const b = all.shareB!.control!.budget!;
    expect(a).toMatchObject({ key: "orders-db", perSecond: 4, weight: 1 });
    expect(b).toMatchObject({ key: "orders-db", perSecond: 4, weight: 3 });
    expect(a.cap! + b.cap!).toBeLessThanOrEqual(4 + 1e-9);
    expect(a.share).toBeCloseTo(a.cap! / 4, 9);
    expect(b.share).toBeCloseTo(b.cap! / 4, 9);
  });

  it("pins and unpins the rate and batch size, answering the row with its new version", async () => {
    const session = (await (await call("GET", "/full/api/session")).json()) as WireSession;
    expect(session.features.pin).toBe(true);
    const before = await rowOf("plain");
    const pinned = await call("POST", "/full/api/backfills/plain/pin", { body: { perSecond: 2, batchSize: 25, reason: "incident 4711" }, etag: before.etag });
    expect(pinned.status).toBe(200);
    const { row } = (await pinned.json()) as { row: WireRow };
    expect(pinned.headers.get("etag")).toBe(`"${row.etag}"`);
    expect(row.etag).not.toBe(before.etag);
    expect(row.control).toMatchObject({ pins: { perSecond: 2, batchSize: 25 }, perSecond: 2, batchSize: 25, ceiling: 5 });
    expect(row.rate).toMatchObject({ perSecond: 2, batchSize: 25, idsPerSecond: 50, configured: { perSecond: 5, batchSize: 10 } });
    const [change] = await store.listConfigChanges("plain", 1);
    expect(change).toMatchObject({ actor: "tester", reason: "incident 4711", changes: { "pin.perSecond": { from: null, to: 2 }, "pin.batchSize": { from: null, to: 25 } } });

    const unpinned = await call("POST", "/full/api/backfills/plain/pin", { body: { perSecond: null }, etag: row.etag });
    expect(unpinned.status).toBe(200);
    expect(((await unpinned.json()) as { row: WireRow }).row.control!.pins).toEqual({ perSecond: null, batchSize: 25 });
    expect((await spreader.status("plain")).control?.pins).toEqual({ perSecond: null, batchSize: 25 });
  });

  it("refuses bad pins naming the field and value, stale versions, and viewers who may not edit", async () => {
    const row = await rowOf("plain");
    for (const [body, field, detail] of [
      [{ perSecond: -1 }, "perSecond", "values.perSecond must be a finite number of batches per second ≥ 0, or null to unpin, got -1"],
      [{ batchSize: 2.5 }, "batchSize", "values.batchSize must be a whole number ≥ 1, or null to unpin, got 2.5"],
      [{ perSecond: 6 }, "perSecond", "values.perSecond 6 is above the configured rates (perSecondOnPeak 5, perSecondOffPeak 5)"],
      [{ duration: 3 }, "duration", "duration cannot be pinned (expected perSecond or batchSize)"],
      [{ reason: "nothing" }, "perSecond", "nothing to pin: send perSecond or batchSize"],
    ] as const) {
      const response = await call("POST", "/full/api/backfills/plain/pin", { body, etag: row.etag });
      expect(response.status, JSON.stringify(body)).toBe(422);
      const problem = (await response.json()) as WireProblem;
      expect(problem.field, JSON.stringify(body)).toBe(field);
      expect(problem.detail).toContain(detail);
    }
    expect((await call("POST", "/full/api/backfills/plain/pin", { body: { perSecond: 1 } })).status).toBe(428);
    const stale = await call("POST", "/full/api/backfills/plain/pin", { body: { perSecond: 1 }, etag: "nope.r1" });
    expect(stale.status).toBe(409);
    expect((await call("POST", "/ro/api/backfills/plain/pin", { body: { perSecond: 1 }, etag: row.etag })).status).toBe(403);
    expect((await call("POST", "/viewer/api/backfills/plain/pin", { body: { perSecond: 1 }, etag: row.etag })).status).toBe(403);
    expect((await call("GET", "/full/api/backfills/plain/pin")).status).toBe(405);
    expect((await rowOf("plain")).etag).toBe(row.etag);
  });
});
