import { SuperSpreaderError, validateConfig, type BackfillConfigInput, type IdSource, type StateStore } from "@superspreader/core";
import { ASSET_FILES, SHELL_HTML } from "./assets.js";
import { changeOptions, extrasOf, type AnyStatus, type DashboardSpreader } from "./compat.js";
import { HttpProblem, SECURITY_HEADERS, empty, json, optionalString, parseIfMatch, problem, readJsonBody, text } from "./http.js";
import { LiveHub } from "./live.js";
import { ENDED_STATES, configJson, etaOf, etagOf, scheduleAhead } from "./model.js";
import { Reader, problemOfCore } from "./reader.js";
import { accessFor, checkCsrf, type Access, type Authorize } from "./security.js";
import type { WireEstimate, WireList, WireMonitor, WireSession } from "./wire.js";

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /** The runtime to show and steer (`createSuperSpreader(...)`); controls call its methods. */
  spreader: DashboardSpreader;
  /**
   * The StateStore the spreader uses, for the audit timeline (config and state changes) and the
   * configured rate of the last hour. Without it the timeline is left out.
   * @default undefined
   */
  store?: Pick<StateStore, "listConfigChanges">;
  /**
   * Id sources by backfill name: rows done and in total are shown for those that can count
   * (`capabilities.countRange`).
   * @default {}
   */
  sources?: Readonly<Record<string, IdSource>>;
  /**
   * The path the dashboard is mounted at, e.g. `"/admin/backfills"`. The handler answers only
   * below it and builds every link from it; the page itself uses relative URLs.
   * @default "/"
   */
  basePath?: string;
  /**
   * Who may do what. Called for every request with the action and the backfill. Without it the
   * dashboard is read-only: everyone may view, every change answers 403.
   * @default undefined (read-only)
   */
  authorize?: Authorize;
  /**
   * Origins, besides the request's own, from which changes are accepted (CSRF check): a reverse
   * proxy's public origin such as `"https://ops.example.com"`.
   * @default []
   */
  trustedOrigins?: readonly string[];
  /**
   * Milliseconds between live updates (statuses are read once per interval, whatever the number of tabs).
   * @default 1000
   */
  refreshMs?: number;
  /**
   * Milliseconds between reads of each backfill's ledger (audit, failed ranges, ETA, row counts);
   * a change of config or state reads it at once.
   * @default 5000
   */
  ledgerRefreshMs?: number;
  /**
   * The page's title.
   * @default "superspreader"
   */
  title?: string;
  /**
   * A badge naming the environment ("production", "staging"), shown in the page's header.
   * @default null
   */
  environment?: string | null;
}

/** A mounted dashboard: a Fetch-standard handler and a way to end its live streams. */
export interface Dashboard {
  /** The normalised mount path ("" for the root). */
  readonly basePath: string;
  /** Answers one request: the page, its assets, the JSON API and the live stream. */
  fetch(request: Request): Promise<Response>;
  /** Live streams open now (one per visible tab): for metrics, and to check tabs close theirs. */
  readonly liveStreams: number;
  /** Ends the open live streams and stops reading the store. Idempotent. */
  close(): Promise<void>;
}

function normaliseBasePath(raw: string | undefined): string {
  const path = (raw ?? "/").trim();
  if (!path.startsWith("/") || /[?#\s]/.test(path)) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `basePath must be a path starting with "/" such as "/admin/backfills", got ${JSON.stringify(raw)}`, {
      field: "basePath",
    });
  }
  return path.replace(/\/+$/, "");
}

function positive(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 50) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `${field} must be a number of milliseconds ≥ 50, got ${String(value)}`, { field });
  }
  return value;
}

interface Route {
  readonly access: Access;
  readonly request: Request;
  readonly url: URL;
}

/**
 * Creates the operator dashboard: the page (list, detail, controls), its HTTP API and a live
 * stream, as one Fetch-standard handler. Mount it with an adapter (`toNodeListener` for node:http
 * and Express, `fastifyDashboard`, `honoDashboard`) or call `fetch` from any server that speaks
 * Fetch (Bun, Deno, workers).
 *
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { createDashboard, toNodeListener } from "@superspreader/dashboard";
 *
 * const dashboard = createDashboard({
 *   spreader,
 *   store,
 *   basePath: "/admin/backfills",
 *   authorize: async (request, action) => {
 *     const user = await userOf(request);
 *     return user?.isAdmin ? { actor: user.email } : action === "view" && user !== null;
 *   },
 * });
 * createServer(toNodeListener(dashboard)).listen(8080, "127.0.0.1");
 * ```
 */
