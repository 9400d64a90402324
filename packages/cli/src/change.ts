import { planDeadline, validateConfig, type BackfillConfig, type BackfillStatus, type DeadlinePlan, type ExtendSummary, type RepairSummary } from "@superspreader/core";
import type { App } from "./app.js";
import { changeOptions, meant, nameArg, parseAssignments } from "./args.js";
import type { Command, Context, Output } from "./commands.js";
import { CliError, EXIT } from "./errors.js";
import * as f from "./format.js";
import { deadlineJson, deadlineRefusal, ended, etaJson, stalled } from "./report.js";

/** What happens after a change written without the app's queue: the workers' watchdog enqueues the tick. */
const BY_WATCHDOG = "a worker's watchdog enqueues its tick within seconds";

function transition(before: BackfillStatus, after: BackfillStatus, verb: string, context: Context, next = ""): Output {
  const { paint } = context;
  return {
    json: { name: after.name, runId: after.runId, previous: before.status, status: after.status },
    text:
      before.status === after.status
        ? `${after.name} is already ${paint(after.status)}; nothing to ${verb}.`
        : `${after.name}: ${paint(before.status)} → ${paint(after.status)}${next ? `; ${next}` : ""}`,
  };
}

/* -------------------------------------------------------------- states */

export const pause: Command = async (context) => {
  const name = nameArg(context, "superspreader pause NAME");
  const before = await context.app.spreader.status(name);
  const after = await context.app.spreader.pause(name, changeOptions(context));
  return transition(before, after, "pause", context);
};

export const resume: Command = async (context) => {
  const name = nameArg(context, "superspreader resume NAME");
  const { app } = context;
  const before = await app.spreader.status(name);
  if (before.status === "running" && !app.hasQueue) {
    // Resuming a running run would only start a new tick generation and leave its tick to a watchdog: a pause in its cycles for nothing.
    const late = stalled(before)
      ? ` Its tick is ${f.span(before.tickOverdueMs)} late, though: is a worker that defines ${name} running against this Redis?`
      : "";
    return { ...transition(before, before, "resume", context), text: `${name} is already ${context.paint("running")}; workers' watchdogs keep its tick chain alive.${late}` };
  }
  const after = await app.spreader.resume(name, changeOptions(context));
  if (before.status === "running") return { ...transition(before, after, "resume", context), text: `${name} was running: its tick chain was revived.` };
  return transition(before, after, "resume", context, app.hasQueue ? "" : BY_WATCHDOG);
};

export const cancel: Command = async (context) => {
  const name = nameArg(context, "superspreader cancel NAME --yes");
  const before = await context.app.spreader.status(name);
  // Only a cancel that would end something needs confirming: core refuses an ended run (exit 1) and a cancelled one is a no-op.
  if (!context.options.yes && !ended(before)) {
    throw new CliError(EXIT.USAGE, `cancel ends run ${before.runId} of ${name} (${before.status}) for good; add --yes to confirm`);
  }
  const after = await context.app.spreader.cancel(name, changeOptions(context));
  return transition(before, after, "cancel", context);
};

export const retryFailed: Command = async (context) => {
  const name = nameArg(context, "superspreader retry-failed NAME");
  const { app, paint } = context;
  const before = await app.spreader.status(name);
  const moved = await app.spreader.retryFailed(name, changeOptions(context));
  const after = moved > 0 ? await app.spreader.status(name) : before;
  const revived = before.status === "failed" && after.status === "running";
  return {
    json: { name, runId: after.runId, requeued: moved, previous: before.status, status: after.status },
    text:
      moved === 0
        ? `${name} has no failed ranges; nothing to retry.`
        : `${name}: ${f.plural(moved, "failed range")} queued again; the next cycles enqueue ${moved === 1 ? "it" : "them"} first (${paint(after.status)})` +
          (revived && !app.hasQueue ? `: ${BY_WATCHDOG}.` : "."),
  };
};

/* --------------------------------------------------------------- start */

