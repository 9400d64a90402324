import { planDeadline, rateWindow, tally, type BackfillConfig, type BackfillStatus, type ConfigChange, type DeadlinePlan, type GapKind, type RunEta } from "@superspreader/core";
import { nameArg } from "./args.js";
import type { Command, Context, Output } from "./commands.js";
import { CliError, EXIT } from "./errors.js";
import * as f from "./format.js";
import {
  controlJson,
  controlLines,
  deadlineJson,
  deadlineLines,
  etaJson,
  etaLine,
  failureJson,
  failureText,
  gapJson,
  holdJson,
  holdLines,
  lastErrors,
  neverRan,
  observedDiffers,
  observedOf,
  budgetPeers,
  healthOf,
  lastTuned,
  ratesOf,
  requestJson,
  requestText,
  rowsOf,
  snapshot,
  stalled,
  watchdogJson,
  watchdogText,
  type Snapshot,
} from "./report.js";

/** A backfill whose first run waits for a worker has no run to show yet: what it waits for, in one line. */
function startingText(s: BackfillStatus, context: Context, now: number): string {
  return `${s.name} (${context.paint(s.status)}): no run yet; ${requestText(s, now) ?? "waiting for a worker"}`;
}

/* ----------------------------------------------------------------- list */

interface ListRow {
  readonly name: string;
  readonly snap: Snapshot | null;
  readonly error: string | null;
}

/** What needs a look, in a few words each: `2 failed ranges`, `held: 10 failed attempts in a row`, `revived 1×`. */
function notes(snap: Snapshot): string[] {
  const { status: s, audit } = snap;
  const lost = tally(audit.classified, "lost").ranges;
  return [
    audit.failed.length > 0 ? f.plural(audit.failed.length, "failed range") : "",
    lost > 0 ? f.plural(lost, "lost range") : "",
    s.hold ? `held: ${s.hold.reason}` : "",
    stalled(s) ? "stalled" : "",
    s.request && s.status !== "starting" ? "restart requested" : "",
    s.watchdog.revivals > 0 ? `revived ${f.int(s.watchdog.revivals)}×` : "",
    s.reconciled.ranges > 0 ? `${f.int(s.reconciled.ranges)} reconciled` : "",
  ].filter(Boolean);
}

export const list: Command = async ({ app, paint, args }) => {
  if (args.length > 0) throw new CliError(EXIT.USAGE, `unexpected argument ${JSON.stringify(args[0])}: superspreader list [--json]`);
  const names = await app.spreader.list();
  const rows: ListRow[] = await Promise.all(
    names.map(async (name) => {
      try {
        return { name, snap: await snapshot(app.spreader, name), error: null };
      } catch (error) {
        // One corrupt or unreadable backfill must not hide the others.
        return { name, snap: null, error: (error as Error).message.replace(/^\[superspreader\] /, "") };
      }
    }),
  );
  const json = {
    backfills: rows.map(({ name, snap, error }) => {
      if (snap === null) return { name, error };
      const { status: s, audit, eta } = snap;
      return {
        name,
        status: s.status,
        runId: s.runId,
        revision: s.revision,
        progress: { idsDone: s.progress.idsDone, idsTotal: s.progress.idsTotal, fraction: s.progress.fraction },
        failedRanges: audit.failed.length,
        lostRanges: tally(audit.classified, "lost").ranges,
        stalled: stalled(s),
        hold: holdJson(s),
        request: requestJson(s),
        watchdog: watchdogJson(s),
        reconciled: s.reconciled,
        eta: etaJson(eta),
      };
    }),
  };
  if (rows.length === 0) return { json, text: "No backfills are stored under this prefix (check --prefix, or start one)." };
  const now = Date.now();
  const table = rows.map(({ name, snap, error }) => {
    if (snap === null) return [name, "unreadable", "", error ?? ""];
    const { status: s, eta } = snap;
    const { progress } = s;
    const flags = notes(snap);
    return [
      name,
      paint(s.status),
      s.status === "starting" || neverRan(s)
        ? s.status === "starting"
          ? "(no run yet)"
          : "(no run)"
        : `${f.bar(progress.fraction, 20)} ${f.percent(progress.fraction).padStart(6)}  ${f.int(progress.idsDone)}/${f.int(progress.idsTotal)}`,
      etaLine(s, eta, now) + (flags.length > 0 ? `  [${flags.join(", ")}]` : ""),
    ];
  });
  return { json, text: f.table([["NAME", "STATE", "PROGRESS (ids)", "ETA"], ...table]) };
};