export function createDashboard(options: DashboardOptions): Dashboard {
  const { spreader } = options;
  if (!spreader || typeof spreader.status !== "function" || typeof spreader.list !== "function") {
    throw new SuperSpreaderError("INVALID_ARGUMENT", "spreader must be a SuperSpreader (createSuperSpreader(...))", { field: "spreader" });
  }
  if (options.store !== undefined && typeof options.store?.listConfigChanges !== "function") {
    throw new SuperSpreaderError("INVALID_ARGUMENT", "store must be a StateStore (with listConfigChanges)", { field: "store" });
  }
  if (options.authorize !== undefined && typeof options.authorize !== "function") {
    throw new SuperSpreaderError("INVALID_ARGUMENT", "authorize must be a function (request, action, backfill) => boolean | { actor }", {
      field: "authorize",
    });
  }
  const basePath = normaliseBasePath(options.basePath);
  const refreshMs = positive(options.refreshMs, 1000, "refreshMs");
  const ledgerRefreshMs = positive(options.ledgerRefreshMs, 5000, "ledgerRefreshMs");
  const trusted = new Set(options.trustedOrigins ?? []);
  const title = options.title ?? "superspreader";
  const environment = options.environment ?? null;
  const reader = new Reader({
    spreader,
    store: options.store,
    sources: options.sources ?? {},
    refreshMs,
    slowMs: ledgerRefreshMs,
    now: Date.now,
  });
  const hub = new LiveHub(reader, spreader, refreshMs);
  const extras = extrasOf(spreader);
  const api = (path: string) => `${basePath}/api${path}`;
  const backfillPath = (name: string) => api(`/backfills/${encodeURIComponent(name)}`);
  const monitorPath = (name: string, runId: string) => `${backfillPath(name)}/runs/${encodeURIComponent(runId)}/monitor`;
  const recordPath = (name: string, runId: string) => `${backfillPath(name)}/runs/${encodeURIComponent(runId)}`;

  /* --------------------------------------------------------------- reads */

  const readStatus = async (name: string, fresh = false): Promise<AnyStatus> => {
    try {
      return await reader.status(name, fresh);
    } catch (error) {
      throw problemOfCore(error) ?? error;
    }
  };

  /** 404 for a backfill the viewer may not view, as for one that does not exist. */
  const requireView = async (route: Route, name: string) => {
    if ((await route.access.allowed("view", name)) === null) throw new HttpProblem(404, `backfill "${name}" not found`, { field: "name" });
  };

  const session = async (route: Route) => {
    await route.access.require("view", null);
    // Whether core counts revisions shows on any stored status.
    const names = await reader.names();
    const sample = names.length > 0 ? await reader.status(names[0]!).catch(() => null) : null;
    const body: WireSession = {
      actor: (await route.access.allowed("edit", null)) ?? (await route.access.allowed("view", null)) ?? "anonymous",
      readOnly: route.access.readOnly,
      can: await route.access.capabilities(null),
      title,
      environment,
      features: {
        plan: extras.plan !== undefined,
        eta: extras.eta !== undefined,
        repair: extras.repair !== undefined,
        pin: extras.pin !== undefined,
        revisions: typeof sample?.revision === "number",
      },
      refreshMs,
    };
    return json(200, body);
  };

  const list = async (route: Route) => {
    await route.access.require("view", null);
    const names = await reader.names();
    const visible = await Promise.all(names.map(async (n) => ((await route.access.allowed("view", n)) === null ? null : n)));
    const rows = await Promise.all(visible.filter((n): n is string => n !== null).map((n) => reader.listRow(n)));
    const body: WireList = { now: Date.now(), rows: rows.filter((r) => r !== null) };
    return json(200, body);
  };

  const detail = async (route: Route, name: string) => {
    await requireView(route, name);
    let d;
    try {
      d = await reader.detail(name);
    } catch (error) {
      throw problemOfCore(error) ?? error;
    }
    return json(200, { ...d, can: await route.access.capabilities(name) }, { etag: `"${d.row.etag}"` });
  };

  const audit = async (route: Route, name: string) => {
    await requireView(route, name);
    const d = await reader.detail(name).catch((error: unknown) => {
      throw problemOfCore(error) ?? error;
    });
    return json(200, { now: d.now, name, runId: d.row.runId, ranges: d.ranges, timeline: d.timeline }, { etag: `"${d.row.etag}"` });
  };

  const plan = async (route: Route, name: string) => {
    await requireView(route, name);
    const d = await reader.detail(name).catch((error: unknown) => {
      throw problemOfCore(error) ?? error;
    });
    if (!d.plan.available) throw new HttpProblem(501, d.plan.reason, { field: "plan" });
    return json(200, d.plan, { etag: `"${d.row.etag}"` });
  };

  const config = async (route: Route, name: string) => {
    await requireView(route, name);
    const status = await readStatus(name);
    const d = await reader.detail(name).catch(() => null);
    return json(200, { name, config: configJson(status.config), etag: etagOf(status), history: d?.timeline?.filter((c) => c.kind === "config") ?? null }, {
      etag: `"${etagOf(status)}"`,
    });
  };

  /** The ETA now, or under a proposed config patch (`POST` with `{ config }`): nothing is written. */
  const estimateRoute = async (route: Route, name: string) => {
    await requireView(route, name);
    const body = route.request.method === "POST" ? await readJsonBody(route.request) : {};
    const patch = body.config === undefined ? undefined : patchOf(body.config);
    const status = await readStatus(name, true);
    let proposedConfig;
    try {
      proposedConfig = validateConfig({ ...status.config, ...patch });
    } catch (error) {
      throw problemOfCore(error) ?? error;
    }
    const { deferred } = await spreader.audit(name);
    const now = Date.now();
    const [current, proposed] = await Promise.all([
      etaOf(spreader, status, deferred, now),
      patch === undefined ? null : etaOf(spreader, status, deferred, now, patch).catch((error: unknown) => {
        throw problemOfCore(error) ?? error;
      }),
    ]);
    const schedule = scheduleAhead(proposedConfig, now);
    const peakPerSecond = Math.max(0, ...schedule.map((s) => s.perSecond));
    const result: WireEstimate = {
      now,
      config: configJson(proposedConfig),
      current,
      proposed: patch === undefined ? current : proposed,
      schedule,
      peakPerSecond,
      peakIdsPerSecond: peakPerSecond * proposedConfig.batchSize,
    };
    return json(200, result, { etag: `"${etagOf(status)}"` });
  };

  /**
   * The status monitor of a start. A start this process could not carry out (a dashboard without
   * the app's queue, as the CLI runs it) is a request that a worker fulfils with a run of its own:
   * the monitor then carries `?since=` (when it was requested) and follows the run started since.
   */
  const monitor = async (route: Route, name: string, runId: string) => {
    await requireView(route, name);
    const status = await readStatus(name, true);
    const sinceParam = route.url.searchParams.get("since");
    const since = sinceParam === null ? null : Number(sinceParam);
    if (since !== null && !Number.isFinite(since)) throw new HttpProblem(400, `since must be epoch milliseconds, got ${JSON.stringify(sinceParam)}`, { field: "since" });
    const requested = status.status === "starting" || (status as { request?: unknown }).request != null;
    const following = status.runId !== runId && since !== null && status.startedAt >= since;
    if (status.runId !== runId && !following) {
      throw new HttpProblem(410, `run ${runId} of backfill "${name}" is gone: run ${status.runId} replaced it`, { field: "runId" });
    }
    const waiting = since !== null && status.runId === runId && requested;
    if (!waiting && ENDED_STATES.has(status.status)) return empty(303, { location: recordPath(name, status.runId) });
    const row = await reader.row(name);
    const body: WireMonitor = {
      name,
      runId: status.runId,
      status: waiting ? "requested" : status.status,
      done: false,
      ids: row.ids,
      record: recordPath(name, status.runId),
    };
    return json(200, body, { "retry-after": "1" });
  };

  const record = async (route: Route, name: string, runId: string) => {
    await requireView(route, name);
    const status = await readStatus(name, true);
    if (status.runId !== runId) throw new HttpProblem(404, `run ${runId} of backfill "${name}" is not stored (the current run is ${status.runId})`, { field: "runId" });
    reader.invalidate(name);
    const d = await reader.detail(name);
    return json(200, { now: d.now, row: d.row, ranges: d.ranges }, { etag: `"${d.row.etag}"` });
  };

  /* ------------------------------------------------------------- changes */

  /** The row after a change, fresh, with its new version. */
  const answerRow = async (name: string, extra: Record<string, unknown> = {}, status = 200, headers: Record<string, string> = {}) => {
    reader.invalidate(name);
    hub.soon();
    const row = await reader.row(name);
    return json(status, { row, ...extra }, { etag: `"${row.etag}"`, ...headers });
  };

  const conflict = async (name: string, detail: string): Promise<HttpProblem> => {
    reader.invalidate(name);
    const current = await reader.row(name);
    return new HttpProblem(409, detail, { field: "If-Match", extra: { current }, headers: { etag: `"${current.etag}"` } });
  };

  /**
   * The frame of every change: the action must be allowed, the body is JSON, and `If-Match` names
   * the version the operator saw. A stale version answers 409 with the backfill as it is now.
   * With core's `revision`, core checks it again atomically (`expectedRevision`); without it the
   * check here is as close to the write as the runtime's API allows.
   */
  const change = async (
    route: Route,
    name: string,
    action: "pause" | "resume" | "cancel" | "retry" | "edit" | "repair",
    run: (context: { actor: string; reason: string | undefined; body: Record<string, unknown>; status: AnyStatus; options: ReturnType<typeof changeOptions> }) => Promise<Response>,
  ) => {
    await requireView(route, name);
    const actor = await route.access.require(action, name);
    const body = await readJsonBody(route.request);
    const header = route.request.headers.get("if-match");
    if (header === null) {
      throw new HttpProblem(428, `send If-Match with the backfill's ETag (from GET ${backfillPath(name)}), or "*" to change it whatever its state`, {
        field: "If-Match",
      });
    }
    const reason = optionalString(body, "reason");
    const status = await readStatus(name, true);
    const etag = etagOf(status);
    const match = parseIfMatch(header);
    if (!match.any && !match.tags.includes(etag)) {
      throw await conflict(name, `backfill "${name}" changed since you loaded it (now ${status.status}, version ${etag}): review its state and try again`);
    }
    const expected = !match.any && typeof status.revision === "number" ? status.revision : null;
    try {
      return await run({ actor, reason, body, status, options: changeOptions(actor, reason, expected) });
    } catch (error) {
      if (error instanceof HttpProblem) throw error;
      const p = problemOfCore(error);
      if (p && (error as SuperSpreaderError).code === "CONFLICT") throw await conflict(name, p.message);
      if (p && p.status === 409) throw await conflict(name, p.message);
      throw p ?? error;
    }
  };

  const pause = (route: Route, name: string) =>
    change(route, name, "pause", async ({ options }) => {
      await spreader.pause(name, options);
      return answerRow(name);
    });

  const resume = (route: Route, name: string) =>
    change(route, name, "resume", async ({ options }) => {
      await spreader.resume(name, options);
      return answerRow(name);
    });

  const retry = (route: Route, name: string) =>
    change(route, name, "retry", async ({ options }) => {
      const requeued = await spreader.retryFailed(name, options);
      return answerRow(name, { requeued });
    });

  const cancel = (route: Route, name: string) =>
    change(route, name, "cancel", async ({ body, options }) => {
      if (body.confirm !== name) {
        throw new HttpProblem(422, `to cancel, send confirm with the backfill's name ${JSON.stringify(name)}, got ${JSON.stringify(body.confirm ?? null)}`, {
          field: "confirm",
        });
      }
      await spreader.cancel(name, options);
      return answerRow(name);
    });

  const repair = (route: Route, name: string) =>
    change(route, name, "repair", async ({ options }) => {
      if (!extras.repair) throw new HttpProblem(501, "this version of @superspreader/core has no spreader.repair()", { field: "repair" });
      const result = await extras.repair(name, options);
      return answerRow(name, { repair: result ?? null });
    });

  const updateConfig = (route: Route, name: string) =>
    change(route, name, "edit", async ({ body, reason, options }) => {
      const patch = patchOf(body.config);
      if (reason === undefined) throw new HttpProblem(422, "say why in reason: every config change is recorded with one", { field: "reason" });
      await spreader.updateConfig(name, patch, options);
      return answerRow(name);
    });

  /**
   * Pins the rate (`perSecond`, batches per second) or the batch size so the closed loop leaves it alone;
   * `null` unpins. Needs the `edit` permission: a pin is live tuning, like a config change.
   */
  const pin = (route: Route, name: string) =>
    change(route, name, "edit", async ({ body, options }) => {
      if (!extras.pin) throw new HttpProblem(501, "this version of @superspreader/core has no spreader.pin()", { field: "pin" });
      const values: { perSecond?: number | null; batchSize?: number | null } = {};
      for (const key of Object.keys(body)) {
        if (key === "reason") continue;
        if (key !== "perSecond" && key !== "batchSize") throw new HttpProblem(422, `${key} cannot be pinned (expected perSecond or batchSize)`, { field: key });
        values[key] = body[key] as number | null;
      }
      if (Object.keys(values).length === 0) throw new HttpProblem(422, "nothing to pin: send perSecond or batchSize (a number, or null to unpin)", { field: "perSecond" });
      try {
        await extras.pin(name, values, options);
      } catch (error) {
        // core names the field as its argument (`values.perSecond`); the API names it in the body.
        const p = problemOfCore(error);
        if (p && p.status === 422 && typeof p.field === "string") throw new HttpProblem(422, p.message, { field: p.field.replace(/^values\./, ""), extra: { code: (error as SuperSpreaderError).code } });
        throw error;
      }
      return answerRow(name);
    });

  /** Starts (or restarts) a run: 202 with the monitor to poll. */
  const start = async (route: Route, name: string) => {
    const actor = await route.access.require("start", name);
    const body = await readJsonBody(route.request);
    const reason = optionalString(body, "reason");
    if (body.restart !== undefined && typeof body.restart !== "boolean") {
      throw new HttpProblem(422, `restart must be true or false, got ${JSON.stringify(body.restart)}`, { field: "restart" });
    }
    const header = route.request.headers.get("if-match");
    const before = await reader.status(name, true).catch(() => null);
    let expected: number | null = null;
    if (header !== null && before !== null) {
      const match = parseIfMatch(header);
      if (!match.any && !match.tags.includes(etagOf(before))) throw await conflict(name, `backfill "${name}" changed since you loaded it (now ${before.status})`);
      if (!match.any && typeof before.revision === "number") expected = before.revision;
    }
    let status;
    try {
      status = await spreader.start(name, {
        ...changeOptions(actor, reason, expected),
        ...(body.restart === true ? { restart: true } : {}),
        ...(body.config === undefined ? {} : { config: patchOf(body.config) }),
      });
    } catch (error) {
      throw problemOfCore(error) ?? error;
    }
    reader.invalidate(name);
    hub.soon();
    // Without the app's queue, core records a request a worker carries out with a new run: the monitor follows it.
    const request = (status as { request?: { at?: unknown } | null }).request;
    const requested = status.status === "starting" || (request !== null && request !== undefined);
    const since = requested ? (typeof request?.at === "number" ? request.at : Date.now()) : null;
    const location = `${monitorPath(name, status.runId)}${since === null ? "" : `?since=${since}`}`;
    return json(202, { name, runId: status.runId, status: status.status, requested, monitor: location }, { location });
  };

  /* -------------------------------------------------------------- router */

  const route = async (r: Route, segments: readonly string[]): Promise<Response> => {
    const method = r.request.method === "HEAD" ? "GET" : r.request.method;
    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) {
        const list = [...methods, ...(methods.includes("GET") ? ["HEAD"] : [])].join(", ");
        throw new HttpProblem(405, `${r.request.method} is not allowed here; use ${list}`, { field: "method", headers: { allow: list } });
      }
      return method;
    };
    const [first, second, name, ...rest] = segments;
    if (segments.length === 1 && first === "") {
      allow("GET");
      return text(200, SHELL_HTML, "text/html; charset=utf-8", "no-cache");
    }
    if (first === "assets" && segments.length === 2) {
      allow("GET");
      const file = ASSET_FILES[second ?? ""];
      if (!file) throw new HttpProblem(404, `no asset ${JSON.stringify(second)}`, { field: "path" });
      // Names carry a hash of the content: cache forever.
      return text(200, file.body, file.type, "public, max-age=31536000, immutable");
    }
    if (first !== "api") throw new HttpProblem(404, `nothing at ${r.url.pathname}`, { field: "path" });
    if (second === "session" && segments.length === 2) {
      allow("GET");
      return session(r);
    }
    if (second === "events" && segments.length === 2) {
      allow("GET");
      await r.access.require("view", null);
      const focus = r.url.searchParams.get("focus");
      if (focus !== null) await requireView(r, focus);
      return hub.stream(r.request, r.access, focus);
    }
    if (second !== "backfills") throw new HttpProblem(404, `nothing at ${r.url.pathname}`, { field: "path" });
    if (name === undefined) {
      allow("GET");
      return list(r);
    }
    if (name === "") throw new HttpProblem(404, "missing the backfill's name", { field: "name" });
    const [verb, runId, tail, ...more] = rest;
    if (more.length > 0) throw new HttpProblem(404, `nothing at ${r.url.pathname}`, { field: "path" });
    if (verb === "runs" && runId !== undefined && runId !== "") {
      allow("GET");
      if (tail === undefined) return record(r, name, runId);
      if (tail === "monitor") return monitor(r, name, runId);
    }
    const handlers = runId === undefined ? BACKFILL_ROUTES[verb ?? ""] : undefined;
    if (!handlers) throw new HttpProblem(404, `nothing at ${r.url.pathname}`, { field: "path" });
    return handlers[allow(...Object.keys(handlers))]!(r, name);
  };

  /** What answers below `api/backfills/NAME`, by the next path segment and the method. */
  const BACKFILL_ROUTES: Readonly<Record<string, Readonly<Record<string, (r: Route, name: string) => Promise<Response>>>>> = {
    "": { GET: detail },
    audit: { GET: audit },
    plan: { GET: plan },
    estimate: { GET: estimateRoute, POST: estimateRoute },
    config: { GET: config, PATCH: updateConfig },
    pause: { POST: pause },
    resume: { POST: resume },
    retry: { POST: retry },
    cancel: { POST: cancel },
    repair: { POST: repair },
    pin: { POST: pin },
    start: { POST: start },
  };

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    if (url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) {
      throw new HttpProblem(404, `nothing at ${url.pathname}: this dashboard is mounted at ${basePath || "/"}`, { field: "path" });
    }
    const rest = url.pathname.slice(basePath.length);
    // The page links relatively, so it must be served from a path ending in "/".
    if (rest === "") return empty(308, { location: `${basePath}/${url.search}` });
    checkCsrf(request, url.origin, trusted);
    if (request.method === "OPTIONS") return empty(204, { allow: "GET, HEAD, POST, PATCH, OPTIONS" });
    let segments: string[];
    try {
      segments = rest.slice(1).split("/").map(decodeURIComponent);
    } catch {
      throw new HttpProblem(400, `the path ${url.pathname} is not valid percent-encoding`, { field: "path" });
    }
    return route({ access: accessFor(request, options.authorize), request, url }, segments);
  };

  return {
    basePath,
    get liveStreams() {
      return hub.size;
    },
    async fetch(request) {
      let response: Response;
      try {
        response = await handle(request);
      } catch (error) {
        const p = error instanceof HttpProblem ? error : problemOfCore(error);
        response = p ? problem(p) : problem(new HttpProblem(500, `the dashboard failed: ${(error as Error)?.message ?? String(error)}`));
      }
      for (const [key, value] of Object.entries(SECURITY_HEADERS)) if (!response.headers.has(key)) response.headers.set(key, value);
      if (request.method === "HEAD") {
        await response.body?.cancel();
        return new Response(null, { status: response.status, headers: response.headers });
      }
      return response;
    },
    async close() {
      hub.close();
    },
  };
}

/** A config patch from a request body: an object of config fields (core validates the values). */
function patchOf(value: unknown): Partial<BackfillConfigInput> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpProblem(422, `config must be an object of config fields such as {"perSecondOnPeak": 3}, got ${JSON.stringify(value ?? null)}`, {
      field: "config",
    });
  }
  return value as Partial<BackfillConfigInput>;
}
