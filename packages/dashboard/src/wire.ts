/**
 * The JSON the dashboard's HTTP API sends, shared with the page's script (types only).
 *
 * Conventions: ids and id counts are decimal strings (they can exceed 2^53, and the page
 * must show them exactly); times are epoch milliseconds; rates are batches per second
 * unless a name says ids.
 *
 * @module
 */

/** What a request may do; `authorize(request, action, backfill)` decides. */
export type DashboardAction = "view" | "pause" | "resume" | "cancel" | "retry" | "edit" | "start" | "repair";

/** Every action, in the order the page shows controls. */
export const ACTIONS: readonly DashboardAction[] = ["view", "pause", "resume", "retry", "cancel", "edit", "start", "repair"];

/** What the viewer may do: one flag per action. */
export type Capabilities = Readonly<Record<DashboardAction, boolean>>;

/** `GET api/session`. */
export interface WireSession {
  /** Who the audit trail records for this viewer's changes. */
  readonly actor: string;
  /** True when no `authorize` hook was given: the page only shows. */
  readonly readOnly: boolean;
  readonly can: Capabilities;
  /** The page's title and environment badge (host options). */
  readonly title: string;
  readonly environment: string | null;
  /** Which of core's newer runtime features this server has (`plan`, `eta`, `repair`, revisions). */
  readonly features: WireFeatures;
  /** Milliseconds between live updates. */
  readonly refreshMs: number;
}

export interface WireFeatures {
  readonly plan: boolean;
  readonly eta: boolean;
  readonly repair: boolean;
  /** `spreader.pin` exists: the rate or batch size can be pinned from the page. */
  readonly pin: boolean;
  /** `status().revision` exists: If-Match is checked atomically by core, not only by the dashboard. */
  readonly revisions: boolean;
}

/** An inclusive id range. */
export interface WireRange {
  readonly beginId: string;
  readonly endId: string;
  /** Ids in it. */
  readonly ids: string;
}

/** The ETA of a running, paused or held backfill. */
export interface WireEta {
  /** When the next cycle starts (the estimate's origin). */
  readonly from: number;
  /** Through the peak calendar; null when no cycle will ever plan a batch (every rate in force is 0). */
  readonly finishAt: number | null;
  /** At the observed pace; null without an observation. */
  readonly observedFinishAt: number | null;
  readonly cyclesRemaining: number | null;
  readonly batchesRemaining: string;
  readonly idsRemaining: string;
  /** The finish lies more than 100 years out and was extrapolated. */
  readonly extrapolated: boolean;
  readonly observedIdsPerSecond: number | null;
  /** For a paused backfill: the estimate if it were resumed now. */
  readonly ifResumedNow: boolean;
}

/** The rate in force and the next window change. */
export interface WireWindow {
  readonly onPeak: boolean;
  /** Batches per second now. */
  readonly perSecond: number;
  readonly next: { readonly at: number; readonly onPeak: boolean; readonly perSecond: number } | null;
}

/** A backfill the dashboard could not read (corrupt state, a name core refuses, a store error). */
export interface WireUnreadableRow {
  readonly readable: false;
  readonly name: string;
  readonly status: "unreadable";
  readonly error: { readonly code: string; readonly message: string };
}

/** One row of the list: everything the overview shows about a backfill. */
export interface WireRow {
  readonly readable: true;
  readonly name: string;
  /** `running`, `paused`, `held`, `failed`, `completed`, `cancelled` (or a newer state, shown as is). */
  readonly status: string;
  readonly runId: string;
  /** The version mutations must name in `If-Match` (it changes on config, status and run changes, not on progress). */
  readonly etag: string;
  /** core's `status().revision`, when core has it. */
  readonly revision: number | null;
  readonly cycle: number;
  readonly ids: {
    readonly min: string;
    readonly max: string;
    readonly total: string;
    readonly done: string;
    /** Next id to plan; below `min` once every range has been enqueued. */
    readonly cursor: string;
    /** idsDone / idsTotal in percent, exact to 6 decimals ("12.345678"). */
    readonly percent: string;
  };
  /** Rows done and in total, when the host gave an id source that can count; `at` is when they were counted (counting is slow, so it runs with the ledger reads). */
  readonly rows: { readonly done: string; readonly total: string; readonly at: number } | null;
  readonly rate: {
    /** The batch size the next cycle plans with: the configured one, or what the closed loop tuned (or an operator pinned). */
    readonly batchSize: number;
    /** Batches per second in force now, under the configured rate (exact decimal string too). */
    readonly perSecond: number;
    readonly perSecondExact: string;
    /** `perSecond × batchSize`. */
    readonly idsPerSecond: number;
    /** The configured rate now: the ceiling the closed loop stays under, at the configured batch size. */
    readonly configured: { readonly perSecond: number; readonly batchSize: number; readonly idsPerSecond: number };
    /** Ids per second finished over the last 15 minutes, or null. */
    readonly observedIdsPerSecond: number | null;
  };
  readonly window: WireWindow;
  readonly eta: WireEta | null;
  readonly batches: { readonly done: number; readonly failed: number; readonly deferred: number };
  /** Failed ranges waiting for a retry (from the ledger), null until first read. */
  readonly failedRanges: number | null;
  readonly tick: {
    readonly nextTickAt: number;
    readonly overdueMs: number;
    /** Overdue by more than two cycles and a minute: the chain probably died. */
    readonly stalled: boolean;
    readonly revivals: number | null;
    readonly lastRevivedAt: number | null;
    readonly lastReason: string | null;
  };
  /** Why a `held` run holds itself, when core reports it. */
  readonly hold: {
    readonly since: number;
    readonly reason: string;
    readonly lastError: string | null;
    readonly probes: number;
    readonly nextProbeAt: number | null;
  } | null;
  /** Ranges found lost and requeued, when core reports it. */
  readonly reconciled: { readonly ranges: number } | null;
  /** What the closed loop (autotune, health, a shared budget, a deadline, pins) does to the run; null when nothing steers it. */
  readonly control: WireControl | null;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  readonly lastDoneAt: number | null;
}

