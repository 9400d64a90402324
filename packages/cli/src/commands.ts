import { validateConfig, type BackfillConfig, type BackfillStatus, type ConfigChange, type FailedRange, type IdRange } from "@superspreader/core";
import { needsConfig, type App } from "./app.js";
import { CliError, EXIT } from "./errors.js";
import * as f from "./format.js";
import {
  classifyGaps,
  etaOf,
  lastErrors,
  observedOf,
  rowsOf,
  snapshot,
  tally,
  windowOf,
  type ClassifiedGap,
  type EtaReport,
  type Snapshot,
} from "./report.js";

/** What a command works with. */
export interface Context {
  readonly app: App;
  /** The positional arguments after the command words. */
  readonly args: readonly string[];
  readonly actor: string;
  readonly reason: string | undefined;
  readonly limit: number;
  readonly flags: { readonly yes: boolean; readonly restart: boolean; readonly dryRun: boolean };
  /** Colours the state word (a no-op without colours). */
  readonly paint: (state: string) => string;
}

/** A command's result: the JSON document for `--json` and the text for people. */
export interface Output {
  readonly json: unknown;
  readonly text: string;
}

export type Command = (context: Context) => Promise<Output>;

/* --------------------------------------------------------------- shared */

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const plural = (n: number | bigint, one: string, many = `${one}s`) => `${f.int(n)} ${n === 1 || n === 1n ? one : many}`;
const rangeText = (r: IdRange) => `${f.int(r.beginId)}..${f.int(r.endId)}`;

function nameArg(context: Context, usage: string): string {
  const [name, ...rest] = context.args;
  if (name === undefined) throw new CliError(EXIT.USAGE, `missing the backfill name: ${usage}`);
  if (rest.length > 0) throw new CliError(EXIT.USAGE, `unexpected argument ${JSON.stringify(rest[0])}: ${usage}`);
  return name;
}

function changeOptions(context: Context) {
  return { actor: context.actor, ...(context.reason === undefined ? {} : { reason: context.reason }) };
}

/** A stalled chain: running, but its tick is late by more than two cycles (and at least a minute). */
function stalled(status: BackfillStatus): boolean {
  return status.status === "running" && status.tickOverdueMs > Math.max(60_000, 2 * status.config.duration * 1000);
}

function etaJson(eta: EtaReport | null) {
  if (eta === null) return null;
  return {
    from: iso(eta.from),
    finishAt: iso(eta.finishAt),
    observedFinishAt: iso(eta.observedFinishAt),
    cyclesRemaining: eta.cyclesRemaining,
    batchesRemaining: eta.batchesRemaining,
    idsRemaining: eta.idsRemaining,
    observedIdsPerSecond: eta.observedIdsPerSecond,
    extrapolated: eta.extrapolated,
    ifResumedNow: eta.ifResumedNow,
  };
}

/** The ETA in one line, or why there is none. */
function etaLine(status: BackfillStatus, eta: EtaReport | null, now: number): string {
  if (eta === null) return status.finishedAt === null ? status.status : `ended ${f.when(status.finishedAt, now)}`;
  if (eta.finishAt === null) return "never at the configured rates (no cycle starts in a window whose rate is above 0)";
  const cycles = eta.cyclesRemaining === null ? "" : `, ${plural(eta.cyclesRemaining, "cycle")}`;
  return `${f.when(eta.finishAt, now)}${cycles}${eta.extrapolated ? ", extrapolated past 100 years" : ""}${eta.ifResumedNow ? ", if resumed now" : ""}`;
}

/** Whether the observed-pace finish is worth showing: it differs from the calendar's by more than a cycle. */
function observedDiffers(eta: EtaReport, config: BackfillConfig): boolean {
  return eta.observedFinishAt !== null && (eta.finishAt === null || Math.abs(eta.observedFinishAt - eta.finishAt) > config.duration * 1000);
}