/* --------------------------------------------------------------- status */

/** `configured 5 batches/s × 10 = 50 ids/s`, or under the closed loop `in force 2.55 batches/s × 850 = … (configured 3 batches/s × 1,000)`. */
function rateText({ configured, inForce }: ReturnType<typeof ratesOf>, steered: boolean): string {
  const words = (r: { batchesPerSecond: number; batchSize: number; idsPerSecond: number }) =>
    `${f.rate(r.batchesPerSecond)} batches/s × ${f.int(r.batchSize)} = ${f.rate(r.idsPerSecond)} ids/s`;
  return steered ? `in force ${words(inForce)} (configured ${words(configured)})` : `configured ${words(configured)}`;
}

export const status: Command = async (context) => {
  const name = nameArg(context, "superspreader status NAME");
  const { app, paint } = context;
  const snap = await snapshot(app.spreader, name);
  const { status: s, audit, eta, now } = snap;
  const starting = s.status === "starting";
  const [rows, tuned, peers] = starting
    ? [null, null, []]
    : await Promise.all([rowsOf(app.sources[name], audit), s.control === null ? null : lastTuned(app.store, name), budgetPeers(app.spreader, s)]);
  const extras = { tuned, peers };
  const rates = ratesOf(s, now);
  const window = rateWindow(s.config, now);
  const observed = observedOf(s, now);
  const errors = lastErrors(audit.failed, 5);
  const finished = { ranges: audit.done.length, ids: audit.done.reduce((sum, r) => sum + r.endId - r.beginId + 1n, 0n) };
  const count = (kind: GapKind) => tally(audit.classified, kind);
  const [inFlight, deferred, failed, notPlanned, lost] = [count("in flight"), count("deferred"), count("failed"), count("not planned"), count("lost")];
  const rowFraction = rows && (rows.total === 0n ? 1 : Number((rows.done * 1_000_000n) / rows.total) / 1_000_000);

  const json = {
    name: s.name,
    status: s.status,
    runId: s.runId,
    revision: s.revision,
    cycle: s.cycle,
    startedAt: f.iso(s.startedAt),
    finishedAt: f.iso(s.finishedAt),
    nextTickAt: s.status === "running" || s.status === "held" ? f.iso(s.nextTickAt) : null,
    tickOverdueMs: s.tickOverdueMs,
    stalled: stalled(s),
    hold: holdJson(s),
    request: requestJson(s),
    watchdog: watchdogJson(s),
    reconciled: s.reconciled,
    // A first run that waits for a worker has no id space, rate or config of its own yet.
    ids: starting ? null : { minId: s.minId, maxId: s.initialId, cursor: s.cursor, total: s.progress.idsTotal, done: s.progress.idsDone, fraction: s.progress.fraction },
    rows: rows && { total: rows.total, done: rows.done, fraction: rowFraction },
    ranges: starting ? null : { finished, inFlight, deferred, failed, notPlanned, lost, outstanding: audit.outstanding.length },
    rate: starting
      ? null
      : {
          // The configured rate is the ceiling the closed loop keeps the rate in force under (the same without it).
          configured: rates.configured,
          inForce: rates.inForce,
          observed: observed === null ? null : { idsPerSecond: observed, batchesPerSecond: observed / rates.inForce.batchSize },
        },
    // Also without the loop: a health indicator's stop holds any run that has one.
    health: starting ? null : healthOf(s),
    control: starting ? null : controlJson(s, extras),
    window: starting ? null : { ...window, next: window.next && { ...window.next, at: f.iso(window.next.at) } },
    eta: etaJson(eta),
    lastErrors: errors.map(failureJson),
    config: starting ? null : s.config,
  };
  if (starting) return { json, text: startingText(s, context, now) };
  if (neverRan(s)) return { json, text: `${s.name} (${paint(s.status)}): cancelled ${f.relative(s.finishedAt ?? now, now)}, before any worker started its first run.` };

  const counted = (t: { ranges: number; ids: bigint }) => (t.ranges === 0 ? "none" : `${f.plural(t.ranges, "range")}, ${f.plural(t.ids, "id")}`);
  const pad = "              ";
  const request = requestText(s, now);
  const watchdog = watchdogText(s, now);
  const lines = [
    `${s.name}  ${paint(s.status)}  run ${s.runId} · cycle ${f.int(s.cycle)} · started ${f.when(s.startedAt, now)}`,
    ...(s.hold ? holdLines(s, now, pad).map((line, i) => (i === 0 ? `  HELD        ${line}` : line)) : []),
    ...(request ? [`  request     ${request}`] : []),
    `  ids         ${f.bar(s.progress.fraction)} ${f.percent(s.progress.fraction).padStart(6)}  ${f.int(s.progress.idsDone)} of ${f.int(s.progress.idsTotal)} (${f.int(s.minId)}..${f.int(s.initialId)})`,
    rows && rowFraction !== null
      ? `  rows        ${f.bar(rowFraction)} ${f.percent(rowFraction).padStart(6)}  ${f.int(rows.done)} of ${f.int(rows.total)}`
      : `  rows        (not counted: export \`sources\` from a --config module whose source can count rows)`,
    `  finished    ${counted(finished)}`,
    `  in flight   ${counted(inFlight)}`,
    `  deferred    ${counted(deferred)}`,
    `  failed      ${counted(failed)}`,
    ...(lost.ranges > 0
      ? [`  lost        ${counted(lost)}: enqueued, then neither in the queue nor recorded; the next ticks queue them again (\`superspreader repair ${s.name}\` now)`]
      : []),
    `  not planned ${notPlanned.ids === 0n ? "none" : `${f.plural(notPlanned.ids, "id")} (cursor at ${f.int(s.cursor)})`}`,
    ...(s.reconciled.ranges > 0 ? [`  reconciled  ${f.plural(s.reconciled.ranges, "range")} the queue lost or gave up on, found and queued again`] : []),
    `  rate        ${rateText(rates, s.control !== null)} · observed ${observed === null ? "nothing in the last 15 min" : `${f.rate(observed, 1)} ids/s`}`,
    ...controlLines(s, extras, now, pad),
    `  window      ${window.onPeak ? "on peak" : "off peak"} (${f.rate(window.perSecond)} batches/s)` +
      (window.next === null || s.config.peak === null
        ? s.config.peak === null
          ? ", no peak schedule"
          : ", never changes"
        : ` until ${f.localTime(window.next.at, s.config.peak.timezone)}, then ${window.next.onPeak ? "on" : "off"} peak at ${f.rate(window.next.perSecond)}/s`),
    ...(s.status === "running" ? [`  next tick   ${f.when(s.nextTickAt, now)}`] : []),
    ...(watchdog ? [`  watchdog    ${watchdog}`] : []),
    ...(stalled(s)
      ? [
          `  STALLED     the tick is ${f.span(s.tickOverdueMs)} late and no watchdog revived it: is a worker that defines ${s.name} running against this Redis? It revives the chain by itself.`,
        ]
      : []),
    `  eta         ${etaLine(s, eta, now)}`,
    ...(eta && observedDiffers(eta, s.config) && eta.observedFinishAt !== null ? [`${pad}at the observed pace: ${f.when(eta.observedFinishAt, now)}`] : []),
    errors.length === 0
      ? "  errors      none"
      : `  errors      ${f.plural(audit.failed.length, "failed range")}, latest first (\`superspreader retry-failed ${s.name}\` queues them again):`,
    ...errors.map((r) => `${pad}${failureText(r, now, pad)}`),
  ];
  return { json, text: lines.join("\n") };
};

