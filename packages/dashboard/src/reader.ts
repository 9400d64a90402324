import { isSuperSpreaderError, type IdSource, type StateStore } from "@superspreader/core";
import type { AnyStatus, DashboardSpreader } from "./compat.js";
import { HttpProblem } from "./http.js";
import { chartOf, configJson, etaOf, planOf, rangesOf, rowOf, timelineOf, windowOf, etagOf, type SlowPart } from "./model.js";
import type { WireDetail, WireListRow, WireRow, WireWindow } from "./wire.js";

/** Entries of the audit trail shown (and used to draw the configured rate of the last hour). */
const TIMELINE_LIMIT = 200;
/** Ledger ranges counted in rows at most; beyond it the row count is left out rather than slow. */
const MAX_COUNTED_RANGES = 1000;

export interface ReaderOptions {
  readonly spreader: DashboardSpreader;
  readonly store: Pick<StateStore, "listConfigChanges"> | undefined;
  readonly sources: Readonly<Record<string, IdSource>>;
  /** Statuses are read again when older than half of this. */
  readonly refreshMs: number;
  /** The ledger (audit, ETA, row counts) is read again when older than this, or at once when the version changed. */
  readonly slowMs: number;
  readonly now: () => number;
}

interface Cached<T> {
  readonly at: number;
  readonly value: Promise<T>;
}

/**
 * Reads backfills for every request and every live stream through one cache, so the load on the
 * store does not grow with the number of open tabs: a status is read at most twice per refresh
 * interval, the ledger at most once per `slowMs` (or when the backfill's version changes).
 */
export class Reader {
  private readonly statuses = new Map<string, Cached<AnyStatus>>();
  private readonly slow = new Map<string, Cached<SlowPart> & { readonly etag: string }>();
  private readonly windows = new Map<string, { readonly config: string; readonly until: number; readonly window: WireWindow }>();
  private readonly details = new Map<string, Cached<WireDetail>>();
  private namesCache: Cached<string[]> | null = null;

  constructor(private readonly options: ReaderOptions) {}

  private fresh(entry: { at: number } | undefined | null, ttl: number): boolean {
    return entry !== undefined && entry !== null && this.options.now() - entry.at < ttl;
  }

  /** Forgets what was read about `name` (after a change made here). */
  invalidate(name: string): void {
    this.statuses.delete(name);
    this.slow.delete(name);
    this.details.delete(name);
    this.namesCache = null;
  }

  names(): Promise<string[]> {
    if (!this.fresh(this.namesCache, this.options.refreshMs / 2)) {
      const value = this.options.spreader.list();
      this.namesCache = { at: this.options.now(), value };
      value.catch(() => (this.namesCache = null));
    }
    return this.namesCache!.value;
  }

  /** The status, from the cache unless `fresh` is asked for. */
  status(name: string, fresh = false): Promise<AnyStatus> {
    const cached = this.statuses.get(name);
    if (!fresh && this.fresh(cached, this.options.refreshMs / 2)) return cached!.value;
    const value = this.options.spreader.status(name) as Promise<AnyStatus>;
    this.statuses.set(name, { at: this.options.now(), value });
    value.catch(() => this.statuses.delete(name));
    return value;
  }

  private slowOf(status: AnyStatus): Promise<SlowPart> {
    const etag = etagOf(status);
    const cached = this.slow.get(status.name);
    if (cached && cached.etag === etag && this.fresh(cached, this.options.slowMs)) return cached.value;
    const value = this.readSlow(status);
    this.slow.set(status.name, { at: this.options.now(), etag, value });
    value.catch(() => this.slow.delete(status.name));
    return value;
  }

  private async readSlow(status: AnyStatus): Promise<SlowPart> {
    const { spreader, sources } = this.options;
    const audit = await spreader.audit(status.name);
    const [eta, rows] = await Promise.all([etaOf(spreader, status, audit.deferred, this.options.now()), this.rowsOf(sources[status.name], audit)]);
    return { audit, eta, rows };
  }

  private async rowsOf(source: IdSource | undefined, audit: SlowPart["audit"]): Promise<SlowPart["rows"]> {
    const count = source?.capabilities?.countRange;
    if (!count || audit.initialId < audit.minId || audit.done.length > MAX_COUNTED_RANGES) return null;
    const [total, ...done] = await Promise.all([count(audit.minId, audit.initialId), ...audit.done.map((r) => count(r.beginId, r.endId))]);
    return { total: total.toString(), done: done.reduce((sum, n) => sum + n, 0n).toString(), at: this.options.now() };
  }