export type WireListRow = WireRow | WireUnreadableRow;

/** `GET api/backfills`. */
export interface WireList {
  readonly now: number;
  readonly rows: readonly WireListRow[];
}

/** A peak window as stored: ISO weekdays (1 = Monday) and half-open local hours. */
export interface WirePeakWindow {
  readonly days: readonly number[];
  readonly hours: readonly [number, number];
}

/** A backfill's configuration (core's `BackfillConfig`). */
export interface WireConfig {
  readonly batchSize: number;
  readonly duration: number;
  readonly perSecondOnPeak: number;
  readonly perSecondOffPeak: number;
  readonly peak: { readonly timezone: string; readonly windows: readonly WirePeakWindow[] } | null;
  readonly maxAttempts: number;
  readonly priority: number | null;
  readonly spreadWithinSecond: boolean;
}

/** The rate chart: the last hour as observed and configured, and the schedule of the next 24 h. */
export interface WireChart {
  readonly now: number;
  /** Start of the chart (now − 1 h) and its end (now + 24 h). */
  readonly from: number;
  readonly to: number;
  /** Per-minute buckets of finished batches (the current minute counted over its elapsed part). */
  readonly observed: ReadonlyArray<{ readonly minute: number; readonly batchesPerSecond: number; readonly idsPerSecond: number }>;
  /** The configured rate as steps, past and future: the config in force at the time, through its peak windows. */
  readonly schedule: ReadonlyArray<{ readonly from: number; readonly to: number; readonly perSecond: number; readonly onPeak: boolean }>;
}

/** Failed ranges sharing an error. */
export interface WireErrorGroup {
  /** errorName and the message with numbers replaced by `#`. */
  readonly key: string;
  readonly errorName: string;
  /** The most recent message of the group, as recorded. */
  readonly message: string;
  readonly ranges: number;
  readonly ids: string;
  readonly firstAt: number;
  readonly lastAt: number;
  /** Up to 20 of its ranges, most recent first. */
  readonly sample: ReadonlyArray<WireRange & { readonly at: number; readonly attempts: number; readonly error: string }>;
}

/** A class of open ranges: how many, how many ids, and the first few. */
export interface WireRangeSet {
  readonly ranges: number;
  readonly ids: string;
  readonly sample: readonly WireRange[];
}

/** The ledger against the id space. */
export interface WireRanges {
  readonly done: { readonly ranges: number; readonly ids: string };
  readonly inFlight: WireRangeSet;
  readonly deferred: WireRangeSet;
  readonly notPlanned: WireRangeSet;
  readonly failed: { readonly ranges: number; readonly ids: string; readonly groups: readonly WireErrorGroup[] };
  /** Enqueued but neither in the queue's hands nor recorded (repair requeues them). */
  readonly lost: WireRangeSet;
}

/** One entry of the audit trail: config changes and state changes. */
export interface WireChange {
  readonly at: number;
  readonly actor: string;
  readonly reason: string | null;
  /** What the entry is about: "status", "config", "run", "retry" or "other". */
  readonly kind: "status" | "config" | "run" | "retry" | "other";
  /** Field → old and new value, as JSON text. */
  readonly changes: ReadonlyArray<{ readonly field: string; readonly from: string; readonly to: string }>;
}

/** One batch of the next cycle. */
export interface WirePlannedBatch extends WireRange {
  readonly runAt: number;
  readonly kind: string;
}