/* ----------------------------------------------------------------- plan */

const PLAN_FIELDS = ["cycle", "kind", "late", "onPeak", "perSecond", "slots", "cursorBefore", "cursorAfter", "ifResumedNow"] as const;

/** What a run that has no next cycle is waiting for, or how to run it again. */
function noCycleText(s: BackfillStatus, context: Context, now: number): string {
  if (s.status === "starting") return startingText(s, context, now);
  const ended = s.finishedAt === null ? "" : ` (ended ${f.when(s.finishedAt, now)})`;
  return `${s.name} is ${context.paint(s.status)}${ended}: it has no next cycle. \`superspreader start ${s.name} --restart\` runs it again from the beginning.`;
}

export const plan: Command = async (context) => {
  const name = nameArg(context, "superspreader plan NAME");
  const { spreader } = context.app;
  // The planner the next tick runs, on the stored run: what it shows is what the tick enqueues if nothing changes first.
  const [s, p] = await Promise.all([spreader.status(name), spreader.plan(name)]);
  const now = Date.now();
  const fields = Object.fromEntries(PLAN_FIELDS.map((key) => [key, p === null ? null : p[key]]));
  const json = {
    name,
    status: s.status,
    dryRun: true,
    ended: p === null,
    ...fields,
    beginAt: p && f.iso(p.beginAt),
    nextTickAt: p && f.iso(p.nextTickAt),
    batches: (p?.batches ?? []).map((b) => ({ beginId: b.beginId, endId: b.endId, runAt: f.iso(b.runAt), kind: b.kind })),
  };
  if (p === null) return { json, text: noCycleText(s, context, now) };
  const requeued = p.batches.filter((b) => b.kind === "requeued").length;
  const probe = p.kind === "probe";
  const lines = [
    probe
      ? `${name} (${context.paint(s.status)}): the run holds itself; cycle ${f.int(p.cycle)} ${p.slots > 0 ? `sends one probe batch ${f.when(p.beginAt, now)}` : `sends no probe: the next is due ${f.when(p.nextTickAt, now)}`}`
      : `${name} (${context.paint(s.status)}): cycle ${f.int(p.cycle)} would start ${f.when(p.beginAt, now)}` +
        `, ${p.onPeak ? "on" : "off"} peak at ${f.rate(p.perSecond)} batches/s: ${f.plural(p.slots, "slot")} in its ${s.config.duration} s` +
        (p.late ? " (the tick is late: the cycle starts when it runs, without catching up)" : ""),
    ...(p.ifResumedNow ? [`  (paused: what the cycle would plan if resumed now)`] : []),
  ];
  if (p.batches.length === 0) {
    if (!probe) {
      lines.push(p.slots === 0 ? "  No batches: the rate is 0 in this window." : "  No batches: every range has been enqueued; the run completes once the ranges in flight are recorded.");
    }
  } else {
    const rows = p.batches.slice(0, context.limit).map((b, i) => [String(i), f.time(b.runAt, true), f.rangeText(b), b.kind]);
    lines.push(f.table([["#", "RUN AT", "RANGE", "KIND"], ...rows], "  "));
    if (p.batches.length > context.limit) lines.push(`  … ${f.int(p.batches.length - context.limit)} more (--limit or --json for all)`);
    lines.push(
      `  ${f.plural(p.batches.length, "batch", "batches")}: ${f.int(requeued)} requeued, ${f.int(p.batches.length - requeued)} ${probe ? "probe" : "fresh"}; cursor ${f.int(p.cursorBefore)} → ${f.int(p.cursorAfter)}.`,
    );
  }
  lines.push(`  Next tick ${f.when(p.nextTickAt, now)}. Dry run: nothing was enqueued.`);
  return { json, text: lines.join("\n") };
};