/** Which config a start gives its run, in words, and whether the CLI can show its values. */
function whichConfig(before: BackfillStatus | null, resetConfig: boolean): { config: "definition" | "live"; words: string } {
  if (before === null || before.status === "starting") return { config: "definition", words: "the definition's config" };
  return resetConfig ? { config: "definition", words: "the definition's config (--reset-config)" } : { config: "live", words: "the live config" };
}

export const start: Command = async (context) => {
  const name = nameArg(context, "superspreader start NAME [--new | --restart]");
  const { app, paint } = context;
  const { new: first = false, restart = false, "reset-config": resetConfig = false } = context.options;
  if (resetConfig && !restart) throw new CliError(EXIT.USAGE, "--reset-config gives a new run the definition's config: add --restart");
  if (first && restart) throw new CliError(EXIT.USAGE, "--new starts a first run and --restart a new run of an ended one: pass one of them");
  const stored = (await app.spreader.list()).includes(name);
  if (!stored && !first) {
    // A typo must not write a "starting" document that no worker will ever take up.
    const close = await meant(app, name);
    throw new CliError(
      EXIT.UNKNOWN_BACKFILL,
      `backfill "${name}" was never started${close ? `: did you mean \`${close}\`?` : ""} (add --new to start its first run; \`superspreader list\` shows the stored backfills)`,
    );
  }
  const before = stored ? await app.spreader.status(name) : null;
  const config = whichConfig(before, resetConfig);
  const unchanged = (text: string): Output => ({
    json: { name, runId: before?.runId ?? null, started: false, requested: false, previous: before?.status ?? null, status: before?.status ?? null },
    text,
  });
  if (before && (before.status === "running" || before.status === "held") && !app.hasQueue) {
    return unchanged(`${name} is already ${paint(before.status)} (run ${before.runId}); workers' watchdogs keep its tick chain alive.`);
  }
  if (before?.status === "paused") return unchanged(`${name} is ${paint("paused")} (run ${before.runId}): \`superspreader resume ${name}\` resumes it.`);
  if (before && ended(before) && !restart) {
    return unchanged(`${name} is ${paint(before.status)} (run ${before.runId}); add --restart for a new run (it keeps the live config unless --reset-config).`);
  }

  const after = await app.spreader.start(name, { ...changeOptions(context), restart, resetConfig });
  const requested = !app.hasQueue && (after.status === "starting" || after.request !== null);
  const started = !requested && (before === null || before.runId !== after.runId);
  const json = {
    name,
    runId: after.runId,
    started,
    requested,
    previous: before?.status ?? null,
    status: after.status,
    config: config.config,
    // The definition lives in the workers' code: without --config the CLI knows only the live config's values.
    values: started ? after.config : config.config === "live" ? (before?.config ?? null) : null,
    ids: started ? { minId: after.minId, maxId: after.initialId } : null,
  };
  let text: string;
  if (requested) {
    const values = config.config === "live" && before ? `: ${f.configValues(before.config)}` : "";
    text =
      `${name}: ${before === null || before.status === "starting" ? "first run" : "restart"} requested with ${config.words}${values}. ` +
      `A worker that defines ${name} carries it out within seconds (\`superspreader status ${name}\` shows when).`;
  } else if (started) {
    text = `${name}: started run ${after.runId} over ids ${f.int(after.minId)}..${f.int(after.initialId)} with ${config.words}: ${f.configValues(after.config)} (${paint(after.status)})`;
  } else {
    text = `${name} is ${paint(after.status)} (run ${after.runId})${after.status === "running" ? "; its tick chain was checked" : ""}.`;
  }
  return { json, text };
};

/* --------------------------------------------------------------- config */

function diff(before: BackfillConfig, after: BackfillConfig): Record<string, { from: unknown; to: unknown }> {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const key of Object.keys(after) as (keyof BackfillConfig)[]) {
    if (JSON.stringify(after[key]) !== JSON.stringify(before[key])) changes[key] = { from: before[key], to: after[key] };
  }
  return changes;
}

/** The fields a deadline depends on: a change of one of them is checked against the deadline. */
const DEADLINE_FIELDS = ["finishBy", "perSecondOnPeak", "perSecondOffPeak", "peak", "batchSize"];

