import type { IncomingMessage, ServerResponse } from "node:http";
import {
  createMemoryIdSource,
  createMemoryJobQueue,
  createMemoryWorker,
  createSuperSpreader,
  type MemoryWorker,
  type StateStore,
  type SuperSpreader,
} from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTENT_SECURITY_POLICY, createDashboard, toNodeListener, type Dashboard, type WireDetail, type WireList, type WireProblem, type WireRow } from "../src/index.js";
import { EventReader, connect, listen, unique, waitUntil, type TestServer } from "./helpers.js";

const STEADY = { batchSize: 100, duration: 1, perSecondOnPeak: 2, perSecondOffPeak: 2 };

describe("HTTP API (Redis store, in-memory queue and worker)", () => {
  let redis: Redis;
  let store: StateStore;
  let spreader: SuperSpreader;
  let worker: MemoryWorker;
  let server: TestServer;
  const dashboards: Dashboard[] = [];

  beforeAll(async () => {
    redis = connect();
    store = createRedisStateStore({ client: redis, prefix: unique("dash-api") });
    const queue = createMemoryJobQueue();
    spreader = createSuperSpreader({ queue, store });
    spreader.define("quick", {
      source: createMemoryIdSource({ minId: 1n, maxId: 40_000n }),
      config: { batchSize: 1000, duration: 1, perSecondOnPeak: 20, perSecondOffPeak: 20 },
      handle: async () => {},
    });
    spreader.define("finished", { source: createMemoryIdSource({ minId: 1n, maxId: 10n }), config: STEADY, handle: async () => {} });
    for (const name of ["steady", "guarded", "hidden"]) {
      spreader.define(name, { source: createMemoryIdSource({ minId: 1n, maxId: 1_000_000_000n }), config: STEADY, handle: async () => {} });
    }
    worker = createMemoryWorker({ queue, spreader, concurrency: 4 });
    worker.start();
    for (const name of ["steady", "guarded", "hidden", "finished"]) await spreader.start(name, { actor: "setup" });
    await waitUntil("finished to complete", async () => (await spreader.status("finished")).status === "completed", 10_000);

    const mount = (basePath: string, options: Partial<Parameters<typeof createDashboard>[0]> = {}) => {
      const dashboard = createDashboard({ spreader, store, basePath, refreshMs: 200, ...options });
      dashboards.push(dashboard);
      return { basePath, listener: toNodeListener(dashboard) };
    };
    const mounts = [
      mount("/full", { authorize: () => ({ actor: "tester" }) }),
      mount("/ro"),
      mount("/picky", { authorize: (_request, action, backfill) => (backfill === "hidden" ? false : action === "view" || action === "edit") }),
      mount("/proxied", { authorize: () => true, trustedOrigins: ["https://ops.example.com"] }),
    ];
    server = await listen((req: IncomingMessage, res: ServerResponse) => {
      const m = mounts.find((x) => req.url?.startsWith(`${x.basePath}/`) || req.url === x.basePath);
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

  /** A request as the dashboard's own page sends it (same origin), unless headers say otherwise. */
  const call = (method: string, path: string, options: { body?: unknown; etag?: string | null; headers?: Record<string, string> } = {}) => {
    const headers: Record<string, string> = { origin: server.origin, ...options.headers };
    if (options.body !== undefined) headers["content-type"] ??= "application/json";
    if (options.etag) headers["if-match"] = `"${options.etag}"`;
    return fetch(`${server.origin}${path}`, {
      method,
      headers,
      redirect: "manual",
      ...(options.body === undefined ? {} : { body: typeof options.body === "string" ? options.body : JSON.stringify(options.body) }),
    });
  };
  // Test bodies are read loosely; the page's own types are checked where the page uses them.
  const jsonOf = async (response: Response | Promise<Response>): Promise<any> => (await response).json();
  const problemOf = async (response: Response) => {
    expect(response.headers.get("content-type")).toBe("application/problem+json; charset=utf-8");
    return (await response.json()) as WireProblem;
  };
  const detailOf = async (base: string, name: string) => {
    const response = await call("GET", `${base}/api/backfills/${name}`);
    expect(response.status).toBe(200);
    return { detail: (await response.json()) as WireDetail, etag: response.headers.get("etag")! };
  };

  it("serves list, status, audit, plan, estimate and config as JSON, ids as exact strings", async () => {
    const list = (await (await call("GET", "/full/api/backfills")).json()) as WireList;
    expect(list.rows.map((r) => r.name)).toEqual(expect.arrayContaining(["guarded", "hidden", "steady"]));
    const { detail, etag } = await detailOf("/full", "steady");
    const status = await spreader.status("steady");
    expect(detail.row).toMatchObject({ readable: true, name: "steady", status: "running", runId: status.runId });
    expect(detail.row.ids).toMatchObject({ min: "1", max: "1000000000", total: "1000000000" });
    expect(etag).toBe(`"${detail.row.etag}"`);
    expect(detail.config).toMatchObject(STEADY);
    expect(detail.can).toMatchObject({ view: true, pause: true, edit: true });
    expect(detail.chart.schedule.length).toBeGreaterThan(0);

    const audit = await jsonOf(call("GET", "/full/api/backfills/steady/audit"));
    expect(audit).toMatchObject({ name: "steady", runId: status.runId, ranges: { notPlanned: { ranges: 1 } } });
    expect(audit.timeline[0]).toMatchObject({ actor: "setup", kind: "run" });

    const estimate = await jsonOf(call("GET", "/full/api/backfills/steady/estimate"));
    expect(estimate.current.finishAt).toBeGreaterThan(Date.now());
    expect(BigInt(estimate.current.idsRemaining)).toBeGreaterThan(999_000_000n);

    const config = await (await call("GET", "/full/api/backfills/steady/config")).json();
    expect(config).toMatchObject({ name: "steady", config: STEADY, etag: detail.row.etag });

    const plan = await call("GET", "/full/api/backfills/steady/plan");
    if (typeof (spreader as { plan?: unknown }).plan === "function") {
      expect(plan.status).toBe(200);
      const body = await jsonOf(plan);
      expect(body).toMatchObject({ available: true, slots: 2 });
      expect(body.batches[0]).toMatchObject({ ids: "100" });
    } else {
      // A core without spreader.plan(): the API says so instead of computing a plan of its own.
      expect(plan.status).toBe(501);
      expect((await problemOf(plan)).field).toBe("plan");
    }
  });

  it("POST start answers 202 with a monitor that answers 200 while the run goes on and 303 to the run's record once done", async () => {
    const started = await call("POST", "/full/api/backfills/quick/start", { body: { reason: "first run" } });
    expect(started.status).toBe(202);
    const location = started.headers.get("location")!;
    const { runId } = await jsonOf(started);
    expect(location).toBe(`/full/api/backfills/quick/runs/${runId}/monitor`);

    const first = await call("GET", location);
    expect(first.status).toBe(200);
    expect(first.headers.get("retry-after")).toBe("1");
    expect(await first.json()).toMatchObject({ name: "quick", runId, done: false, ids: { total: "40000" } });

    let finished: Response | undefined;
    await waitUntil("the monitor to redirect", async () => {
      const r = await call("GET", location);
      if (r.status === 303) finished = r;
      else expect(r.status).toBe(200);
      return r.status === 303;
    }, 20_000);
    const record = finished!.headers.get("location")!;
    expect(record).toBe(`/full/api/backfills/quick/runs/${runId}`);
    const body = await jsonOf(call("GET", record));
    expect(body.row).toMatchObject({ status: "completed", runId, ids: { done: "40000", percent: "100.000000" } });

    // A restart replaces the run: the old monitor is gone (410), the old record too (404).
    const restarted = await call("POST", "/full/api/backfills/quick/start", { body: { restart: true, reason: "again" } });
    expect(restarted.status).toBe(202);
    expect((await call("GET", location)).status).toBe(410);
    expect((await call("GET", record)).status).toBe(404);
  });

  it("follows a start requested from a dashboard without the app's queue (as the CLI serves it) to the run a worker starts", async () => {
    // The worker side: defines the backfill, runs its jobs, and carries out requested starts (its watchdog).
    const workerQueue = createMemoryJobQueue();
    const app = createSuperSpreader({ queue: workerQueue, store });
    app.define("remote", { source: createMemoryIdSource({ minId: 1n, maxId: 20_000n }), config: { batchSize: 1000, duration: 1, perSecondOnPeak: 20, perSecondOffPeak: 20 }, handle: async () => {} });
    const appWorker = createMemoryWorker({ queue: workerQueue, spreader: app, concurrency: 2, watchdogIntervalMs: 100 });
    // The dashboard side: the store only, like `superspreader dashboard --redis-url`.
    const bare = createDashboard({ spreader: createSuperSpreader({ queue: null, store }), store, basePath: "/", authorize: () => ({ actor: "cli:ops" }) });
    const bareServer = await listen(toNodeListener(bare));
    try {
      const started = await fetch(`${bareServer.origin}/api/backfills/remote/start`, {
        method: "POST",
        headers: { origin: bareServer.origin, "content-type": "application/json" },
        body: JSON.stringify({ reason: "from the standalone dashboard" }),
        redirect: "manual",
      });
      expect(started.status).toBe(202);
      expect(await jsonOf(started)).toMatchObject({ status: "starting", requested: true });
      const location = started.headers.get("location")!;
      expect(location).toMatch(/^\/api\/backfills\/remote\/runs\/[0-9a-f]+\/monitor\?since=\d+$/);
      const waiting = await fetch(`${bareServer.origin}${location}`, { redirect: "manual" });
      expect(waiting.status).toBe(200);
      expect(await jsonOf(waiting)).toMatchObject({ status: "requested", done: false });

      appWorker.start();
      let done: Response | undefined;
      const seen = new Set<string>();
      await waitUntil("the requested run to finish", async () => {
        const r = await fetch(`${bareServer.origin}${location}`, { redirect: "manual" });
        if (r.status === 303) done = r;
        else {
          expect(r.status).toBe(200);
          seen.add((await jsonOf(r)).status);
        }
        return r.status === 303;
      }, 20_000);
      const status = await app.status("remote");
      expect(status.status).toBe("completed");
      expect(done!.headers.get("location")).toBe(`/api/backfills/remote/runs/${status.runId}`);
      expect([...seen].every((s) => s === "requested" || s === "running")).toBe(true);
    } finally {
      await bare.close();
      await bareServer.close();
      await appWorker.stop();
    }
  });

  it("takes If-Match on every change: 428 without, 409 with a stale version (and the state now), 200 with the current one", async () => {
    const { detail } = await detailOf("/full", "guarded");
    const missing = await call("POST", "/full/api/backfills/guarded/pause", { body: {} });
    expect(missing.status).toBe(428);
    expect((await problemOf(missing)).field).toBe("If-Match");

    const paused = await call("POST", "/full/api/backfills/guarded/pause", { body: { reason: "maintenance" }, etag: detail.row.etag });
    expect(paused.status).toBe(200);
    const after = ((await paused.json()) as { row: WireRow }).row;
    expect(after.status).toBe("paused");
    expect(after.etag).not.toBe(detail.row.etag);
    expect(paused.headers.get("etag")).toBe(`"${after.etag}"`);
    expect((await spreader.status("guarded")).status).toBe("paused");

    // The stale tab tries to resume with the version it loaded: refused, nothing written.
    const trail = (await store.listConfigChanges("guarded", 100)).length;
    const stale = await call("POST", "/full/api/backfills/guarded/resume", { body: {}, etag: detail.row.etag });
    expect(stale.status).toBe(409);
    const problem = await problemOf(stale);
    expect(problem.field).toBe("If-Match");
    expect(problem.current).toMatchObject({ name: "guarded", status: "paused", etag: after.etag });
    expect(stale.headers.get("etag")).toBe(`"${after.etag}"`);
    expect((await spreader.status("guarded")).status).toBe("paused");
    expect(await store.listConfigChanges("guarded", 100)).toHaveLength(trail);

    const resumed = await call("POST", "/full/api/backfills/guarded/resume", { body: {}, etag: after.etag });
    expect(resumed.status).toBe(200);
    expect((await spreader.status("guarded")).status).toBe("running");
    const [latest] = await store.listConfigChanges("guarded", 1);
    expect(latest).toMatchObject({ actor: "tester", changes: { status: { from: "paused", to: "running" } } });
  });

  it("answers 403 to changes without authorization (read-only without a hook) and hides what the viewer may not view", async () => {
    const { detail } = await detailOf("/ro", "steady");
    expect(detail.can).toMatchObject({ view: true, pause: false, cancel: false, edit: false });
    const refused = await call("POST", "/ro/api/backfills/steady/pause", { body: {}, etag: detail.row.etag });
    expect(refused.status).toBe(403);
    const problem = await problemOf(refused);
    expect(problem.field).toBe("authorization");
    expect(problem.detail).toContain("read-only");
    expect((await spreader.status("steady")).status).toBe("running");
    const session = await (await call("GET", "/ro/api/session")).json();
    expect(session).toMatchObject({ readOnly: true, can: { view: true, pause: false } });

    const picky = await detailOf("/picky", "steady");
    expect((await call("POST", "/picky/api/backfills/steady/pause", { body: {}, etag: picky.detail.row.etag })).status).toBe(403);
    const names = ((await (await call("GET", "/picky/api/backfills")).json()) as WireList).rows.map((r) => r.name);
    expect(names).toContain("steady");
    expect(names).not.toContain("hidden");
    expect((await call("GET", "/picky/api/backfills/hidden")).status).toBe(404);
    expect((await call("GET", "/picky/api/events?focus=hidden")).status).toBe(404);
  });

  it("answers problem+json naming the field on bad input, and writes nothing", async () => {
    const { detail } = await detailOf("/full", "steady");
    const etag = detail.row.etag;
    const trail = (await store.listConfigChanges("steady", 100)).length;
    const expectProblem = async (response: Response, status: number, field: string, detail?: string) => {
      expect(response.status).toBe(status);
      const p = await problemOf(response);
      expect(p).toMatchObject({ status, field });
      if (detail) expect(p.detail).toContain(detail);
    };
    await expectProblem(await call("PATCH", "/full/api/backfills/steady/config", { body: { config: { batchSize: 0 }, reason: "typo" }, etag }), 422, "config.batchSize", "batchSize");
    await expectProblem(await call("PATCH", "/full/api/backfills/steady/config", { body: { config: { speed: 3 }, reason: "typo" }, etag }), 422, "config.speed");
    await expectProblem(
      await call("PATCH", "/full/api/backfills/steady/config", { body: { config: { peak: { timezone: "Mars/Olympus", days: "Mon", hours: [1, 2] } }, reason: "x" }, etag }),
      422,
      "config.peak.timezone",
    );
    await expectProblem(await call("PATCH", "/full/api/backfills/steady/config", { body: { config: { batchSize: 5 } }, etag }), 422, "reason");
    await expectProblem(await call("PATCH", "/full/api/backfills/steady/config", { body: { config: [1] , reason: "x" }, etag }), 422, "config");
    await expectProblem(await call("POST", "/full/api/backfills/steady/cancel", { body: { confirm: "stead" }, etag }), 422, "confirm");
    await expectProblem(await call("POST", "/full/api/backfills/steady/pause", { body: "{not json", etag }), 400, "body");
    await expectProblem(await call("POST", "/full/api/backfills/steady/pause", { body: "{}", etag, headers: { "content-type": "text/plain" } }), 415, "Content-Type");
    await expectProblem(await call("POST", "/full/api/backfills/steady/pause", { body: { reason: 5 }, etag }), 422, "reason");
    await expectProblem(await call("POST", "/full/api/backfills/steady/start", { body: { restart: "yes" } }), 422, "restart");
    await expectProblem(await call("POST", "/full/api/backfills/steady/pause", { body: "x".repeat(70_000), etag }), 413, "body");
    await expectProblem(await call("GET", "/full/api/backfills/nope"), 404, "name");
    await expectProblem(await call("GET", "/full/api/backfills/bad%ZZname"), 400, "path");
    await expectProblem(await call("GET", "/full/api/nothing"), 404, "path");
    const wrong = await call("DELETE", "/full/api/backfills/steady");
    await expectProblem(wrong, 405, "method");
    expect(wrong.headers.get("allow")).toBe("GET, HEAD");

    const status = await spreader.status("steady");
    expect(status.status).toBe("running");
    expect(status.config).toMatchObject(STEADY);
    expect(await store.listConfigChanges("steady", 100)).toHaveLength(trail);
  });

  it("refuses cross-site changes by Sec-Fetch-Site, or by Origin when browsers send no Sec-Fetch-Site", async () => {
    const { detail } = await detailOf("/full", "steady");
    const pause = (headers: Record<string, string>, base = "/full") =>
      fetch(`${server.origin}${base}/api/backfills/steady/pause`, {
        method: "POST",
        headers: { "content-type": "application/json", "if-match": `"${detail.row.etag}"`, ...headers },
        body: "{}",
      });
    for (const [headers, field] of [
      [{ "sec-fetch-site": "cross-site", origin: "https://evil.example" }, "Sec-Fetch-Site"],
      [{ "sec-fetch-site": "same-site", origin: "http://127.0.0.1:1" }, "Sec-Fetch-Site"],
      [{ "sec-fetch-site": "none" }, "Sec-Fetch-Site"],
      [{ origin: "https://evil.example" }, "Origin"],
      [{ origin: "null" }, "Origin"],
      [{}, "Origin"],
    ] as const) {
      const response = await pause(headers);
      expect(response.status, JSON.stringify(headers)).toBe(403);
      expect((await problemOf(response)).field).toBe(field);
    }
    // The preview is not a change, but a POST all the same: the same check applies.
    expect((await fetch(`${server.origin}/full/api/backfills/steady/estimate`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(403);
    expect((await spreader.status("steady")).status).toBe("running");

    // Behind a proxy: its public origin is trusted by name.
    const viaProxy = await pause({ origin: "https://ops.example.com", "sec-fetch-site": "same-site" }, "/proxied");
    expect(viaProxy.status).toBe(200);
    const now = ((await viaProxy.json()) as { row: WireRow }).row;
    expect(now.status).toBe("paused");
    const back = await fetch(`${server.origin}/full/api/backfills/steady/resume`, {
      method: "POST",
      headers: { "content-type": "application/json", "if-match": `"${now.etag}"`, "sec-fetch-site": "same-origin" },
      body: "{}",
    });
    expect(back.status).toBe(200);
    expect((await spreader.status("steady")).status).toBe("running");
  });

  it("sends the strict CSP and security headers everywhere, and serves hashed assets that reference nothing outside", async () => {
    const shell = await call("GET", "/full/");
    expect(shell.status).toBe(200);
    const html = await shell.text();
    for (const response of [shell, await call("GET", "/full/api/backfills"), await call("GET", "/full/api/nothing")]) {
      expect(response.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("x-frame-options")).toBe("DENY");
      expect(response.headers.get("referrer-policy")).toBe("same-origin");
    }
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).toContain("default-src 'none'");
    expect(html).not.toMatch(/<script>|<style|\sstyle=|\son\w+=/i);
    const links = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(links).toHaveLength(3);
    for (const link of links) {
      expect(link).toMatch(/^assets\/[a-z]+\.[0-9a-f]{12}\.(js|css|svg)$/);
      const asset = await call("GET", `/full/${link}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      const body = await asset.text();
      // No CDN, no font service, nothing fetched at run time: the only URL is the SVG namespace.
      expect(new Set(body.match(/https?:\/\/[^"'\s)]+/g) ?? [])).toEqual(link.endsWith(".js") || link.endsWith(".svg") ? new Set(["http://www.w3.org/2000/svg"]) : new Set());
    }
    const redirect = await call("GET", "/full");
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get("location")).toBe("/full/");
    const head = await call("HEAD", "/full/api/backfills");
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("previews a config change's ETA without writing it", async () => {
    const trail = (await store.listConfigChanges("steady", 100)).length;
    const preview = await call("POST", "/full/api/backfills/steady/estimate", { body: { config: { perSecondOffPeak: 4, perSecondOnPeak: 4 } } });
    expect(preview.status).toBe(200);
    const body = await jsonOf(preview);
    expect(body.config).toMatchObject({ perSecondOffPeak: 4 });
    expect(body.peakPerSecond).toBe(4);
    expect(body.peakIdsPerSecond).toBe(400);
    expect(body.proposed.finishAt).toBeLessThan(body.current.finishAt);
    const bad = await call("POST", "/full/api/backfills/steady/estimate", { body: { config: { perSecondOffPeak: -1 } } });
    expect(bad.status).toBe(422);
    expect((await problemOf(bad)).field).toBe("config.perSecondOffPeak");
    expect((await spreader.status("steady")).config).toMatchObject(STEADY);
    expect(await store.listConfigChanges("steady", 100)).toHaveLength(trail);
  });

  it("streams the list and the focused backfill live, sends only changes, and ends the stream with the request", async () => {
    const dashboard = dashboards[0]!;
    const controller = new AbortController();
    const stream = await fetch(`${server.origin}/full/api/events?focus=guarded`, { signal: controller.signal });
    expect(stream.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const events = new EventReader(stream);
    const first = await events.until("the first messages", (seen) => seen.some((e) => e.event === "detail") && seen.some((e) => e.event === "can"));
    const rows = first.find((e) => e.event === "rows")!.data as { full: boolean; rows: WireRow[] };
    expect(rows.full).toBe(true);
    expect(rows.rows.map((r) => r.name)).toContain("steady");
    expect((first.find((e) => e.event === "detail")!.data as WireDetail).row.name).toBe("guarded");
    expect(first.find((e) => e.event === "can")!.data).toMatchObject({ pause: true });
    expect(dashboard.liveStreams).toBeGreaterThanOrEqual(1);

    // A change shows in the next message, which carries only what changed.
    const { detail } = await detailOf("/full", "guarded");
    expect((await call("POST", "/full/api/backfills/guarded/pause", { body: {}, etag: detail.row.etag })).status).toBe(200);
    const later = await events.until("the paused row", (seen) =>
      seen.some((e) => e.event === "rows" && (e.data as { rows: WireRow[] }).rows.some((r) => r.name === "guarded" && r.status === "paused")),
    );
    const partial = later.filter((e) => e.event === "rows" && !(e.data as { full: boolean }).full);
    expect(partial.length).toBeGreaterThan(0);
    // Running rows change every second (progress, observed rate); the completed one never does, so it is not sent again.
    expect(rows.rows.map((r) => r.name)).toContain("finished");
    expect(partial.flatMap((e) => (e.data as { rows: WireRow[] }).rows.map((r) => r.name))).not.toContain("finished");
    events.close();
    controller.abort();
    await waitUntil("the stream to close on the server", () => dashboard.liveStreams === 0, 5000);
    await spreader.resume("guarded");
  });
});