  /** The window in force, computed again only when it ends or the config changes (it walks the calendar). */
  private windowOf(status: AnyStatus): WireWindow {
    const now = this.options.now();
    const config = JSON.stringify(status.config);
    const cached = this.windows.get(status.name);
    if (cached && cached.config === config && now < cached.until) return cached.window;
    const window = windowOf(status.config, now);
    this.windows.set(status.name, { config, until: window.next?.at ?? Number.POSITIVE_INFINITY, window });
    return window;
  }

  /**
   * The row of a backfill. The ledger part is awaited only the first time; after that a row is
   * answered with the last ledger read while a newer one is under way.
   */
  async row(name: string): Promise<WireRow> {
    const status = await this.status(name);
    const cached = this.slow.get(name);
    const slowPromise = this.slowOf(status);
    let slow: SlowPart | null = null;
    if (cached) {
      slow = await cached.value.catch(() => null);
    } else {
      slow = await slowPromise;
    }
    return rowOf(status, slow, this.windowOf(status), this.options.now());
  }

  /** A row, or why it cannot be read; null when the backfill is gone. */
  async listRow(name: string): Promise<WireListRow | null> {
    try {
      return await this.row(name);
    } catch (error) {
      if (isSuperSpreaderError(error) && error.code === "UNKNOWN_BACKFILL") return null;
      const e = error as { code?: unknown; message?: unknown };
      return {
        readable: false,
        name,
        status: "unreadable",
        error: { code: typeof e?.code === "string" ? e.code : "ERROR", message: typeof e?.message === "string" ? e.message : String(error) },
      };
    }
  }

  /** Everything the detail view shows. Throws core's errors (UNKNOWN_BACKFILL → 404 upstream). */
  detail(name: string): Promise<WireDetail> {
    const cached = this.details.get(name);
    if (this.fresh(cached, this.options.refreshMs / 2)) return cached!.value;
    const value = this.readDetail(name);
    this.details.set(name, { at: this.options.now(), value });
    value.catch(() => this.details.delete(name));
    return value;
  }

  private async readDetail(name: string): Promise<WireDetail> {
    const { spreader, store } = this.options;
    const status = await this.status(name);
    const [slow, trail, plan] = await Promise.all([
      this.slowOf(status),
      // The trail is one panel of the page: failing to read it must not blank the others.
      store
        ? store.listConfigChanges(name, TIMELINE_LIMIT).catch((error: unknown) => new Error(`the audit trail could not be read: ${(error as Error)?.message ?? String(error)}`))
        : Promise.resolve(null),
      planOf(spreader, name).catch((error: unknown) => ({
        available: false as const,
        reason: `spreader.plan() failed: ${(error as Error)?.message ?? String(error)}`,
      })),
    ]);
    const now = this.options.now();
    const changes = trail instanceof Error ? null : trail;
    return {
      now,
      row: rowOf(status, slow, this.windowOf(status), now),
      config: configJson(status.config),
      chart: chartOf(status, changes, now),
      ranges: rangesOf(status, slow.audit),
      timeline: changes && timelineOf(changes, status.config),
      timelineProblem: trail instanceof Error ? trail.message : null,
      plan,
    };
  }
}

/** Maps core's errors to HTTP problems naming the field. */
export function problemOfCore(error: unknown): HttpProblem | null {
  if (!isSuperSpreaderError(error)) return null;
  const field = error.field;
  const options = field === undefined ? { extra: { code: error.code } } : { field: fieldPath(error.code, field), extra: { code: error.code } };
  switch (error.code) {
    case "INVALID_CONFIG":
    case "INVALID_ARGUMENT":
      return new HttpProblem(422, error.message, options);
    case "UNKNOWN_BACKFILL":
      return new HttpProblem(404, error.message, { field: field ?? "name", extra: { code: error.code } });
    case "INVALID_STATE":
    case "CONFLICT":
      return new HttpProblem(409, error.message, options);
    default:
      return null;
  }
}

/** Config errors name a config field ("peak.hours[1]"); the API names it inside the body ("config.peak.hours[1]"). */
function fieldPath(code: string, field: string): string {
  return code === "INVALID_CONFIG" && field !== "config" && field !== "patch" ? `config.${field}` : field;
}