/**
 * The deadline of the proposed config planned as core plans it (from the next cycle, over the fresh ids
 * and the deferred ranges), when the change touches it and the run is open; null otherwise.
 */
async function deadlineCheck(context: Context, s: BackfillStatus, proposed: BackfillConfig, patch: Record<string, unknown>): Promise<DeadlinePlan | null> {
  if (proposed.finishBy === null || !DEADLINE_FIELDS.some((key) => key in patch)) return null;
  if (s.status !== "running" && s.status !== "paused" && s.status !== "held") return null;
  const { spreader } = context.app;
  const [{ deferred }, eta] = await Promise.all([spreader.audit(s.name), spreader.eta(s.name)]);
  return planDeadline({
    config: proposed,
    from: Math.max(Date.now(), eta?.from ?? s.nextTickAt),
    // Below the cursor and in the spans extend queued (the cursor alone misses those).
    idsRemaining: s.unplanned.reduce((sum, r) => sum + (r.endId - r.beginId + 1n), 0n),
    requeued: deferred,
  });
}

export const configSet: Command = async (context) => {
  const [name, ...words] = context.args;
  if (name === undefined) throw new CliError(EXIT.USAGE, "missing the backfill name: superspreader config set NAME key=value...");
  const patch = parseAssignments(words);
  const { spreader } = context.app;
  const dryRun = context.options["dry-run"] === true;
  const current = await spreader.status(name);
  if (current.status === "starting") throw new CliError(EXIT.FAILED, `backfill "${name}" is starting (waiting for a worker): change its config once it runs`);
  const before = current.config;
  // Validated in full before anything is written: a bad value changes nothing.
  const proposed = validateConfig({ ...before, ...patch });
  // A dry run refuses what updateConfig would (a deadline the configured rates cannot meet), and says so the same way.
  const deadline = await deadlineCheck(context, current, proposed, patch);
  // A deadline already passed counts too: core refuses a rate change under it until finishBy is cleared.
  if (dryRun && deadline && !deadline.feasible) {
    throw new CliError(EXIT.USAGE, `${deadlineRefusal(proposed, deadline)}; nothing was changed`);
  }
  const after = dryRun ? proposed : await spreader.updateConfig(name, patch, changeOptions(context));
  const changes = diff(before, after);
  const keys = Object.keys(changes);
  const describe = (key: string) => {
    const { from, to } = changes[key] as { from: unknown; to: unknown };
    return `${key}: ${f.field(key, from)} → ${f.field(key, to)}`;
  };
  const eta = dryRun ? { before: await spreader.eta(name), after: await spreader.eta(name, { config: proposed }) } : null;
  const now = Date.now();
  const lines =
    keys.length === 0
      ? [`${name}: no change (the config already has these values).`]
      : [
          `${name}: ${dryRun ? "would change" : "changed"} ${f.plural(keys.length, "field")}${dryRun ? " (dry run, nothing written)" : ", applied from the next cycle"}:`,
          ...keys.map((key) => `  ${describe(key)}`),
          ...(!dryRun && context.reason ? [`  reason: ${context.reason}`] : []),
        ];
  if (deadline?.feasible) {
    const finish = deadline.finishAt === null ? "" : `, finishing ${f.when(deadline.finishAt, now)}`;
    lines.push(`  deadline: ${f.when(deadline.finishBy, now)} can be met; deadline mode runs at ${f.share(deadline.share)} of the configured rates${finish}`);
  }
  if (eta?.before && eta.after) {
    const etaText = (e: NonNullable<typeof eta.before>) => (e.finishAt === null ? "never" : f.when(e.finishAt, now));
    lines.push(`  eta: ${etaText(eta.before)} → ${etaText(eta.after)}`);
  }
  return {
    json: { name, dryRun, changes, config: after, deadline: deadline && deadlineJson(deadline), ...(eta ? { eta: { before: etaJson(eta.before), after: etaJson(eta.after) } } : {}) },
    text: lines.join("\n"),
  };
};