function failureJson(r: FailedRange) {
  return { beginId: r.beginId, endId: r.endId, cycle: r.cycle, errorName: r.errorName, error: r.error, attempts: r.attempts, at: iso(r.at) };
}

function failureText(r: FailedRange, now: number): string {
  return `${rangeText(r)}  ${r.errorName}: ${r.error} (${plural(r.attempts, "attempt")}, ${f.relative(r.at, now)})`;
}

function gapJson(g: ClassifiedGap) {
  return { beginId: g.beginId, endId: g.endId, ids: g.endId - g.beginId + 1n, kind: g.kind };
}

function limited<T>(items: readonly T[], limit: number, render: (item: T) => string, indent: string): string[] {
  const lines = items.slice(0, limit).map((item) => indent + render(item));
  if (items.length > limit) lines.push(`${indent}… ${f.int(items.length - limit)} more (--limit ${items.length} or --json for all)`);
  return lines;
}

/* ----------------------------------------------------------------- list */

export const list: Command = async ({ app, paint, args }) => {
  if (args.length > 0) throw new CliError(EXIT.USAGE, `unexpected argument ${JSON.stringify(args[0])}: superspreader list [--json]`);
  const names = await app.spreader.list();
  const rows = await Promise.all(
    names.map(async (name) => {
      try {
        const snap = await snapshot(app.spreader, name);
        return { name, snap, eta: etaOf(snap), error: null };
      } catch (error) {
        // One corrupt or unreadable backfill must not hide the others.
        return { name, snap: null, eta: null, error: (error as Error).message.replace(/^\[superspreader\] /, "") };
      }
    }),
  );
  const json = {
    backfills: rows.map(({ name, snap, eta, error }) =>
      snap === null
        ? { name, error }
        : {
            name,
            status: snap.status.status,
            runId: snap.status.runId,
            progress: { idsDone: snap.status.progress.idsDone, idsTotal: snap.status.progress.idsTotal, fraction: snap.status.progress.fraction },
            failedRanges: snap.audit.failed.length,
            stalled: stalled(snap.status),
            eta: etaJson(eta),
          },
    ),
  };
  if (rows.length === 0) return { json, text: "No backfills are stored under this prefix (check --prefix, or start one)." };
  const now = Date.now();
  const table = rows.map(({ name, snap, eta, error }) => {
    if (snap === null) return [name, "unreadable", "", error ?? ""];
    const { progress } = snap.status;
    const flags = [snap.audit.failed.length > 0 ? `${plural(snap.audit.failed.length, "failed range")}` : "", stalled(snap.status) ? "stalled" : ""].filter(Boolean);
    return [
      name,
      paint(snap.status.status),
      `${f.bar(progress.fraction, 20)} ${f.percent(progress.fraction).padStart(6)}  ${f.int(progress.idsDone)}/${f.int(progress.idsTotal)}`,
      etaLine(snap.status, eta, now) + (flags.length > 0 ? `  [${flags.join(", ")}]` : ""),
    ];
  });
  return { json, text: f.table([["NAME", "STATE", "PROGRESS (ids)", "ETA"], ...table]) };
};

/* --------------------------------------------------------------- status */

