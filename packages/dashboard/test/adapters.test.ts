import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createAdaptorServer } from "@hono/node-server";
import { createMemoryIdSource, createMemoryJobQueue, createSuperSpreader, type StateStore, type SuperSpreader } from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDashboard, fastifyDashboard, honoDashboard, toNodeListener, type Dashboard, type WireRow } from "../src/index.js";
import { EventReader, connect, listen, unique, waitUntil } from "./helpers.js";

/** Mounts a dashboard in a framework at `basePath`; resolves with the server's origin. */
type Mount = (dashboard: Dashboard, basePath: string) => Promise<{ origin: string; close(): Promise<void> }>;

const prefixOf = (basePath: string) => (basePath === "/" ? "" : basePath);

async function listenNode(server: Server): Promise<{ origin: string; close(): Promise<void> }> {
  return listen(server);
}

/** One contract, every adapter: node:http, Express (with and without a JSON body parser before it), Fastify and Hono. */
const ADAPTERS: Record<string, Mount> = {
  "node:http": (dashboard) => listen(toNodeListener(dashboard)),
  express: (dashboard, basePath) => {
    const app = express();
    app.use(basePath, toNodeListener(dashboard));
    app.use((_req, res) => void res.status(404).send("express: not found"));
    return listenNode(createServer(app));
  },
  "express after express.json()": (dashboard, basePath) => {
    const app = express();
    app.use(express.json());
    app.use(basePath, toNodeListener(dashboard));
    return listenNode(createServer(app));
  },
  fastify: async (dashboard, basePath) => {
    const app = Fastify({ forceCloseConnections: true });
    await app.register(fastifyDashboard(dashboard), { prefix: prefixOf(basePath) });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.server.address() as AddressInfo;
    return { origin: `http://127.0.0.1:${port}`, close: () => app.close() };
  },
  hono: (dashboard, basePath) => {
    const app = new Hono();
    const handler = honoDashboard(dashboard);
    if (basePath === "/") app.all("*", handler);
    else {
      app.all(basePath, handler);
      app.all(`${basePath}/*`, handler);
    }
    return listenNode(createAdaptorServer({ fetch: app.fetch }) as Server);
  },
};

describe("framework adapters: one contract at the root and under a prefix", () => {
  let redis: Redis;
  let store: StateStore;
  let spreader: SuperSpreader;

  beforeAll(async () => {
    redis = connect();
    store = createRedisStateStore({ client: redis, prefix: unique("dash-adapters") });
    // Nothing runs the jobs: the contract is about HTTP, the backfill only has to be stored and running.
    spreader = createSuperSpreader({ queue: createMemoryJobQueue(), store });
    spreader.define("adapted", {
      source: createMemoryIdSource({ minId: 1n, maxId: 1_000_000n }),
      config: { batchSize: 100, duration: 1, perSecondOnPeak: 1, perSecondOffPeak: 1 },
      handle: async () => {},
    });
    await spreader.start("adapted");
  });

  afterAll(async () => {
    await store.close();
    redis.disconnect();
  });

  for (const [adapter, mount] of Object.entries(ADAPTERS)) {
    for (const basePath of ["/", "/admin/backfills"]) {
      it(`${adapter} at ${basePath}: page, assets, JSON API, JSON bodies, errors and the live stream`, async () => {
        const dashboard = createDashboard({ spreader, store, basePath, refreshMs: 100, authorize: () => ({ actor: adapter }) });
        const { origin, close } = await mount(dashboard, basePath);
        const base = `${origin}${prefixOf(basePath)}`;
        try {
          // The page and every file it links, resolved against the page's own URL as a browser does.
          const page = await fetch(`${base}/`);
          expect(page.status).toBe(200);
          expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
          expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
          const html = await page.text();
          const links = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => new URL(m[1]!, `${base}/`).href);
          expect(links).toHaveLength(3);
          for (const link of links) {
            const asset = await fetch(link);
            expect(asset.status, link).toBe(200);
            expect(asset.headers.get("content-type")).toMatch(/^(text\/javascript|text\/css|image\/svg\+xml)/);
            expect((await asset.text()).length).toBeGreaterThan(100);
          }
          if (basePath !== "/") {
            const bare = await fetch(base, { redirect: "manual" });
            expect(bare.status).toBe(308);
            expect(bare.headers.get("location")).toBe(`${basePath}/`);
            expect((await fetch(`${origin}/elsewhere/api/backfills`)).status).toBe(404);
          }

          const list = await fetch(`${base}/api/backfills`);
          expect(list.status).toBe(200);
          const rows = ((await list.json()) as { rows: WireRow[] }).rows;
          const row = rows.find((r) => r.name === "adapted")!;
          expect(row.status).toBe("running");

          // A JSON body gets through the framework to the dashboard (the reason lands in the audit trail).
          const send = (action: string, body: string, etag: string) =>
            fetch(`${base}/api/backfills/adapted/${action}`, {
              method: "POST",
              headers: { "content-type": "application/json", origin, "if-match": `"${etag}"` },
              body,
            });
          const reason = `via ${adapter} at ${basePath}`;
          const paused = await send("pause", JSON.stringify({ reason }), row.etag);
          expect(paused.status).toBe(200);
          const after = ((await paused.json()) as { row: WireRow }).row;
          expect(after.status).toBe("paused");
          expect((await store.listConfigChanges("adapted", 1))[0]).toMatchObject({ actor: adapter, reason });
          const resumed = await send("resume", "{}", after.etag);
          expect(resumed.status).toBe(200);
          expect((await spreader.status("adapted")).status).toBe("running");

          // Errors are the dashboard's problem+json, not the framework's own pages.
          const stale = await send("pause", "{}", after.etag);
          expect(stale.status).toBe(409);
          expect(stale.headers.get("content-type")).toBe("application/problem+json; charset=utf-8");
          if (!adapter.includes("express.json")) {
            // (express.json() answers malformed JSON itself before the dashboard sees it.)
            const broken = await send("pause", "{oops", after.etag);
            expect(broken.status).toBe(400);
            expect(((await broken.json()) as { field: string }).field).toBe("body");
          }

          // The live stream is not buffered by the framework, and ends when the client goes.
          const controller = new AbortController();
          const stream = await fetch(`${base}/api/events`, { signal: controller.signal });
          expect(stream.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
          const events = new EventReader(stream);
          await events.until("the first rows", (seen) => seen.some((e) => e.event === "rows"), 5000);
          expect(dashboard.liveStreams).toBe(1);
          events.close();
          controller.abort();
          await waitUntil("the server to end the stream", () => dashboard.liveStreams === 0, 5000);
        } finally {
          await dashboard.close();
          await close();
        }
      });
    }
  }
});