/* ------------------------------------------------------------- estimate */

/** `--finish-by` as epoch ms, or undefined without it; a usage error naming the flag and value otherwise. */
function finishByOption(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  // The form core's finishBy takes (an ISO instant; epoch ms too, which nobody types).
  const ms = /^\d{4}-\d{2}-\d{2}T/.test(raw) ? Date.parse(raw) : Number.NaN;
  if (!Number.isFinite(ms)) throw new CliError(EXIT.USAGE, `--finish-by must be an ISO 8601 instant such as 2026-12-24T00:00:00Z, got ${JSON.stringify(raw)}`);
  if (ms <= Date.now()) throw new CliError(EXIT.USAGE, `--finish-by ${f.time(ms)} has passed: give a later instant, got ${JSON.stringify(raw)}`);
  return ms;
}

/**
 * Whether the run meets its deadline (the config's, or `finishBy`), planned as the runtime plans it each
 * cycle: from the next cycle, over the fresh ids below the cursor and the deferred ranges. Null without one.
 */
async function deadlineOf(spreader: Context["app"]["spreader"], s: BackfillStatus, eta: RunEta, finishBy: number | undefined): Promise<DeadlinePlan | null> {
  if (finishBy === undefined && s.config.finishBy === null) return null;
  const { deferred } = await spreader.audit(s.name);
  return planDeadline({
    config: s.config,
    ...(finishBy === undefined ? {} : { finishBy }),
    from: eta.from,
    // Below the cursor and in the spans extend queued (the cursor alone misses those).
    idsRemaining: s.unplanned.reduce((sum, r) => sum + (r.endId - r.beginId + 1n), 0n),
    requeued: deferred,
  });
}