export const status: Command = async (context) => {
  const name = nameArg(context, "superspreader status NAME");
  const { app, paint } = context;
  const snap = await snapshot(app.spreader, name);
  const { status: s, audit, now } = snap;
  const rows = await rowsOf(app.sources[name], snap);
  const gaps = classifyGaps(snap);
  const eta = etaOf(snap);
  const window = windowOf(s.config, now);
  const observed = observedOf(s, now);
  const errors = lastErrors(audit.failed, 5);
  const finished = { ranges: audit.done.length, ids: audit.done.reduce((sum, r) => sum + r.endId - r.beginId + 1n, 0n) };
  const inFlight = tally(gaps, "in flight");
  const deferred = tally(gaps, "deferred");
  const failed = tally(gaps, "failed");
  const notPlanned = tally(gaps, "not planned");
  const missing = tally(gaps, "missing");
  const rowFraction = rows && (rows.total === 0n ? 1 : Number((rows.done * 1_000_000n) / rows.total) / 1_000_000);

  const json = {
    name: s.name,
    status: s.status,
    runId: s.runId,
    cycle: s.cycle,
    startedAt: iso(s.startedAt),
    finishedAt: iso(s.finishedAt),
    nextTickAt: s.status === "running" ? iso(s.nextTickAt) : null,
    tickOverdueMs: s.tickOverdueMs,
    stalled: stalled(s),
    ids: { minId: s.minId, maxId: s.initialId, cursor: s.cursor, total: s.progress.idsTotal, done: s.progress.idsDone, fraction: s.progress.fraction },
    rows: rows && { total: rows.total, done: rows.done, fraction: rowFraction },
    ranges: { finished, inFlight, deferred, failed, notPlanned, missing },
    rate: {
      configured: { batchesPerSecond: s.rate.perSecond, idsPerSecond: s.rate.perSecond * s.config.batchSize, onPeak: s.rate.onPeak },
      observed: observed === null ? null : { idsPerSecond: observed, batchesPerSecond: observed / s.config.batchSize },
    },
    window: { ...window, next: window.next && { ...window.next, at: iso(window.next.at) } },
    eta: etaJson(eta),
    lastErrors: errors.map(failureJson),
    config: s.config,
  };

  const counted = (t: { ranges: number; ids: bigint }) => (t.ranges === 0 ? "none" : `${plural(t.ranges, "range")}, ${plural(t.ids, "id")}`);
  const lines = [
    `${s.name}  ${paint(s.status)}  run ${s.runId} · cycle ${f.int(s.cycle)} · started ${f.when(s.startedAt, now)}`,
    `  ids         ${f.bar(s.progress.fraction)} ${f.percent(s.progress.fraction).padStart(6)}  ${f.int(s.progress.idsDone)} of ${f.int(s.progress.idsTotal)} (${f.int(s.minId)}..${f.int(s.initialId)})`,
    rows && rowFraction !== null
      ? `  rows        ${f.bar(rowFraction)} ${f.percent(rowFraction).padStart(6)}  ${f.int(rows.done)} of ${f.int(rows.total)}`
      : `  rows        (not counted: export \`sources\` from a --config module whose source can count rows)`,
    `  finished    ${counted(finished)}`,
    `  in flight   ${counted(inFlight)}`,
    `  deferred    ${counted(deferred)}`,
    `  failed      ${counted(failed)}`,
    ...(missing.ranges > 0 ? [`  missing     ${counted(missing)} (enqueued but never recorded: see \`superspreader audit ${s.name}\`)`] : []),
    `  not planned ${notPlanned.ids === 0n ? "none" : `${plural(notPlanned.ids, "id")} (cursor at ${f.int(s.cursor)})`}`,
    `  rate        configured ${f.rate(s.rate.perSecond)} batches/s × ${f.int(s.config.batchSize)} = ${f.rate(s.rate.perSecond * s.config.batchSize)} ids/s` +
      ` · observed ${observed === null ? "nothing in the last 15 min" : `${f.rate(observed, 1)} ids/s`}`,
    `  window      ${window.onPeak ? "on peak" : "off peak"} (${f.rate(window.perSecond)} batches/s)` +
      (window.next === null || s.config.peak === null
        ? s.config.peak === null
          ? ", no peak schedule"
          : ", never changes"
        : ` until ${f.localTime(window.next.at, s.config.peak.timezone)}, then ${window.next.onPeak ? "on" : "off"} peak at ${f.rate(window.next.perSecond)}/s`),
    ...(s.status === "running" ? [`  next tick   ${f.when(s.nextTickAt, now)}`] : []),
    ...(stalled(s)
      ? [`  STALLED     the tick is ${f.span(s.tickOverdueMs)} late: revive it with \`superspreader resume ${s.name} --config <module>\``]
      : []),
    `  eta         ${etaLine(s, eta, now)}`,
    ...(eta && observedDiffers(eta, s.config) && eta.observedFinishAt !== null ? [`              at the observed pace: ${f.when(eta.observedFinishAt, now)}`] : []),
    errors.length === 0
      ? "  errors      none"
      : `  errors      ${plural(audit.failed.length, "failed range")}, latest first (\`superspreader retry-failed ${s.name}\` queues them again):`,
    ...errors.map((r) => `              ${failureText(r, now)}`),
  ];
  return { json, text: lines.join("\n") };
};