/** The next cycle's plan (core's `spreader.plan`), or why there is none. */
export type WirePlan =
  | {
      readonly available: true;
      readonly cycle: number;
      readonly beginAt: number;
      readonly perSecond: number;
      readonly onPeak: boolean;
      readonly slots: number;
      readonly cursorBefore: string;
      readonly cursorAfter: string;
      readonly nextTickAt: number;
      /** Batches in the plan; `batches` holds the first 200. */
      readonly total: number;
      readonly batches: readonly WirePlannedBatch[];
    }
  | { readonly available: false; readonly reason: string };

/** `GET api/backfills/NAME`: the row and everything the detail view shows. */
export interface WireDetail {
  readonly now: number;
  readonly row: WireRow;
  readonly config: WireConfig;
  readonly chart: WireChart;
  readonly ranges: WireRanges;
  /** Newest first; null when the host gave no store to read it from, or reading it failed (`timelineProblem` says why). */
  readonly timeline: readonly WireChange[] | null;
  readonly timelineProblem: string | null;
  readonly plan: WirePlan;
  /** What this viewer may do with this backfill (absent on the live stream, which sends it once as `can`). */
  readonly can?: Capabilities;
}

/** `POST api/backfills/NAME/estimate`: the ETA under a proposed config, beside the current one. */
export interface WireEstimate {
  readonly now: number;
  readonly config: WireConfig;
  readonly current: WireEta | null;
  readonly proposed: WireEta | null;
  /** The proposed config's schedule for the next 24 h (peak load). */
  readonly schedule: WireChart["schedule"];
  /** Most batches per second and ids per second the proposed config allows in the next 24 h. */
  readonly peakPerSecond: number;
  readonly peakIdsPerSecond: number;
}

/** `GET api/backfills/NAME/runs/RUN/monitor` while the run goes on. */
export interface WireMonitor {
  readonly name: string;
  /** The run followed: for a requested start, the run a worker started for it (once it did). */
  readonly runId: string;
  /** The run's state, or `requested` while a requested start waits for a worker. */
  readonly status: string;
  readonly done: false;
  readonly ids: WireRow["ids"];
  /** The run's record, where the monitor redirects once it ends. */
  readonly record: string;
}

/** A problem+json body (RFC 9457). */
export interface WireProblem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  /** The request field, header or config path at fault ("If-Match", "config.batchSize", "confirm", …). */
  readonly field?: string;
  /** core's error code, when core raised it. */
  readonly code?: string;
  /** With 409: the backfill as it is now. */
  readonly current?: WireRow;
}

/** Live stream messages (`GET api/events?focus=NAME`), by event name. */
export interface WireEvents {
  /** Rows changed since the last message (all of them in the first); `removed` names rows gone. */
  rows: { readonly now: number; readonly full: boolean; readonly rows: readonly WireListRow[]; readonly removed: readonly string[] };
  /** The focused backfill's detail, when it changed. */
  detail: WireDetail;
  /** The focused backfill could not be read (gone, hidden, unreadable). */
  detailError: WireProblem;
  /** The viewer's capabilities for the focused backfill (sent once per stream). */
  can: Capabilities;
}

/** What the closed loop does to a run, from core's `status().control`. Rates are batches per second. */
export interface WireControl {
  /** One line, as gh-ost's status: `"throttled: slow: replica lag 2.3 s > 1.5 s (2.55/s of 3/s, batch 850)"`. */
  readonly summary: string;
  /** In force now, and the configured ceiling it is under. */
  readonly perSecond: number;
  readonly ceiling: number;
  /** Autotune's share of the ceiling (1 = at the ceiling); null without autotune. */
  readonly autotuneShare: number | null;
  readonly batchSize: number;
  readonly configuredBatchSize: number;
  /** Values an operator pinned (the loop leaves them alone). */
  readonly pins: { readonly perSecond: number | null; readonly batchSize: number | null };
  /**
   * `stop`: a health indicator holds the run; `slow`: the loop's last congestion signal was an indicator saying
   * slow; `clear`: neither (core stores what it did with a reading, not the reading).
   */
  readonly health: { readonly state: "stop" | "slow" | "clear"; readonly reason: string | null };
  /** Deadline mode: whether the configured rates meet `finishBy`, at what share, when the run finishes, and otherwise what rates would. */
  readonly deadline: {
    readonly finishBy: number;
    readonly feasible: boolean;
    readonly share: number;
    readonly finishAt: number | null;
    readonly needs: { readonly perSecondOnPeak: number; readonly perSecondOffPeak: number } | null;
  } | null;
  /** The shared budget: its rate, this run's weight, the most it may take (null before its first claim) and that as a share of the budget. */
  readonly budget: { readonly key: string; readonly perSecond: number; readonly weight: number; readonly cap: number | null; readonly share: number | null } | null;
}