export const estimate: Command = async (context) => {
  const name = nameArg(context, "superspreader estimate NAME");
  const finishBy = finishByOption(context.options["finish-by"]);
  const { spreader } = context.app;
  const [s, eta] = await Promise.all([spreader.status(name), spreader.eta(name)]);
  const now = Date.now();
  const deadline = eta === null || s.status === "starting" ? null : await deadlineOf(spreader, s, eta, finishBy);
  const json = {
    name,
    status: s.status,
    finishedAt: f.iso(s.finishedAt),
    ...(etaJson(eta) ?? { finishAt: null, observedFinishAt: null }),
    deadline: deadline && { ...deadlineJson(deadline), source: finishBy === undefined ? "config" : "--finish-by" },
  };
  if (s.status === "starting") return { json, text: startingText(s, context, now) };
  if (eta === null) return { json, text: `${name} is ${context.paint(s.status)}${s.finishedAt === null ? "" : ` since ${f.when(s.finishedAt, now)}`}: nothing left to estimate.` };
  const pad = "             ";
  const lines = [
    `${name} (${context.paint(s.status)}${eta.ifResumedNow ? `, estimated as if ${s.status === "held" ? "the hold ended" : "resumed"} now` : ""})`,
    `  remaining  ${f.plural(eta.idsRemaining, "id")} in ${f.plural(eta.batchesRemaining, "batch", "batches")} (deferred ranges included); batches in flight are not counted`,
    `  calendar   ${etaLine(s, eta, now)}`,
    `  observed   ${
      eta.observedIdsPerSecond === null || eta.observedFinishAt === null
        ? "no batches finished in the last 15 min"
        : `${f.rate(eta.observedIdsPerSecond, 1)} ids/s → ${f.when(eta.observedFinishAt, now)}`
    }`,
    ...(deadline
      ? [
          ...deadlineLines(name, deadline, s.config, now, pad).map((line, i) => (i === 0 ? `  deadline   ${line}` : line)),
          ...(finishBy === undefined ? [] : [`${pad}(the deadline of --finish-by: nothing was written)`]),
        ]
      : []),
  ];
  return { json, text: lines.join("\n") };
};

/* ---------------------------------------------------------------- audit */

export const audit: Command = async (context) => {
  const name = nameArg(context, "superspreader audit NAME");
  const { spreader } = context.app;
  const [s, a] = await Promise.all([spreader.status(name), spreader.audit(name)]);
  const gaps = a.classified;
  const failedByRange = new Map(a.failed.map((r) => [`${r.beginId}-${r.endId}`, r]));
  const json = {
    name,
    runId: a.runId,
    status: s.status,
    minId: a.minId,
    maxId: a.initialId,
    cursor: s.cursor,
    complete: s.status !== "starting" && a.complete,
    done: a.done,
    gaps: gaps.map(gapJson),
    deferred: a.deferred,
    failed: a.failed.map(failureJson),
    outstanding: a.outstanding.map((e) => ({ beginId: e.beginId, endId: e.endId, cycle: e.cycle, checkAt: f.iso(e.checkAt) })),
  };
  if (s.status === "starting") return { json, text: startingText(s, context, Date.now()) };
  const doneIds = a.done.reduce((sum, r) => sum + r.endId - r.beginId + 1n, 0n);
  const gapIds = gaps.reduce((sum, g) => sum + g.endId - g.beginId + 1n, 0n);
  const lines = [
    `${name} (run ${a.runId}, ${context.paint(s.status)}): ids ${f.int(a.minId)}..${f.int(a.initialId)}`,
    `  done      ${f.plural(a.done.length, "range")}, ${f.plural(doneIds, "id")}`,
    `  gaps      ${a.complete ? "none: every id is recorded done" : `${f.plural(gaps.length, "range")}, ${f.plural(gapIds, "id")}`}`,
    ...f.limited(
      gaps,
      context.limit,
      (g) => {
        const failure = failedByRange.get(`${g.beginId}-${g.endId}`);
        return `${f.rangeText(g).padEnd(30)} ${g.kind}${failure ? `: ${failure.errorName}: ${failure.error.split("\n")[0]}` : ""}`;
      },
      "    ",
    ),
  ];
  if (gaps.some((g) => g.kind === "lost")) {
    lines.push(`  "lost" ranges were enqueued, then neither held by the queue nor recorded: the next ticks queue them again; \`superspreader repair ${name}\` does it now.`);
  }
  return { json, text: lines.join("\n") };
};