/* -------------------------------------------------------------- changes */

function transition(verb: string): (before: BackfillStatus, after: BackfillStatus, paint: (s: string) => string) => Output {
  return (before, after, paint) => ({
    json: { name: after.name, runId: after.runId, previous: before.status, status: after.status },
    text:
      before.status === after.status
        ? `${after.name} is already ${paint(after.status)}; nothing to ${verb}.`
        : `${after.name}: ${paint(before.status)} → ${paint(after.status)}`,
  });
}

export const pause: Command = async (context) => {
  const name = nameArg(context, "superspreader pause NAME");
  const before = await context.app.spreader.status(name);
  const after = await context.app.spreader.pause(name, changeOptions(context));
  return transition("pause")(before, after, context.paint);
};

export const resume: Command = async (context) => {
  const name = nameArg(context, "superspreader resume NAME --config MODULE");
  if (!context.app.hasQueue) throw needsConfig("resume enqueues a tick");
  const before = await context.app.spreader.status(name);
  const after = await context.app.spreader.resume(name, changeOptions(context));
  const out = transition("resume")(before, after, context.paint);
  return before.status === "running" ? { ...out, text: `${name} was running: its tick chain was revived.` } : out;
};

export const cancel: Command = async (context) => {
  const name = nameArg(context, "superspreader cancel NAME --yes");
  const before = await context.app.spreader.status(name);
  // Only a cancel that would end something needs confirming: core refuses an ended run (exit 1) and a cancelled one is a no-op.
  const ends = before.status !== "cancelled" && before.status !== "completed" && before.status !== "failed";
  if (!context.flags.yes && ends) {
    throw new CliError(EXIT.USAGE, `cancel ends run ${before.runId} of ${name} (${before.status}) for good; add --yes to confirm`);
  }
  const after = await context.app.spreader.cancel(name, changeOptions(context));
  return transition("cancel")(before, after, context.paint);
};

export const retryFailed: Command = async (context) => {
  const name = nameArg(context, "superspreader retry-failed NAME");
  const before = await context.app.spreader.status(name);
  // A failed run has no tick left: retrying must enqueue one, so refuse before anything moves.
  if (before.status === "failed" && !context.app.hasQueue) throw needsConfig(`${name} has failed: retrying revives it with a tick`);
  const moved = await context.app.spreader.retryFailed(name, changeOptions(context));
  const after = moved > 0 ? await context.app.spreader.status(name) : before;
  return {
    json: { name, runId: after.runId, requeued: moved, previous: before.status, status: after.status },
    text:
      moved === 0
        ? `${name} has no failed ranges; nothing to retry.`
        : `${name}: ${plural(moved, "failed range")} queued again; the next cycles enqueue ${moved === 1 ? "it" : "them"} first (${context.paint(after.status)}).`,
  };
};

export const start: Command = async (context) => {
  const name = nameArg(context, "superspreader start NAME --config MODULE");
  if (!context.app.hasQueue) throw needsConfig("start reads the backfill's definition and enqueues its first tick");
  const before = (await context.app.spreader.list()).includes(name) ? await context.app.spreader.status(name) : null;
  const after = await context.app.spreader.start(name, { ...changeOptions(context), restart: context.flags.restart });
  const started = before === null || before.runId !== after.runId;
  return {
    json: { name, runId: after.runId, started, previous: before?.status ?? null, status: after.status, ids: { minId: after.minId, maxId: after.initialId } },
    text: started
      ? `${name}: started run ${after.runId} over ids ${f.int(after.minId)}..${f.int(after.initialId)} (${context.paint(after.status)})`
      : `${name} is ${context.paint(after.status)} (run ${after.runId})${after.status === "running" ? "; its tick chain was checked" : "; add --restart for a new run"}`,
  };
};

