import { existsSync, mkdirSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { createBullMQJobQueue, runBullMQWorker, type BullMQWorkerHandle } from "@superspreader/adapter-bullmq";
import {
  createManualClock,
  createMemoryIdSource,
  createMemoryJobQueue,
  createMemoryWorker,
  createSuperSpreader,
  type JobQueue,
  type StateStore,
  type SuperSpreader,
  validateConfig,
} from "@superspreader/core";
import { createRedisStateStore } from "@superspreader/store-redis";
import type { Redis } from "ioredis";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDashboard, toNodeListener, type Dashboard, type DashboardSpreader } from "../src/index.js";
import { connect, listen, unique, waitUntil, type TestServer } from "./helpers.js";

// Functions passed to page.evaluate / addInitScript run in Chromium. The package is typed for Node (no DOM
// lib, so the library code cannot lean on browser globals by mistake): name the little they touch here.
declare const window: Record<string, unknown>;
declare const document: {
  readonly visibilityState: string;
  addEventListener(type: "securitypolicyviolation", listener: (e: { violatedDirective: string; blockedURI: string }) => void): void;
  dispatchEvent(event: Event): boolean;
};

/** Debian's chromium (installed by scripts/ensure-servers.sh); a missing browser fails the suite, it never skips. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** Without the background-networking flags Chromium's start-up connections are refused here, many at a time. */
const CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
/** Screenshots land here (a test artifact; the package README shows copies). */
const ARTIFACTS = process.env.SUPERSPREADER_ARTIFACTS ?? fileURLToPath(new URL("../../../.tmp/artifacts/dashboard/", import.meta.url));
const HOSTILE = "<img src=x onerror=alert(1)>";
const HOSTILE_ERROR = '<img src=x onerror="window.__pwned=1">upstream said <b>no</b> for id ';
const HOSTILE_REASON = "<script>window.__pwned=2</script><b>maintenance</b>";
const ACTOR = "alice <b>ops</b>";
const ORDERS_MAX = 3_000_000n;
/** Whether this core holds runs after a burst of failures (its configs then take `hold`). */
const HOLDS = "hold" in validateConfig({ batchSize: 1, duration: 1, perSecondOnPeak: 0, perSecondOffPeak: 0 });
const HUGE_MAX = 10n ** 12n;

/** vitest's expect.poll, with a timeout fit for a page that updates every half second. */
const poll = <T>(read: () => T | Promise<T>, timeout = 10_000) => expect.poll(read, { timeout, interval: 50 });
/** Digits of a decimal string grouped by commas, as the page shows ids. */
const grouped = (n: bigint) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
/** The ids done in a progress text such as "1.23 % · 36,000 of 3,000,000 ids". */
const doneIn = (text: string) => BigInt((/· ([\d,]+) of/.exec(text)?.[1] ?? "0").replace(/,/g, ""));