/* ----------------------------------------------------------- config get */

function historyJson(change: ConfigChange) {
  return { at: f.iso(change.at), actor: change.actor, reason: change.reason ?? null, changes: change.changes };
}

function configLines(config: BackfillConfig): string[][] {
  return (Object.keys(config) as (keyof BackfillConfig)[]).map((key) => [key, f.field(key, config[key])]);
}

export const configGet: Command = async (context): Promise<Output> => {
  const name = nameArg(context, "superspreader config get NAME");
  const s = await context.app.spreader.status(name);
  const history = context.app.store ? await context.app.store.listConfigChanges(name, context.limit) : null;
  const now = Date.now();
  const starting = s.status === "starting";
  const lines = starting
    ? [startingText(s, context, now), "  Its config is the definition's, stored when a worker starts the run.", ""]
    : [`${name} (run ${s.runId}, ${context.paint(s.status)})`, f.table(configLines(s.config), "  "), ""];
  if (history === null) lines.push("History: not available (export `store` from the --config module to read it).");
  else if (history.length === 0) lines.push("History: no changes recorded.");
  else {
    lines.push(`History, newest first (last ${history.length}):`);
    for (const change of history) {
      lines.push(`  ${f.time(change.at)} (${f.relative(change.at, now)})  ${change.actor}  ${f.describeChange(change.changes)}${change.reason ? `  "${change.reason}"` : ""}`);
    }
  }
  return {
    json: { name, runId: s.runId, status: s.status, config: starting ? null : s.config, history: history && history.map(historyJson) },
    text: lines.join("\n"),
  };
};

/* --------------------------------------------------------------- output */

/** Results read per round trip: a run's results (1 MiB by default) come in a few pages. */
const OUTPUT_PAGE = 1_000;

/**
 * The results a run's handlers returned (`config.output`), one JSON line per batch in the order they were
 * kept: `{"beginId","endId","at","result"}` with ids as decimal strings and `at` in ISO 8601.
 */
export const output: Command = async (context) => {
  const name = nameArg(context, "superspreader output NAME");
  const { spreader } = context.app;
  const runId = context.options.run;
  if (runId !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(runId)) {
    throw new CliError(EXIT.USAGE, `--run must be a run id (letters, digits, "_" or "-", as status shows), got ${JSON.stringify(runId)}`);
  }
  const current = runId ?? (await spreader.status(name)).runId;
  const lines: Array<{ beginId: string; endId: string; at: string | null; result: unknown }> = [];
  let totals = { count: 0, bytes: 0, dropped: 0 };
  for (let cursor: number | null = 0; cursor !== null; ) {
    const page = await spreader.output(name, { runId: current, cursor, limit: OUTPUT_PAGE });
    for (const e of page.entries) lines.push({ beginId: e.beginId.toString(), endId: e.endId.toString(), at: f.iso(e.at), result: JSON.parse(e.result) as unknown });
    totals = { count: page.count, bytes: page.bytes, dropped: page.dropped };
    cursor = page.next;
  }
  if (totals.count === 0 && totals.dropped === 0) {
    context.note(`${name}: run ${current} kept no results (do its handlers return any, with the config's output on?)`);
  }
  if (totals.dropped > 0) {
    context.note(`${name}: ${f.plural(totals.dropped, "result")} of run ${current} not kept: the run reached output.maxBytes (${f.int(totals.bytes)} bytes kept)`);
  }
  return {
    json: { name, runId: current, ...totals, entries: lines },
    text: lines.map((line) => `${JSON.stringify(line)}\n`).join(""),
    raw: true,
  };
};