/* --------------------------------------------------------------- repair */

/** A request core keeps in the stored document for a worker, and the outcome the worker stores when it clears it. */
interface Requested<T> {
  readonly runId: string | null;
  readonly request: unknown;
  readonly outcome: T | null;
}

async function requested<T>(app: App, name: string, request: string, outcome: string): Promise<Requested<T>> {
  const value = ((await app.store?.get(name))?.value ?? null) as Record<string, unknown> | null;
  return { runId: (value?.runId as string | undefined) ?? null, request: value?.[request] ?? null, outcome: (value?.[outcome] as T | undefined) ?? null };
}

const repairFields = (app: App, name: string) => requested<RepairSummary>(app, name, "repairRequest", "lastRepair");

const POLL_MS = 200;

/**
 * Waits for a worker to carry out a request (a repair, an extension): the worker clears the request and
 * stores its outcome in one write. Returns that outcome, or why there is none.
 */
async function awaitWorker<T>(read: () => Promise<Requested<T>>, runId: string, previous: T | null, context: Context): Promise<T | "dropped" | "timeout"> {
  // Half the time left, or all but a second of it: the answer must come before --timeout gives up on the command.
  const remaining = context.deadline - Date.now();
  const until = Date.now() + Math.max(remaining / 2, remaining - 1_000);
  for (;;) {
    const now = await read();
    if (now.runId !== runId) return "dropped";
    if (now.request === null) return JSON.stringify(now.outcome) === JSON.stringify(previous) || now.outcome === null ? "dropped" : now.outcome;
    if (Date.now() + POLL_MS > until || context.signal.aborted) return "timeout";
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** A repair's JSON: every field is null that the way it was carried out does not tell. */
const UNKNOWN_REPAIR = {
  checked: null,
  lost: null,
  unaccounted: null,
  requeued: null,
  stillQueued: null,
  revived: null,
  lostRanges: null,
  unaccountedRanges: null,
};

function repairText(name: string, by: string, r: { checked: number; lost: number; unaccounted: number; requeued: number }): string {
  const found = r.requeued === 0 ? "nothing was lost" : `${f.plural(r.requeued, "range")} queued again; the next cycles enqueue them first`;
  return `${name}: repaired by ${by}: looked up ${f.plural(r.checked, "enqueued range")} in the queue; ${f.int(r.lost)} lost, ${f.int(r.unaccounted)} unaccounted: ${found}.`;
}

export const repair: Command = async (context) => {
  const name = nameArg(context, "superspreader repair NAME");
  const { app } = context;
  const previous = app.hasQueue ? null : (await repairFields(app, name)).outcome;
  const report = await app.spreader.repair(name, changeOptions(context));
  if (!report.requested) {
    const lines = [
      repairText(name, "this process (--config)", { ...report, lost: report.lost.length, unaccounted: report.unaccounted.length }),
      ...report.lost.map((r) => `  ${f.rangeText(r)}  cycle ${f.int(r.cycle)}: the queue's job is ${r.state}`),
      ...report.unaccounted.map((r) => `  ${f.rangeText(r)}  recorded nowhere`),
      ...(report.stillQueued > 0 ? [`  ${f.plural(report.stillQueued, "range")} still in the queue's hands: nothing to do for them.`] : []),
      ...(report.revived ? ["  The run had ended: it runs again to enqueue them."] : []),
    ];
    const json = {
      name,
      runId: report.runId,
      requested: false,
      carriedOut: true,
      ...UNKNOWN_REPAIR,
      checked: report.checked,
      lost: report.lost.length,
      unaccounted: report.unaccounted.length,
      requeued: report.requeued,
      stillQueued: report.stillQueued,
      revived: report.revived,
      lostRanges: report.lost.map((r) => ({ beginId: r.beginId, endId: r.endId, cycle: r.cycle, state: r.state })),
      unaccountedRanges: report.unaccounted,
    };
    return { json, text: lines.join("\n") };
  }
  if (context.options["no-wait"]) {
    return {
      json: { name, runId: report.runId, requested: true, carriedOut: false, ...UNKNOWN_REPAIR },
      text: `${name}: repair requested; a worker that defines ${name} carries it out within seconds (\`superspreader status ${name}\` and its history show the outcome).`,
    };
  }
  context.note(`waiting for a worker that defines ${name} to carry out the repair…`);
  const outcome = await awaitWorker(() => repairFields(app, name), report.runId, previous, context);
  if (outcome === "timeout") {
    throw new CliError(
      EXIT.FAILED,
      `no worker carried out the repair of ${name} in time: the request stays, and a worker that defines ${name} carries it out when one runs (is one running against this Redis and prefix?)`,
    );
  }
  if (outcome === "dropped") throw new CliError(EXIT.FAILED, `the repair of ${name} was dropped: its run changed meanwhile (see \`superspreader status ${name}\`)`);
  const { checked, lost, unaccounted, requeued } = outcome;
  return {
    json: { name, runId: report.runId, requested: true, carriedOut: true, ...UNKNOWN_REPAIR, checked, lost, unaccounted, requeued },
    text: repairText(name, "a worker", outcome),
  };
};

/* --------------------------------------------------------------- extend */

const extendFields = (app: App, name: string) => requested<ExtendSummary>(app, name, "extendRequest", "lastExtend");

function extendText(name: string, by: string, e: { extended: boolean; fromId: bigint; toId: bigint; sourceMaxId: bigint | null; revived: boolean }): string {
  if (!e.extended) {
    const max = e.sourceMaxId === null ? "the source has no rows" : `the source's max id is ${f.int(e.sourceMaxId)}`;
    return `${name}: nothing new above the run's id space (it ends at ${f.int(e.fromId)}; ${max}); nothing was changed (${by}).`;
  }
  const ids = e.toId - e.fromId;
  return (
    `${name}: extended by ${by}: ids ${f.int(e.fromId + 1n)}..${f.int(e.toId)} (${f.plural(ids, "id")}) added; the cycles plan them after the ranges planned before them` +
    (e.revived ? "; the run had ended and runs again." : ".")
  );
}

export const extend: Command = async (context) => {
  const name = nameArg(context, "superspreader extend NAME");
  const { app } = context;
  const previous = (await extendFields(app, name)).outcome;
  const report = await app.spreader.extend(name, changeOptions(context));
  const json = (e: { extended: boolean; fromId: bigint; toId: bigint; sourceMaxId: bigint | null; revived: boolean } | null, carriedOut: boolean) => ({
    name,
    runId: report.runId,
    requested: report.requested,
    carriedOut,
    extended: e?.extended ?? null,
    fromId: e?.fromId ?? null,
    toId: e?.toId ?? null,
    sourceMaxId: e?.sourceMaxId ?? null,
    revived: e?.revived ?? null,
  });
  if (!report.requested) return { json: json(report, true), text: extendText(name, "this process (--config)", report) };
  if (context.options["no-wait"]) {
    return {
      json: json(null, false),
      text: `${name}: extension requested; a worker that defines ${name} reads its source's max id and carries it out within seconds (\`superspreader status ${name}\` shows the id space).`,
    };
  }
  context.note(`waiting for a worker that defines ${name} to read its source's max id…`);
  const outcome = await awaitWorker(() => extendFields(app, name), report.runId, previous, context);
  if (outcome === "timeout") {
    throw new CliError(
      EXIT.FAILED,
      `no worker carried out the extension of ${name} in time: the request stays, and a worker that defines ${name} carries it out when one runs (is one running against this store?)`,
    );
  }
  if (outcome === "dropped") throw new CliError(EXIT.FAILED, `the extension of ${name} was dropped: its run changed meanwhile (see \`superspreader status ${name}\`)`);
  const e = {
    extended: outcome.extended,
    fromId: BigInt(outcome.fromId),
    toId: BigInt(outcome.toId),
    sourceMaxId: outcome.sourceMaxId === null ? null : BigInt(outcome.sourceMaxId),
    // A worker revives a finished run with the extension; the stored summary does not say whether it had ended.
    revived: false,
  };
  return { json: { ...json(e, true), revived: null }, text: extendText(name, "a worker", e) };
};

/* ------------------------------------------------------------ pin, unpin */

/** `--rate N`: batches per second ≥ 0; a usage error naming the flag and value otherwise. */
function rateOption(raw: string): number {
  const n = raw.trim() === "" ? Number.NaN : Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new CliError(EXIT.USAGE, `--rate must be a number of batches per second ≥ 0, got ${JSON.stringify(raw)}; nothing was changed`);
  return n;
}

/** `--batch-size N`: a whole number ≥ 1; a usage error naming the flag and value otherwise. */
function batchSizeOption(raw: string): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new CliError(EXIT.USAGE, `--batch-size must be a whole number of ids ≥ 1, got ${JSON.stringify(raw)}; nothing was changed`);
  return n;
}

/** The pins' diff between two statuses, in the change history's keys. */
function pinChanges(before: BackfillStatus, after: BackfillStatus): Record<string, { from: unknown; to: unknown }> {
  const was = before.control?.pins ?? { perSecond: null, batchSize: null };
  const now = after.control?.pins ?? { perSecond: null, batchSize: null };
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  if (was.perSecond !== now.perSecond) changes["pin.perSecond"] = { from: was.perSecond, to: now.perSecond };
  if (was.batchSize !== now.batchSize) changes["pin.batchSize"] = { from: was.batchSize, to: now.batchSize };
  return changes;
}

/** What `pin` and `unpin` print: the change, and the rate and batch size the next cycle plans with. */
function pinOutput(before: BackfillStatus, after: BackfillStatus, nothing: string): Output {
  const changes = pinChanges(before, after);
  const pins = after.control?.pins ?? { perSecond: null, batchSize: null };
  const c = after.control;
  const inForce = c === null ? "" : ` Next cycle: ${f.rate(c.perSecond)} of ${f.rate(c.ceiling)} batches/s, batch size ${f.int(c.batchSize)}.`;
  return {
    json: { name: after.name, runId: after.runId, status: after.status, changed: Object.keys(changes).length > 0, changes, pins, control: c && { summary: c.summary, perSecond: c.perSecond, ceiling: c.ceiling, batchSize: c.batchSize } },
    text: Object.keys(changes).length === 0 ? `${after.name}: ${nothing}; nothing was changed.` : `${after.name}: ${f.describeChange(changes)}; applied from the next cycle.${inForce}`,
  };
}

export const pin: Command = async (context) => {
  const name = nameArg(context, "superspreader pin NAME [--rate N] [--batch-size N]");
  const { rate, "batch-size": batchSize } = context.options;
  if (rate === undefined && batchSize === undefined) throw new CliError(EXIT.USAGE, "nothing to pin: pass --rate N (batches per second) or --batch-size N (ids)");
  // Both flags are checked before anything is read or written: a bad value changes nothing.
  const values = { ...(rate === undefined ? {} : { perSecond: rateOption(rate) }), ...(batchSize === undefined ? {} : { batchSize: batchSizeOption(batchSize) }) };
  const { spreader } = context.app;
  const before = await spreader.status(name);
  const after = await spreader.pin(name, values, changeOptions(context));
  return pinOutput(before, after, "already pinned at these values");
};

export const unpin: Command = async (context) => {
  const name = nameArg(context, "superspreader unpin NAME [--rate] [--batch-size]");
  const { rate, "batch-size": batchSize } = context.options;
  // Neither flag: both pins go.
  const both = rate === undefined && batchSize === undefined;
  const values = { ...(both || rate !== undefined ? { perSecond: null } : {}), ...(both || batchSize !== undefined ? { batchSize: null } : {}) };
  const { spreader } = context.app;
  const before = await spreader.status(name);
  const after = await spreader.pin(name, values, changeOptions(context));
  const nothing = rate === undefined ? "the batch size is not pinned" : batchSize === undefined ? "the rate is not pinned" : "nothing is pinned";
  return pinOutput(before, after, both ? "nothing is pinned" : nothing);
};