describe("the dashboard in Chromium, over a Redis-backed backfill in progress with a BullMQ worker", { timeout: 30_000 }, () => {
  let redis: Redis;
  let store: StateStore;
  let storeMany: StateStore;
  let queue: JobQueue;
  let spreader: SuperSpreader;
  let worker: BullMQWorkerHandle;
  let server: TestServer;
  let evil: TestServer;
  let browser: Browser;
  let ops: Dashboard;
  /** The outage backfill's database: down until a test brings it back. */
  let databaseDown = true;
  const dashboards: Dashboard[] = [];
  /** Requests that reached the server, with the status they got (to check forged ones). */
  const served: Array<{ method: string; url: string; status: number; origin: string | undefined }> = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`[superspreader tests] ${CHROMIUM} not found: install Debian's browser with apt-get install -y chromium (npm test does it), or set CHROMIUM_PATH`);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    redis = connect();
    const prefix = unique("dash-browser");
    store = createRedisStateStore({ client: redis, prefix });
    const queueName = unique("dash-browser");
    queue = createBullMQJobQueue({ connection: redis, queueName, onError: () => {} });
    spreader = createSuperSpreader({ queue, store });
    const ordersSource = createMemoryIdSource({ minId: 1n, maxId: ORDERS_MAX });
    spreader.define("orders", {
      source: ordersSource,
      // A daily peak window (slower inside it), so the chart's next 24 h always show one.
      config: { batchSize: 1000, duration: 1, perSecondOnPeak: 6, perSecondOffPeak: 10, maxAttempts: 2, peak: { timezone: "UTC", days: "Mon-Sun", hours: [2, 6] } },
      async handle({ beginId }) {
        await new Promise((resolve) => setTimeout(resolve, 3));
        if (beginId > ORDERS_MAX - 3000n) throw new Error(`deadlock detected while updating orders ${beginId}`);
      },
    });
    spreader.define("flaky", {
      source: createMemoryIdSource({ minId: 1n, maxId: 50_000n }),
      // No hold: every range runs, so the run ends as failed with its 25 failures recorded.
      config: { batchSize: 1000, duration: 1, perSecondOnPeak: 25, perSecondOffPeak: 25, maxAttempts: 1, ...(HOLDS ? { hold: false as const } : {}) },
      async handle({ beginId }) {
        if (beginId <= 20_000n) throw new Error(`${HOSTILE_ERROR}${beginId}`);
        if (beginId <= 25_000n) throw new TypeError("<script>window.__pwned=3</script> is not a row");
      },
    });
    spreader.define("outage", {
      source: createMemoryIdSource({ minId: 1n, maxId: 1_000_000n }),
      config: { batchSize: 1000, duration: 1, perSecondOnPeak: 10, perSecondOffPeak: 10, maxAttempts: 1, ...(HOLDS ? { hold: { consecutiveFailures: 3, probeAfter: 3600, maxProbeInterval: 3600 } } : {}) },
      async handle() {
        if (databaseDown) throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
      },
    });
    worker = await runBullMQWorker({ spreader, connection: redis, queueName, concurrency: 8, onError: () => {} });
    await spreader.start("orders", { actor: "setup", reason: "first run" });
    await spreader.start("flaky", { actor: "setup" });
    await spreader.start("outage", { actor: "setup" });

    // A backfill of 10^12 ids, advanced by a few exact batches (an in-memory queue writing to the same store).
    const clock = createManualClock(Date.now() - 60_000);
    const hugeQueue = createMemoryJobQueue({ clock });
    const hugeSpreader = createSuperSpreader({ queue: hugeQueue, store, clock });
    hugeSpreader.define("huge", {
      source: createMemoryIdSource({ minId: 1n, maxId: HUGE_MAX }),
      config: { batchSize: 7_777_777, duration: 1, perSecondOnPeak: 10, perSecondOffPeak: 10 },
      handle: async () => {},
    });
    await hugeSpreader.start("huge");
    await createMemoryWorker({ queue: hugeQueue, spreader: hugeSpreader }).runUntilIdle(clock, { maxJobs: 23 });

    // 200 backfills in a store of their own, for the long list.
    storeMany = createRedisStateStore({ client: redis, prefix: unique("dash-many") });
    const many = createSuperSpreader({ queue: createMemoryJobQueue(), store: storeMany });
    const names = Array.from({ length: 200 }, (_, i) => `bf-${String(i).padStart(3, "0")}`);
    for (const name of names) {
      many.define(name, { source: createMemoryIdSource({ minId: 1n, maxId: 1_000_000n }), config: { batchSize: 100, duration: 1, perSecondOnPeak: 1, perSecondOffPeak: 1 }, handle: async () => {} });
    }
    await Promise.all(names.map((name) => many.start(name)));

    // A name core refuses can only come from a store it does not guard: the wrapper lists one, with flaky's state.
    // (plan/eta left out, so the page also runs on the dashboard's fallbacks.)
    const asHostile = <T extends { name: string }>(value: T): T => ({ ...value, name: HOSTILE });
    const hostile: DashboardSpreader = {
      list: async () => [HOSTILE, ...(await spreader.list())],
      status: async (name) => (name === HOSTILE ? asHostile(await spreader.status("flaky")) : spreader.status(name)),
      audit: async (name) => (name === HOSTILE ? asHostile(await spreader.audit("flaky")) : spreader.audit(name)),
      pause: spreader.pause,
      resume: spreader.resume,
      cancel: spreader.cancel,
      retryFailed: spreader.retryFailed,
      updateConfig: spreader.updateConfig,
      start: spreader.start,
      on: spreader.on,
    };

    const everyone = () => ({ actor: ACTOR });
    ops = createDashboard({ spreader, store, basePath: "/ops", refreshMs: 500, authorize: everyone, sources: { orders: ordersSource }, environment: "test" });
    const mounts: Array<[string, Dashboard]> = [
      ["/ops", ops],
      ["/ro", createDashboard({ spreader, store, basePath: "/ro", refreshMs: 500 })],
      ["/many", createDashboard({ spreader: many, store: storeMany, basePath: "/many", refreshMs: 1000, authorize: everyone })],
      ["/hostile", createDashboard({ spreader: hostile, store, basePath: "/hostile", refreshMs: 500, authorize: everyone })],
    ];
    dashboards.push(...mounts.map(([, d]) => d));
    const listeners = mounts.map(([path, d]) => [path, toNodeListener(d)] as const);
    server = await listen((req: IncomingMessage, res: ServerResponse) => {
      res.once("finish", () => served.push({ method: req.method ?? "", url: req.url ?? "", status: res.statusCode, origin: req.headers.origin }));
      const found = listeners.find(([path]) => req.url === path || req.url?.startsWith(`${path}/`));
      if (found) found[1](req, res);
      else res.writeHead(404).end();
    });
    // The attacker's page, on another site (localhost is not 127.0.0.1), posting to the dashboard.
    evil = await listen((_req, res) => {
      const target = `${server.origin}/ops/api/backfills/orders/pause`;
      res.writeHead(200, { "content-type": "text/html" }).end(
        `<!doctype html><form id=f method=POST enctype="text/plain" action="${target}"><input name='{"reason":"x","a' value='":1}'></form>` +
          `<script>fetch(${JSON.stringify(target)},{method:"POST",mode:"no-cors",credentials:"include",headers:{"content-type":"text/plain"},body:"{}"}).finally(()=>document.getElementById("f").submit())</script>`,
      );
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    for (const d of dashboards) await d.close();
    await server?.close();
    await evil?.close();
    await worker?.close();
    await queue?.close();
    await store?.close();
    await storeMany?.close();
    redis?.disconnect();
  }, 30_000);

  /** What went wrong in a page: console errors, uncaught exceptions, CSP violations, dialogs. */
  interface Watched {
    readonly page: Page;
    readonly errors: string[];
  }

  const contexts: BrowserContext[] = [];
  async function open(url: string, init?: () => void, ours = true): Promise<Watched> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(context);
    await context.addInitScript(() => {
      const w = window as unknown as { __csp: string[] };
      w.__csp = [];
      document.addEventListener("securitypolicyviolation", (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    if (init) await context.addInitScript(init);
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    page.on("dialog", (d) => {
      errors.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    const response = await page.goto(url);
    if (ours) expect(response?.headers()["content-security-policy"]).toContain("script-src 'self'");
    return { page, errors };
  }

  /**
   * No console error, exception, dialog or CSP violation. Chromium logs every 4xx answer to fetch() as a
   * console error; a test that provokes one on purpose names its status.
   */
  async function expectClean({ page, errors }: Watched, expectedStatuses: number[] = []): Promise<void> {
    const csp = await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
    expect(csp).toEqual([]);
    const unexpected = errors.filter((e) => {
      const status = /^Failed to load resource: the server responded with a status of (\d+)/.exec(e)?.[1];
      return status === undefined || !expectedStatuses.includes(Number(status));
    });
    expect(unexpected).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: unknown }).__pwned)).toBeUndefined();
  }

  async function closeAll(): Promise<void> {
    for (const c of contexts.splice(0)) await c.close();
  }

  const row = (page: Page, name: string) => page.locator(`tr[data-name="${name}"]`);

  it("lists every backfill, and progress grows on screen without a reload", async () => {
    try {
      const w = await open(`${server.origin}/ops/`);
      const orders = row(w.page, "orders");
      await poll(() => orders.locator(".nums").first().textContent()).toMatch(/of 3,000,000 ids/);
      await w.page.evaluate(() => ((window as unknown as { __loaded: number }).__loaded = 1));
      const first = doneIn((await orders.locator(".progress-cell .nums").textContent()) ?? "");
      let seen = first;
      // Twice: growth must keep coming from the live stream, not from one late paint.
      for (let i = 0; i < 2; i++) {
        const before = seen;
        await poll(async () => (seen = doneIn((await orders.locator(".progress-cell .nums").textContent()) ?? "")), 10_000).toBeGreaterThan(before);
      }
      expect(await w.page.evaluate(() => (window as unknown as { __loaded?: number }).__loaded)).toBe(1);
      await poll(() => w.page.locator(".freshness").getAttribute("data-mode")).toBe("live");
      await poll(() => orders.locator(".progress-cell .sub").textContent()).toMatch(/^rows [\d,]+ of 3,000,000 \(counted (now|\d+s ago)\)$/);
      expect(await row(w.page, "flaky").count()).toBe(1);
      expect(await row(w.page, "huge").count()).toBe(1);
      expect(await w.page.locator(".env").textContent()).toBe("test");
      await w.page.screenshot({ path: `${ARTIFACTS}/list.png` });
      await expectClean(w);
    } finally {
      await closeAll();
    }
  });

  it("pauses (verified in the store) and resumes from the page; the audit trail shows who and why, as text", async () => {
    try {
      const w = await open(`${server.origin}/ops/#/b/orders`);
      const state = w.page.locator(".detail-head .state");
      await poll(() => state.textContent()).toBe("running");
      await w.page.fill("input[name=actionReason]", HOSTILE_REASON);
      await w.page.click("button[data-action=pause]");
      await poll(async () => (await spreader.status("orders")).status).toBe("paused");
      await poll(() => state.textContent()).toBe("paused");
      const entry = w.page.locator(".timeline > li[data-kind=status]").first();
      await poll(() => entry.locator(".reason").textContent()).toBe(HOSTILE_REASON);
      expect(await entry.locator(".actor").textContent()).toBe(ACTOR);
      expect(await w.page.locator(".timeline b, .timeline script").count()).toBe(0);
      const [latest] = await store.listConfigChanges("orders", 1);
      expect(latest).toMatchObject({ actor: ACTOR, reason: HOSTILE_REASON, changes: { status: { from: "running", to: "paused" } } });

      await poll(() => w.page.locator("button[data-action=resume]").isEnabled()).toBe(true);
      await w.page.click("button[data-action=resume]");
      await poll(async () => (await spreader.status("orders")).status).toBe("running");
      await poll(() => state.textContent()).toBe("running");
      await expectClean(w);
    } finally {
      await closeAll();
    }
  });

  it("shows a bad config edit's error next to the field and writes nothing", async () => {
    try {
      const before = await spreader.status("orders");
      const trail = (await store.listConfigChanges("orders", 200)).length;
      const w = await open(`${server.origin}/ops/#/b/orders`);
      const batchSize = w.page.locator("form.config-form input[name=batchSize]");
      await poll(() => batchSize.inputValue()).toBe("1000");
      await batchSize.fill("0");
      await w.page.fill("form.config-form textarea[name=reason]", "smaller batches");
      await w.page.click("form.config-form button[type=submit]");
      const error = w.page.locator("form.config-form .form-error");
      await poll(() => error.textContent()).toContain("batchSize must be");
      expect(await batchSize.getAttribute("aria-invalid")).toBe("true");
      expect(await batchSize.inputValue()).toBe("0");
      const after = await spreader.status("orders");
      expect(after.config).toEqual(before.config);
      expect(await store.listConfigChanges("orders", 200)).toHaveLength(trail);

      // A valid value clears the error and previews the ETA before anything is saved.
      await batchSize.fill("2000");
      await poll(() => w.page.locator(".preview .eta-proposed").textContent()).toMatch(/\d{4}-\d\d-\d\d/);
      expect(await error.textContent()).toBe("");
      expect(await batchSize.getAttribute("aria-invalid")).toBeNull();
      expect((await spreader.status("orders")).config.batchSize).toBe(1000);
      await expectClean(w, [422]);
    } finally {
      await closeAll();
    }
  });

  it("answers a stale tab's edit with 409, and live updates never wipe the form being edited", async () => {
    try {
      const a = await open(`${server.origin}/ops/#/b/orders`);
      const b = await open(`${server.origin}/ops/#/b/orders`);
      for (const w of [a, b]) await poll(() => w.page.locator("input[name=perSecondOffPeak]").inputValue()).toBe("10");
      await b.page.fill("input[name=perSecondOffPeak]", "14");

      await a.page.fill("input[name=perSecondOffPeak]", "12");
      await a.page.fill("textarea[name=reason]", "tab A");
      await a.page.click("form.config-form button[type=submit]");
      await poll(async () => (await spreader.status("orders")).config.perSecondOffPeak).toBe(12);

      // Tab B hears of the change (the live update marks its form stale) while its input keeps what the operator typed.
      await poll(() => b.page.locator("form.config-form .stale").textContent()).toContain("The stored config changed");
      expect(await b.page.locator("input[name=perSecondOffPeak]").inputValue()).toBe("14");
      await b.page.fill("textarea[name=reason]", "tab B");
      await b.page.click("form.config-form button[type=submit]");
      await poll(() => b.page.locator("form.config-form .form-error").textContent()).toContain("changed since you loaded it");
      expect(await b.page.locator("form.config-form .stale").isVisible()).toBe(true);
      expect(await b.page.locator("input[name=perSecondOffPeak]").inputValue()).toBe("14");
      expect((await spreader.status("orders")).config.perSecondOffPeak).toBe(12);
      await expectClean(a);
      await expectClean(b, [409]);
    } finally {
      await spreader.updateConfig("orders", { perSecondOffPeak: 10 }, { actor: "test", reason: "back" });
      await closeAll();
    }
  });

  it("rejects a forged cross-origin POST", async () => {
    try {
      const before = served.length;
      const w = await open(`${evil.origin.replace("127.0.0.1", "localhost")}/`, undefined, false);
      await waitUntil("both forged requests to reach the server", () => served.slice(before).filter((r) => r.url.endsWith("/pause")).length === 2);
      const forged = served.slice(before).filter((r) => r.url.endsWith("/pause"));
      expect(forged.map((r) => [r.method, r.status, r.origin])).toEqual([
        ["POST", 403, evil.origin.replace("127.0.0.1", "localhost")],
        ["POST", 403, evil.origin.replace("127.0.0.1", "localhost")],
      ]);
      expect((await spreader.status("orders")).status).toBe("running");
      void w;
    } finally {
      await closeAll();
    }
  });

  it("renders a hostile name, error messages and retries of grouped failures as text", async () => {
    try {
      // Every range has run: 25 failed (two kinds of error), so the run ended as failed.
      await waitUntil("flaky to fail", async () => (await spreader.status("flaky")).status === "failed", 20_000);
      expect((await spreader.audit("flaky")).failed).toHaveLength(25);
      const list = await open(`${server.origin}/hostile/`);
      const hostileRow = list.page.locator("tbody tr").filter({ hasText: HOSTILE });
      await poll(() => hostileRow.locator("a.name").textContent()).toBe(HOSTILE);
      expect(await hostileRow.getAttribute("data-name")).toBe(HOSTILE);
      expect(await list.page.locator("img").count()).toBe(0);
      await hostileRow.locator("a.name").click();
      await poll(() => list.page.locator(".detail h2").textContent()).toBe(HOSTILE);
      const message = list.page.locator(".groups pre.message").filter({ hasText: "upstream said" });
      await poll(() => message.textContent()).toMatch(/^<img src=x onerror="window.__pwned=1">upstream said <b>no<\/b> for id \d+$/);
      expect(await list.page.locator("img, .groups b, .groups script").count()).toBe(0);
      // The fallbacks (no plan, no eta in this runtime) say so rather than guess.
      expect(await list.page.locator(".plan").textContent()).toContain("no spreader.plan()");
      await expectClean(list);

      // Each error is its own group, and a group's button retries (core requeues every failed range).
      const w = await open(`${server.origin}/ops/#/b/flaky`);
      const groups = w.page.locator(".groups article.group");
      await poll(() => groups.count()).toBe(2);
      expect(await groups.locator(".error-name").allTextContents()).toEqual(expect.arrayContaining(["Error", "TypeError"]));
      await w.page.screenshot({ path: `${ARTIFACTS}/detail-failures.png`, fullPage: true });
      const failed = (await spreader.audit("flaky")).failed.length;
      await groups.first().locator("button[data-action=retry-group]").click();
      await waitUntil("the retry to be recorded", async () => "requeuedFailedRanges" in ((await store.listConfigChanges("flaky", 1))[0]?.changes ?? {}));
      const [retry] = await store.listConfigChanges("flaky", 1);
      expect(retry).toMatchObject({ actor: ACTOR, changes: { requeuedFailedRanges: { to: failed } } });
      await expectClean(w);
    } finally {
      await closeAll();
    }
  });

  it("shows a run that held itself after a burst of failures, with why, and resumes it", async () => {
    try {
      await waitUntil("outage to hold", async () => (await spreader.status("outage")).status === "held", 20_000);
      const w = await open(`${server.origin}/ops/`);
      await poll(() => row(w.page, "outage").locator(".state").textContent()).toBe("held");
      expect(await row(w.page, "outage").locator(".state").getAttribute("title")).toMatch(/^held since .*: .+/);
      await row(w.page, "outage").locator("a.name").click();
      const hold = w.page.locator(".summary [data-item='Held']");
      await poll(() => hold.textContent()).toContain("ECONNREFUSED 127.0.0.1:5432");
      expect(await hold.isVisible()).toBe(true);
      expect(await w.page.locator("button[data-action=pause]").isEnabled()).toBe(true);
      databaseDown = false;
      await poll(() => w.page.locator("button[data-action=resume]").isEnabled()).toBe(true);
      await w.page.click("button[data-action=resume]");
      await poll(async () => (await spreader.status("outage")).status).toBe("running");
      await poll(() => w.page.locator(".detail-head .state").textContent()).toBe("running");
      expect(await hold.isVisible()).toBe(false);
      await expectClean(w);
    } finally {
      await closeAll();
    }
  });

  it("stays usable with 200 backfills listed", async () => {
    try {
      const started = Date.now();
      const w = await open(`${server.origin}/many/`);
      await poll(() => w.page.locator("tbody tr").count(), 15_000).toBe(200);
      const renderMs = Date.now() - started;
      expect(renderMs).toBeLessThan(10_000);
      expect(await w.page.locator(".counts").textContent()).toContain("200 backfills");
      await w.page.fill("input.filter", "bf-150");
      expect(await w.page.locator("tbody tr:visible").count()).toBe(1);
      await w.page.click("tbody tr:visible a.name");
      await poll(() => w.page.locator(".detail h2").textContent()).toBe("bf-150");
      await poll(() => w.page.locator(".detail-head .sub").textContent()).toMatch(/^run [0-9a-f]{12}/);
      await w.page.click("a.back");
      await poll(() => w.page.locator("tbody tr").count()).toBe(200);
      await expectClean(w);
    } finally {
      await closeAll();
    }
  });

  it("shows a backfill of 10^12 ids with exact numbers", async () => {
    try {
      const status = await spreader.status("huge");
      const done = status.progress.idsDone;
      expect(done % 7_777_777n).toBe(0n);
      expect(done).toBeGreaterThan(0n);
      const w = await open(`${server.origin}/ops/#/b/huge`);
      await poll(() => w.page.locator(".summary [data-item='Progress'] .nums").textContent()).toContain(
        `${grouped(done)} of 1,000,000,000,000 ids`,
      );
      expect(await w.page.locator(".summary [data-item='Remaining'] .nums").textContent()).toBe(`${grouped(HUGE_MAX - done)} ids`);
      expect(await w.page.locator(".summary [data-item='Cursor'] .nums").textContent()).toBe(`next id to plan ${grouped(status.cursor)}`);
      expect(await w.page.locator(".detail-head .sub").textContent()).toContain("ids 1..1,000,000,000,000");
      await w.page.click("a.back");
      await poll(() => row(w.page, "huge").locator(".progress-cell .nums").textContent()).toContain(`${grouped(done)} of 1,000,000,000,000 ids`);
      await expectClean(w);
    } finally {
      await closeAll();
    }
  });

  it("keeps one live stream per tab, closes it while the tab is hidden, and polls when streams do not get through", async () => {
    try {
      await waitUntil("earlier tabs' streams to end", () => ops.liveStreams === 0, 5000);
      const w = await open(`${server.origin}/ops/`);
      await waitUntil("the tab's stream", () => ops.liveStreams === 1, 5000);
      await w.page.click("tr[data-name=orders] a.name");
      await poll(() => w.page.locator(".detail h2").textContent()).toBe("orders");
      await poll(() => w.page.locator(".freshness").getAttribute("data-mode")).toBe("live");
      await waitUntil("one stream for the tab, the list's gone", () => ops.liveStreams === 1, 5000);

      const setVisibility = (state: "hidden" | "visible") =>
        w.page.evaluate((s) => {
          Object.defineProperty(document, "visibilityState", { configurable: true, get: () => s });
          document.dispatchEvent(new Event("visibilitychange"));
        }, state);
      await setVisibility("hidden");
      await waitUntil("the hidden tab's stream to close", () => ops.liveStreams === 0, 5000);
      expect(await w.page.locator(".freshness").getAttribute("data-mode")).toBe("hidden");
      await setVisibility("visible");
      await waitUntil("the stream to reopen", () => ops.liveStreams === 1, 5000);
      await expectClean(w);

      // A browser (or proxy) without EventSource: the page polls, and progress still grows.
      const polling = await open(`${server.origin}/ops/`, () => {
        delete (window as unknown as { EventSource?: unknown }).EventSource;
      });
      const orders = row(polling.page, "orders");
      await poll(() => polling.page.locator(".freshness").getAttribute("data-mode")).toBe("polling");
      await poll(() => orders.locator(".progress-cell .nums").textContent()).toMatch(/of 3,000,000 ids/);
      const first = doneIn((await orders.locator(".progress-cell .nums").textContent()) ?? "");
      await poll(async () => doneIn((await orders.locator(".progress-cell .nums").textContent()) ?? ""), 10_000).toBeGreaterThan(first);
      expect(ops.liveStreams).toBe(1);
      await expectClean(polling);
    } finally {
      await closeAll();
    }
  });

  it("offers no usable control on a read-only dashboard", async () => {
    try {
      const w = await open(`${server.origin}/ro/#/b/orders`);
      await poll(() => w.page.locator(".detail-head .state").textContent()).toBe("running");
      expect(await w.page.locator(".viewer").textContent()).toBe("read-only");
      for (const action of ["pause", "resume", "retry", "cancel", "pin", "unpin"]) {
        expect(await w.page.locator(`button[data-action=${action}]`).isDisabled(), action).toBe(true);
      }
      expect(await w.page.locator("form.config-form button[type=submit]").isDisabled()).toBe(true);
      expect(await w.page.locator(".controls .hint").textContent()).toContain("Read-only");
      await w.page.locator(".summary").screenshot({ path: `${ARTIFACTS}/readonly-summary.png` });
      await expectClean(w);
    } finally {
      await closeAll();
    }
  });

  it("pins the rate and batch size, shows the closed loop's figures, and unpins", async () => {
    try {
      const w = await open(`${server.origin}/ops/#/b/orders`);
      await poll(() => w.page.locator(".detail-head .state").textContent()).toBe("running");
      expect(await w.page.locator('[data-item="Closed loop"]').isHidden()).toBe(true);
      expect(await w.page.locator("button[data-action=unpin]").isDisabled()).toBe(true);
      await w.page.fill("input[name=pinRate]", "3");
      await w.page.fill("input[name=pinBatchSize]", "500");
      await w.page.click("button[data-action=pin]");
      await poll(() => w.page.locator('[data-item="Pinned"] dd').textContent()).toBe("rate 3/s · batch size 500");
      expect(await w.page.locator('[data-item="Closed loop"] dd').textContent()).toContain("rate pinned at 3/s; batch size pinned at 500");
      expect(await w.page.locator('[data-item="Closed loop"] dd').textContent()).toContain("batch 500 pinned (set 1,000)");
      expect(await w.page.locator('[data-item="Health"] dd').textContent()).toBe("clear: no indicator said slow or stop");
      expect(await w.page.locator('[data-item="Rate"] dd').textContent()).toMatch(/^in force 3\/s × 500 = 1,500 ids\/s \(set (6|10)\/s × 1,000\)/);
      expect((await spreader.status("orders")).control?.pins).toEqual({ perSecond: 3, batchSize: 500 });
      await w.page.fill("input[name=pinRate]", "");
      await w.page.fill("input[name=pinBatchSize]", "");
      await w.page.click("button[data-action=unpin]");
      await poll(() => w.page.locator('[data-item="Pinned"]').isHidden()).toBe(true);
      expect((await spreader.status("orders")).control?.pins).toEqual({ perSecond: null, batchSize: null });
      await expectClean(w);
    } finally {
      await closeAll();
    }
  });

  it("cancels only after the name is typed, and takes a detail screenshot", async () => {
    try {
      const w = await open(`${server.origin}/ops/#/b/orders`);
      await poll(() => w.page.locator(".detail-head .state").textContent()).toBe("running");
      await w.page.locator(".chart circle").first().waitFor();
      await w.page.screenshot({ path: `${ARTIFACTS}/detail.png`, fullPage: true });
      await w.page.click("button[data-action=cancel]");
      const confirm = w.page.locator(".confirm button.danger");
      expect(await confirm.isDisabled()).toBe(true);
      await w.page.fill("input[name=confirmName]", "order");
      expect(await confirm.isDisabled()).toBe(true);
      await w.page.fill("input[name=confirmName]", "orders");
      await confirm.click();
      await poll(async () => (await spreader.status("orders")).status).toBe("cancelled");
      await poll(() => w.page.locator(".detail-head .state").textContent()).toBe("cancelled");
      expect(await w.page.locator("button[data-action=pause]").isDisabled()).toBe(true);

      // An ended run can be started again (202 and its monitor, behind the button).
      const cancelled = await spreader.status("orders");
      await poll(() => w.page.locator("button[data-action=restart]").isEnabled()).toBe(true);
      await w.page.click("button[data-action=restart]");
      await poll(async () => (await spreader.status("orders")).runId).not.toBe(cancelled.runId);
      await poll(() => w.page.locator(".detail-head .state").textContent()).toBe("running");
      await poll(() => w.page.locator(".note-ok").last().textContent()).toContain(`of orders.`);
      await expectClean(w);
    } finally {
      await closeAll();
    }
  });
});