/* --------------------------------------------------------------- config */

function historyJson(change: ConfigChange) {
  return { at: iso(change.at), actor: change.actor, reason: change.reason ?? null, changes: change.changes };
}

function configLines(config: BackfillConfig): string[][] {
  return (Object.keys(config) as (keyof BackfillConfig)[]).map((key) => [key, key === "peak" ? f.peak(config.peak) : f.value(config[key])]);
}

export const configGet: Command = async (context) => {
  const name = nameArg(context, "superspreader config get NAME");
  const s = await context.app.spreader.status(name);
  const history = context.app.store ? await context.app.store.listConfigChanges(name, context.limit) : null;
  const now = Date.now();
  const lines = [`${name} (run ${s.runId}, ${context.paint(s.status)})`, f.table(configLines(s.config), "  "), ""];
  if (history === null) lines.push("History: not available (export `store` from the --config module to read it).");
  else if (history.length === 0) lines.push("History: no changes recorded.");
  else {
    lines.push(`History, newest first (last ${history.length}):`);
    for (const change of history) {
      lines.push(`  ${f.time(change.at)} (${f.relative(change.at, now)})  ${change.actor}  ${f.describeChange(change.changes)}${change.reason ? `  "${change.reason}"` : ""}`);
    }
  }
  return { json: { name, runId: s.runId, status: s.status, config: s.config, history: history && history.map(historyJson) }, text: lines.join("\n") };
};

/** Parses `key=value` words: values are JSON when they parse as JSON, strings otherwise. */
function parseAssignments(words: readonly string[]): Record<string, unknown> {
  if (words.length === 0) throw new CliError(EXIT.USAGE, "nothing to set: superspreader config set NAME key=value... (e.g. perSecondOffPeak=10)");
  const patch: Record<string, unknown> = {};
  for (const word of words) {
    const at = word.indexOf("=");
    if (at <= 0) throw new CliError(EXIT.USAGE, `${JSON.stringify(word)} is not key=value (e.g. perSecondOffPeak=10); nothing was changed`);
    const key = word.slice(0, at);
    const raw = word.slice(at + 1);
    if (key in patch) throw new CliError(EXIT.USAGE, `${key} is set twice; nothing was changed`);
    try {
      patch[key] = JSON.parse(raw);
    } catch {
      patch[key] = raw;
    }
  }
  return patch;
}

function diff(before: BackfillConfig, after: BackfillConfig): Record<string, { from: unknown; to: unknown }> {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const key of Object.keys(after) as (keyof BackfillConfig)[]) {
    if (JSON.stringify(after[key]) !== JSON.stringify(before[key])) changes[key] = { from: before[key], to: after[key] };
  }
  return changes;
}

export const configSet: Command = async (context) => {
  const [name, ...words] = context.args;
  if (name === undefined) throw new CliError(EXIT.USAGE, "missing the backfill name: superspreader config set NAME key=value...");
  const patch = parseAssignments(words);
  const { spreader } = context.app;
  const snap = context.flags.dryRun ? await snapshot(spreader, name) : null;
  const before = snap?.status.config ?? (await spreader.status(name)).config;
  // Validated in full before anything is written: a bad value changes nothing.
  const proposed = validateConfig({ ...before, ...patch });
  const after = context.flags.dryRun ? proposed : await spreader.updateConfig(name, patch, changeOptions(context));
  const changes = diff(before, after);
  const keys = Object.keys(changes);
  const describe = (key: string) => {
    const { from, to } = changes[key] as { from: unknown; to: unknown };
    return key === "peak" ? `peak: ${f.peak(from as BackfillConfig["peak"])} → ${f.peak(to as BackfillConfig["peak"])}` : `${key}: ${f.value(from)} → ${f.value(to)}`;
  };
  const eta = snap && { before: etaOf(snap), after: etaOf(snap, after) };
  const now = Date.now();
  const lines =
    keys.length === 0
      ? [`${name}: no change (the config already has these values).`]
      : [
          `${name}: ${context.flags.dryRun ? "would change" : "changed"} ${plural(keys.length, "field")}${context.flags.dryRun ? " (dry run, nothing written)" : ", applied from the next cycle"}:`,
          ...keys.map((key) => `  ${describe(key)}`),
          ...(!context.flags.dryRun && context.reason ? [`  reason: ${context.reason}`] : []),
        ];
  if (eta?.before && eta.after) {
    const etaText = (e: EtaReport) => (e.finishAt === null ? "never" : f.when(e.finishAt, now));
    lines.push(`  eta: ${etaText(eta.before)} → ${etaText(eta.after)}`);
  }
  return {
    json: {
      name,
      dryRun: context.flags.dryRun,
      changes,
      config: after,
      ...(eta ? { eta: { before: etaJson(eta.before), after: etaJson(eta.after) } } : {}),
    },
    text: lines.join("\n"),
  };
};

/* ----------------------------------------------------- plan, estimate, audit */

const PLAN_FIELDS = ["cycle", "kind", "beginAt", "late", "onPeak", "perSecond", "slots", "cursorBefore", "cursorAfter", "nextTickAt", "ifResumedNow"] as const;

/** What a run that has no next cycle is waiting for, or how to run it again. */
function noCycleText(s: BackfillStatus, now: number): string {
  if (s.status === "starting") return `${s.name} is starting: no worker defining it has started the run yet, so there is no cycle to plan.`;
  const ended = s.finishedAt === null ? "" : ` (ended ${f.when(s.finishedAt, now)})`;
  return `${s.name} is ${s.status}${ended}: it has no next cycle. \`superspreader start ${s.name} --restart\` runs it again from the beginning.`;
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
    beginAt: p && iso(p.beginAt),
    nextTickAt: p && iso(p.nextTickAt),
    batches: (p?.batches ?? []).map((b) => ({ beginId: b.beginId, endId: b.endId, runAt: iso(b.runAt), kind: b.kind })),
  };
  if (p === null) return { json, text: noCycleText(s, now) };
  const requeued = p.batches.filter((b) => b.kind === "requeued").length;
  const probe = p.kind === "probe";
  const lines = [
    probe
      ? `${name} (${context.paint(s.status)}): the run holds itself; cycle ${f.int(p.cycle)} ${p.slots > 0 ? `sends one probe batch ${f.when(p.beginAt, now)}` : `sends no probe: the next is due ${f.when(p.nextTickAt, now)}`}`
      : `${name} (${context.paint(s.status)}): cycle ${f.int(p.cycle)} would start ${f.when(p.beginAt, now)}` +
        `, ${p.onPeak ? "on" : "off"} peak at ${f.rate(p.perSecond)} batches/s: ${plural(p.slots, "slot")} in its ${s.config.duration} s` +
        (p.late ? " (the tick is late: the cycle starts when it runs, without catching up)" : ""),
    ...(p.ifResumedNow ? [`  (paused: what the cycle would plan if resumed now)`] : []),
  ];
  if (p.batches.length === 0) {
    if (!probe) {
      lines.push(p.slots === 0 ? "  No batches: the rate is 0 in this window." : "  No batches: every range has been enqueued; the run completes once the ranges in flight are recorded.");
    }
  } else {
    const rows = p.batches.slice(0, context.limit).map((b, i) => [String(i), f.time(b.runAt, true), rangeText(b), b.kind]);
    lines.push(f.table([["#", "RUN AT", "RANGE", "KIND"], ...rows], "  "));
    if (p.batches.length > context.limit) lines.push(`  … ${f.int(p.batches.length - context.limit)} more (--limit or --json for all)`);
    lines.push(
      `  ${plural(p.batches.length, "batch", "batches")}: ${f.int(requeued)} requeued, ${f.int(p.batches.length - requeued)} ${probe ? "probe" : "fresh"}; cursor ${f.int(p.cursorBefore)} → ${f.int(p.cursorAfter)}.`,
    );
  }
  lines.push(`  Next tick ${f.when(p.nextTickAt, now)}. Dry run: nothing was enqueued.`);
  return { json, text: lines.join("\n") };
};

export const estimateCommand: Command = async (context) => {
  const name = nameArg(context, "superspreader estimate NAME");
  const snap = await snapshot(context.app.spreader, name);
  const { status: s, now } = snap;
  const eta = etaOf(snap);
  const json = { name, status: s.status, finishedAt: iso(s.finishedAt), ...(etaJson(eta) ?? { finishAt: null, observedFinishAt: null }) };
  if (eta === null) return { json, text: `${name} is ${context.paint(s.status)}${s.finishedAt === null ? "" : ` since ${f.when(s.finishedAt, now)}`}: nothing left to estimate.` };
  const lines = [
    `${name} (${context.paint(s.status)}${eta.ifResumedNow ? ", estimated as if resumed now" : ""})`,
    `  remaining  ${plural(eta.idsRemaining, "id")} in ${plural(eta.batchesRemaining, "batch", "batches")} (${plural(snap.audit.deferred.length, "deferred range")} included); batches in flight are not counted`,
    `  calendar   ${etaLine(s, eta, now)}`,
    `  observed   ${
      eta.observedIdsPerSecond === null || eta.observedFinishAt === null
        ? "no batches finished in the last 15 min"
        : `${f.rate(eta.observedIdsPerSecond, 1)} ids/s → ${f.when(eta.observedFinishAt, now)}`
    }`,
  ];
  return { json, text: lines.join("\n") };
};

export const audit: Command = async (context) => {
  const name = nameArg(context, "superspreader audit NAME");
  const snap = await snapshot(context.app.spreader, name);
  const { status: s, audit: a } = snap;
  const gaps = classifyGaps(snap);
  const failedByRange = new Map(a.failed.map((r) => [`${r.beginId}-${r.endId}`, r]));
  const json = {
    name,
    runId: a.runId,
    status: s.status,
    minId: a.minId,
    maxId: a.initialId,
    cursor: s.cursor,
    complete: a.complete,
    done: a.done,
    gaps: gaps.map(gapJson),
    deferred: a.deferred,
    failed: a.failed.map(failureJson),
  };
  const doneIds = a.done.reduce((sum, r) => sum + r.endId - r.beginId + 1n, 0n);
  const gapIds = gaps.reduce((sum, g) => sum + g.endId - g.beginId + 1n, 0n);
  const lines = [
    `${name} (run ${a.runId}, ${context.paint(s.status)}): ids ${f.int(a.minId)}..${f.int(a.initialId)}`,
    `  done      ${plural(a.done.length, "range")}, ${plural(doneIds, "id")}`,
    `  gaps      ${a.complete ? "none: every id is recorded done" : `${plural(gaps.length, "range")}, ${plural(gapIds, "id")}`}`,
    ...limited(
      gaps,
      context.limit,
      (g) => {
        const failure = failedByRange.get(`${g.beginId}-${g.endId}`);
        return `${rangeText(g).padEnd(30)} ${g.kind}${failure ? `: ${failure.errorName}: ${failure.error}` : ""}`;
      },
      "    ",
    ),
  ];
  if (gaps.some((g) => g.kind === "missing")) lines.push(`  "missing" ranges were enqueued but never recorded; \`superspreader start ${name} --restart --config …\` runs the backfill again.`);
  return { json, text: lines.join("\n") };
};
