import type {
  Capabilities,
  WireChange,
  WireConfig,
  WireDetail,
  WireErrorGroup,
  WireEstimate,
  WireEta,
  WirePlan,
  WireProblem,
  WireRange,
  WireRangeSet,
  WireRow,
  WireSession,
} from "../src/wire.js";
import { ApiError, backfillPath, get, send } from "./api.js";
import { drawChart } from "./chart.js";
import { attr, h, replaceChildren, setText, svg } from "./dom.js";
import * as f from "./format.js";
import * as s from "./summary.js";

/** What the detail view needs from the page around it. */
export interface DetailContext {
  readonly session: WireSession;
  notify(kind: "ok" | "error", text: string): void;
  /** A row fresher than the last live message (the answer to a change). */
  row(row: WireRow): void;
  /** The rows the page has, for a shared budget's other members. */
  rows(): readonly WireRow[];
}

const OPEN = new Set(["running", "paused", "held"]);
const ENDED = new Set(["completed", "failed", "cancelled"]);
const NONE: Capabilities = { view: true, pause: false, resume: false, retry: false, cancel: false, edit: false, start: false, repair: false };

/** A labelled value in the summary grid. */
function item(label: string, ...values: Node[]): HTMLElement {
  return h("div", { class: "item", "data-item": label }, h("dt", {}, label), h("dd", {}, ...values));
}

const span = (cls = "") => h("span", { class: cls });
const rangeText = (r: WireRange) => `${f.int(r.beginId)}..${f.int(r.endId)}`;

function etaLine(eta: WireEta | null, now: number): string {
  if (eta === null) return "–";
  if (eta.finishAt === null) return "never at these rates";
  return `${f.when(eta.finishAt, now)}${eta.extrapolated ? " (extrapolated past 100 years)" : ""}${eta.ifResumedNow ? " if resumed now" : ""}`;
}

/* ------------------------------------------------------------ config form */

interface WindowInputs {
  readonly row: HTMLElement;
  readonly days: HTMLInputElement;
  readonly begin: HTMLInputElement;
  readonly end: HTMLInputElement;
}

/**
 * The config editor. It is built once per visit of the detail view and never touched by live
 * updates: what the operator types stays. It remembers the version it was loaded from, so saving
 * after someone else changed the backfill answers 409 instead of overwriting their change.
 */
class ConfigForm {
  readonly el: HTMLFormElement;
  private baseline: WireConfig;
  private etag: string;
  private readonly inputs: Record<"perSecondOnPeak" | "perSecondOffPeak" | "batchSize" | "duration", HTMLInputElement>;
  private readonly usePeak: HTMLInputElement;
  private readonly peakSet: HTMLFieldSetElement;
  private readonly timezone: HTMLInputElement;
  private readonly windowsEl: HTMLElement;
  private windows: WindowInputs[] = [];
  private readonly reason: HTMLTextAreaElement;
  private readonly preview: HTMLElement;
  private readonly error: HTMLElement;
  private readonly stale: HTMLElement;
  private readonly save: HTMLButtonElement;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private previewSeq = 0;

  constructor(
    private readonly name: string,
    config: WireConfig,
    etag: string,
    private readonly ctx: DetailContext,
  ) {
    this.baseline = config;
    this.etag = etag;
    const number = (field: string, label: string, step: string, min: string) => {
      const input = h("input", { type: "number", name: field, step, min, required: true, "data-field": `config.${field}`, inputmode: "decimal" });
      return { input, label: h("label", {}, h("span", {}, label), input) };
    };
    const on = number("perSecondOnPeak", "On-peak rate (batches/s)", "any", "0");
    const off = number("perSecondOffPeak", "Off-peak rate (batches/s)", "any", "0");
    const size = number("batchSize", "Batch size (ids)", "1", "1");
    const duration = number("duration", "Cycle length (s)", "any", "0");
    this.inputs = { perSecondOnPeak: on.input, perSecondOffPeak: off.input, batchSize: size.input, duration: duration.input };
    this.usePeak = h("input", { type: "checkbox", name: "usePeak", onchange: () => (this.peakSet.disabled = !this.usePeak.checked) });
    this.timezone = h("input", { type: "text", name: "timezone", "data-field": "config.peak.timezone", placeholder: "America/Los_Angeles", autocomplete: "off" });
    this.windowsEl = h("div", { class: "windows" });
    this.reason = h("textarea", { name: "reason", rows: "2", required: true, "data-field": "reason", placeholder: "Why (recorded in the audit trail)" });
    this.preview = h("div", { class: "preview", "aria-live": "polite" });
    this.error = h("p", { class: "form-error", role: "alert" });
    this.stale = h("p", { class: "stale", hidden: true });
    this.save = h("button", { type: "submit", class: "primary" }, "Save change");
    const reload = h("button", { type: "button", onclick: () => void this.reload() }, "Load current values");
    const addWindow = h("button", { type: "button", onclick: () => this.addWindow({ days: [1, 2, 3, 4, 5], hours: [9, 17] }) }, "Add window");
    this.el = h(
      "form",
      { class: "config-form", "aria-label": "Edit configuration", novalidate: true, onsubmit: (e: Event) => void this.submit(e), oninput: () => this.changed() },
      h("div", { class: "fields" }, on.label, off.label, size.label, duration.label),
      (this.peakSet = h(
        "fieldset",
        { class: "peak" },
        // A disabled fieldset leaves its first legend usable: the checkbox turns the windows on again.
        h("legend", {}, h("label", {}, this.usePeak, " Peak windows (on-peak rate inside them)")),
        h("label", {}, h("span", {}, "Time zone (IANA)"), this.timezone),
        this.windowsEl,
        addWindow,
      )),
      h("label", { class: "reason" }, h("span", {}, "Reason (required)"), this.reason),
      this.preview,
      this.error,
      this.stale,
      h("div", { class: "buttons" }, this.save, reload),
    );
    this.load(config);
  }

  /** Puts a config into the inputs (only on first load and when the operator asks). */
  private load(config: WireConfig): void {
    this.inputs.perSecondOnPeak.value = String(config.perSecondOnPeak);
    this.inputs.perSecondOffPeak.value = String(config.perSecondOffPeak);
    this.inputs.batchSize.value = String(config.batchSize);
    this.inputs.duration.value = String(config.duration);
    this.usePeak.checked = config.peak !== null;
    this.peakSet.disabled = config.peak === null;
    this.timezone.value = config.peak?.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
    for (const w of this.windows) w.row.remove();
    this.windows = [];
    for (const w of config.peak?.windows ?? [{ days: [1, 2, 3, 4, 5], hours: [9, 17] as const }]) this.addWindow(w);
    this.clearErrors();
    setText(this.preview, "");
    this.stale.hidden = true;
  }

  private addWindow(w: { readonly days: readonly number[]; readonly hours: readonly [number, number] }): void {
    const i = this.windows.length;
    const days = h("input", { type: "text", name: `days${i}`, value: f.days(w.days), "data-field": `config.peak.windows[${i}].days`, "aria-label": `Window ${i + 1} days` });
    const begin = h("input", { type: "number", name: `begin${i}`, step: "any", min: "0", max: "24", value: String(w.hours[0]), "data-field": `config.peak.windows[${i}].hours[0]`, "aria-label": `Window ${i + 1} begin hour` });
    const end = h("input", { type: "number", name: `end${i}`, step: "any", min: "0", max: "24", value: String(w.hours[1]), "data-field": `config.peak.windows[${i}].hours[1]`, "aria-label": `Window ${i + 1} end hour` });
    const entry: WindowInputs = {
      days,
      begin,
      end,
      row: h("div", { class: "window" }, h("span", {}, "Days"), days, h("span", {}, "from hour"), begin, h("span", {}, "to"), end),
    };
    const remove = h("button", {
      type: "button",
      "aria-label": `Remove window ${i + 1}`,
      onclick: () => {
        entry.row.remove();
        this.windows = this.windows.filter((x) => x !== entry);
        this.changed();
      },
    }, "Remove");
    entry.row.appendChild(remove);
    this.windows.push(entry);
    this.windowsEl.appendChild(entry.row);
  }

  private numberOf(input: HTMLInputElement): number | null {
    return input.value.trim() === "" || Number.isNaN(input.valueAsNumber) ? null : input.valueAsNumber;
  }

  /** The fields that differ from the config the form was loaded from. */
  private patch(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const key of ["perSecondOnPeak", "perSecondOffPeak", "batchSize", "duration"] as const) {
      const value = this.numberOf(this.inputs[key]);
      if (value !== this.baseline[key]) out[key] = value;
    }
    const peak = this.usePeak.checked
      ? {
          timezone: this.timezone.value.trim(),
          windows: this.windows.map((w) => ({ days: w.days.value.trim(), hours: [this.numberOf(w.begin), this.numberOf(w.end)] })),
        }
      : null;
    const same =
      peak === null
        ? this.baseline.peak === null
        : this.baseline.peak !== null &&
          peak.timezone === this.baseline.peak.timezone &&
          peak.windows.length === this.baseline.peak.windows.length &&
          peak.windows.every((w, i) => {
            const b = this.baseline.peak!.windows[i]!;
            return w.days === f.days(b.days) && w.hours[0] === b.hours[0] && w.hours[1] === b.hours[1];
          });
    if (!same) out.peak = peak;
    return out;
  }

  private clearErrors(): void {
    setText(this.error, "");
    for (const el of this.el.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  /** Shows a problem next to the fields it names. */
  private showProblem(problem: WireProblem | null, fallback: string): void {
    this.clearErrors();
    setText(this.error, problem?.detail ?? fallback);
    const field = problem?.field;
    if (!field) return;
    for (const el of this.el.querySelectorAll<HTMLElement>("[data-field]")) {
      const own = el.getAttribute("data-field") ?? "";
      if (own.startsWith(field) || field.startsWith(own)) el.setAttribute("aria-invalid", "true");
    }
  }

  private changed(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.runPreview(), 350);
  }

  /** The ETA and peak load under the edited values, before saving; invalid values show their error. */
  private async runPreview(): Promise<void> {
    const patch = this.patch();
    const seq = ++this.previewSeq;
    if (Object.keys(patch).length === 0) {
      this.clearErrors();
      setText(this.preview, "");
      return;
    }
    try {
      const { body } = await send<WireEstimate>("POST", backfillPath(this.name, "/estimate"), { config: patch }, null);
      if (seq !== this.previewSeq) return;
      this.clearErrors();
      const now = Date.now();
      replaceChildren(
        this.preview,
        h("p", {}, h("strong", {}, "ETA with this change: "), h("span", { class: "eta-proposed" }, etaLine(body.proposed, now))),
        h("p", {}, "now: ", etaLine(body.current, now)),
        h("p", {}, `Peak load in the next 24 h: ${f.num(body.peakPerSecond)} batches/s = ${f.num(body.peakIdsPerSecond)} ids/s`),
      );
    } catch (error) {
      if (seq !== this.previewSeq) return;
      setText(this.preview, "");
      this.showProblem(error instanceof ApiError ? error.problem : null, String((error as Error).message));
    }
  }

  private async submit(event: Event): Promise<void> {
    event.preventDefault();
    const patch = this.patch();
    if (Object.keys(patch).length === 0) {
      this.showProblem(null, "Nothing to save: the values are the stored ones.");
      return;
    }
    this.save.disabled = true;
    try {
      const { body } = await send<{ row: WireRow }>("PATCH", backfillPath(this.name, "/config"), { config: patch, reason: this.reason.value }, this.etag);
      this.ctx.row(body.row);
      await this.reload();
      this.reason.value = "";
      this.ctx.notify("ok", `Saved the config of ${this.name}: ${Object.keys(patch).join(", ")}.`);
    } catch (error) {
      const problem = error instanceof ApiError ? error.problem : null;
      this.showProblem(problem, String((error as Error).message));
      if (error instanceof ApiError && error.status === 409) {
        this.stale.hidden = false;
        setText(this.stale, "Someone changed this backfill since this form was loaded. Your values are kept: load the current ones to compare, then save again.");
        if (problem?.current) this.ctx.row(problem.current);
      }
      this.ctx.notify("error", `Not saved (${error instanceof ApiError ? error.status : "error"}): ${problem?.detail ?? String((error as Error).message)}`);
    } finally {
      this.save.disabled = false;
    }
  }

  /** Loads the stored config and its version (on the operator's request, or after saving). */
  async reload(): Promise<void> {
    const { body } = await get<{ config: WireConfig; etag: string }>(backfillPath(this.name, "/config"));
    this.baseline = body.config;
    this.etag = body.etag;
    this.load(body.config);
  }

  /** Live updates only say that the stored config moved on; they never touch the inputs. */
  noteStored(etag: string, config: WireConfig): void {
    if (etag === this.etag) return;
    if (JSON.stringify(config) !== JSON.stringify(this.baseline)) {
      this.stale.hidden = false;
      setText(this.stale, "The stored config changed since this form was loaded (saving now would answer 409): load the current values first.");
    }
  }

  setEnabled(enabled: boolean, why: string): void {
    this.save.disabled = !enabled;
    attr(this.save, "title", enabled ? null : why);
  }
}

/* ------------------------------------------------------------- detail */

/** One backfill: summary, controls, config editor, rate chart, failed groups, open ranges, plan, audit timeline. */
export class DetailView {
  readonly el: HTMLElement;
  private detail: WireDetail | null = null;
  private can: Capabilities = NONE;
  private form: ConfigForm | null = null;
  private readonly formSlot = h("div", { class: "form-slot" });
  private readonly problemEl = h("p", { class: "problem", role: "alert", hidden: true });
  private readonly stateEl = span("state");
  private readonly runEl = span("sub");
  private readonly bar = h("progress", { max: "1", value: "0", "aria-label": "Progress over the id space" });
  private readonly t = {
    progress: span("nums"),
    remaining: span("nums"),
    cursor: span("nums"),
    rows: span("nums"),
    rate: span("nums"),
    observed: span("nums"),
    window: span(),
    eta: span("eta-calendar"),
    etaObserved: span("eta-observed"),
    cycles: span("nums"),
    batches: span("nums"),
    tick: span(),
    nextTick: span(),
    hold: span(),
    started: span(),
    loop: span(),
    autotune: span("sub"),
    health: span(),
    deadline: span(),
    budget: span(),
    pins: span(),
  };
  private readonly holdItem: HTMLElement;
  /** The closed loop's items, shown only for a run it steers (and the pins only when set). */
  private readonly loopItems: Record<"loop" | "health" | "deadline" | "budget" | "pins", HTMLElement>;
  private readonly pinRate = h("input", { type: "number", name: "pinRate", min: "0", step: "any", inputmode: "decimal", "aria-label": "Rate to pin (batches/s)", placeholder: "batches/s" });
  private readonly pinBatch = h("input", { type: "number", name: "pinBatchSize", min: "1", step: "1", inputmode: "numeric", "aria-label": "Batch size to pin (ids)", placeholder: "ids" });
  private readonly pinButtons: Record<"pin" | "unpin", HTMLButtonElement>;
  private readonly pinEl: HTMLElement;
  private readonly reason = h("input", { type: "text", name: "actionReason", placeholder: "optional, recorded in the audit trail", "aria-label": "Reason for this action" });
  private readonly buttons: Record<"pause" | "resume" | "retry" | "cancel" | "repair" | "restart", HTMLButtonElement>;
  private readonly confirm: HTMLElement;
  private readonly confirmInput: HTMLInputElement;
  private readonly confirmButton: HTMLButtonElement;
  private readonly whyDisabled = h("p", { class: "hint" });
  private readonly chart = svg("svg", { class: "chart", role: "img", "aria-label": "Rate chart", preserveAspectRatio: "none" });
  private readonly failedEl = h("div", { class: "groups" });
  private readonly openEl = h("div", { class: "open-ranges" });
  private readonly planEl = h("div", { class: "plan" });
  private readonly timelineEl = h("ol", { class: "timeline" });
  private readonly last = { failed: "", open: "", plan: "", timeline: "" };

  constructor(
    readonly name: string,
    private readonly ctx: DetailContext,
  ) {
    const action = (key: keyof DetailView["buttons"], label: string, run: () => void) =>
      h("button", { type: "button", "data-action": key, disabled: true, onclick: run }, label);
    this.buttons = {
      pause: action("pause", "Pause", () => void this.act("pause")),
      resume: action("resume", "Resume", () => void this.act("resume")),
      retry: action("retry", "Retry failed", () => void this.act("retry")),
      cancel: action("cancel", "Cancel…", () => this.openConfirm()),
      repair: action("repair", "Repair", () => void this.act("repair")),
      restart: action("restart", "Start a new run", () => void this.act("restart")),
    };
    if (!ctx.session.features.repair) this.buttons.repair.hidden = true;
    this.confirmInput = h("input", {
      type: "text",
      name: "confirmName",
      autocomplete: "off",
      "aria-label": "Type the backfill's name to confirm",
      oninput: () => (this.confirmButton.disabled = this.confirmInput.value !== this.name),
    });
    this.confirmButton = h("button", { type: "button", class: "danger", disabled: true, onclick: () => void this.act("cancel") }, "Cancel this run");
    this.confirm = h(
      "div",
      { class: "confirm", hidden: true },
      h("p", {}, "Cancelling ends the run for good; queued jobs become no-ops. Type the backfill's name to confirm: ", h("code", {}, name)),
      this.confirmInput,
      this.confirmButton,
      h("button", { type: "button", onclick: () => (this.confirm.hidden = true) }, "Keep it running"),
    );
    this.holdItem = item("Held", this.t.hold);
    this.holdItem.hidden = true;
    this.loopItems = {
      loop: item("Closed loop", this.t.loop, h("br"), this.t.autotune),
      health: item("Health", this.t.health),
      deadline: item("Deadline", this.t.deadline),
      budget: item("Budget", this.t.budget),
      pins: item("Pinned", this.t.pins),
    };
    for (const el of Object.values(this.loopItems)) el.hidden = true;
    this.pinButtons = {
      pin: h("button", { type: "button", "data-action": "pin", disabled: true, onclick: () => void this.pin(false) }, "Pin"),
      unpin: h("button", { type: "button", "data-action": "unpin", disabled: true, onclick: () => void this.pin(true) }, "Unpin"),
    };
    // Pins need a core with spreader.pin; an older one has no loop to pin against.
    this.pinEl = h(
      "div",
      { class: "pins", hidden: !ctx.session.features.pin },
      h("label", {}, h("span", {}, "Pin rate"), this.pinRate),
      h("label", {}, h("span", {}, "Pin batch size"), this.pinBatch),
      this.pinButtons.pin,
      this.pinButtons.unpin,
      h("p", { class: "sub" }, "A pinned value is left alone by autotune and the deadline until unpinned (empty fields: Unpin clears both)."),
    );
    this.el = h(
      "section",
      { class: "detail", "aria-label": `Backfill ${name}` },
      h("p", {}, h("a", { href: "#/", class: "back" }, "← All backfills")),
      h("header", { class: "detail-head" }, h("h2", {}, name), this.stateEl, this.runEl),
      this.problemEl,
      h(
        "dl",
        { class: "summary" },
        item("Progress", this.bar, this.t.progress),
        item("Remaining", this.t.remaining),
        item("Cursor", this.t.cursor),
        item("Rows", this.t.rows),
        item("Rate", this.t.rate, h("br"), this.t.observed),
        this.loopItems.loop,
        this.loopItems.health,
        this.loopItems.pins,
        this.loopItems.deadline,
        this.loopItems.budget,
        item("Window", this.t.window),
        item("ETA (calendar)", this.t.eta),
        item("ETA (observed pace)", this.t.etaObserved),
        item("Remaining work", this.t.cycles),
        item("Batches", this.t.batches),
        item("Tick", this.t.tick, h("br"), this.t.nextTick),
        item("Started", this.t.started),
        this.holdItem,
      ),
      h(
        "section",
        { class: "controls", "aria-label": "Controls" },
        h("h3", {}, "Controls"),
        h("label", { class: "action-reason" }, h("span", {}, "Reason"), this.reason),
        h("div", { class: "buttons" }, this.buttons.pause, this.buttons.resume, this.buttons.retry, this.buttons.cancel, this.buttons.repair, this.buttons.restart),
        this.confirm,
        this.pinEl,
        this.whyDisabled,
      ),
      h("section", { class: "panel", "aria-label": "Configuration" }, h("h3", {}, "Configuration"), this.formSlot),
      h(
        "section",
        { class: "panel", "aria-label": "Rate" },
        h("h3", {}, "Rate: the last hour and the next 24 h"),
        this.chart,
        h("p", { class: "legend" }, h("span", { class: "key configured" }, "configured"), " ", h("span", { class: "key observed" }, "observed"), " ", h("span", { class: "key peak" }, "peak window")),
      ),
      h("section", { class: "panel", "aria-label": "Failed ranges" }, h("h3", {}, "Failed ranges by error"), this.failedEl),
      h("section", { class: "panel", "aria-label": "Open ranges" }, h("h3", {}, "In flight, deferred and not yet planned"), this.openEl),
      h("section", { class: "panel", "aria-label": "Next cycle" }, h("h3", {}, "Next cycle's plan"), this.planEl),
      h("section", { class: "panel", "aria-label": "Audit trail" }, h("h3", {}, "Audit trail"), this.timelineEl),
    );
  }

  get row(): WireRow | null {
    return this.detail?.row ?? null;
  }

  setCan(can: Capabilities): void {
    this.can = can;
    this.refreshControls();
  }

  showProblem(problem: WireProblem): void {
    this.problemEl.hidden = false;
    setText(this.problemEl, problem.detail);
  }

  /** A row from elsewhere (the answer to a change, a list message): updates what depends on it only. */
  updateRow(row: WireRow): void {
    if (!this.detail || row.name !== this.name) return;
    this.detail = { ...this.detail, row };
    this.fillRow(row, Date.now());
    this.refreshControls();
  }

  update(detail: WireDetail): void {
    if (detail.row.name !== this.name) return;
    this.detail = detail;
    this.problemEl.hidden = true;
    if (detail.can) this.can = detail.can;
    if (!this.form) {
      this.form = new ConfigForm(this.name, detail.config, detail.row.etag, this.ctx);
      replaceChildren(this.formSlot, this.form.el);
    } else {
      this.form.noteStored(detail.row.etag, detail.config);
    }
    this.fillRow(detail.row, detail.now);
    drawChart(this.chart, detail.chart, detail.row.rate.batchSize);
    this.fillLists(detail);
    this.refreshControls();
  }

  refreshTimes(now: number): void {
    if (this.detail) this.fillTimes(this.detail.row, now);
  }

  private fillRow(row: WireRow, now: number): void {
    setText(this.stateEl, row.status);
    attr(this.stateEl, "data-state", row.status);
    attr(this.stateEl, "title", s.stateTitle(row));
    setText(this.runEl, `run ${row.runId} · cycle ${f.int(row.cycle)} · ids ${f.int(row.ids.min)}..${f.int(row.ids.max)}`);
    this.bar.value = Math.min(1, Number(row.ids.percent) / 100);
    setText(this.t.progress, s.progressText(row));
    setText(this.t.remaining, `${f.int((BigInt(row.ids.total) - BigInt(row.ids.done)).toString())} ids`);
    setText(this.t.cursor, BigInt(row.ids.cursor) >= BigInt(row.ids.min) ? `next id to plan ${f.int(row.ids.cursor)}` : "every range enqueued");
    setText(this.t.rows, s.rowsText(row, now) ?? "not counted (no id source given)");
    setText(this.t.rate, s.rateText(row));
    setText(this.t.observed, s.observedText(row));
    setText(this.t.cycles, row.eta === null ? "–" : `${f.int(row.eta.batchesRemaining)} batches, ${f.int(row.eta.idsRemaining)} ids, ${row.eta.cyclesRemaining === null ? "–" : f.int(row.eta.cyclesRemaining)} cycles`);
    setText(this.t.batches, `${f.int(row.batches.done)} done · ${f.int(row.failedRanges ?? row.batches.failed)} failed ranges · ${f.int(row.batches.deferred)} deferrals`);
    setText(this.t.tick, s.tickText(row));
    this.holdItem.hidden = row.hold === null;
    if (row.hold) {
      setText(
        this.t.hold,
        `${row.hold.reason}; since ${f.stamp(row.hold.since)}; ${row.hold.probes} probes${row.hold.lastError ? `; last error: ${row.hold.lastError}` : ""}`,
      );
    }
    const loop = {
      loop: row.control?.summary ?? null,
      health: s.healthText(row),
      pins: s.pinsText(row),
      deadline: s.deadlineText(row, now),
      budget: s.budgetText(row, this.ctx.rows()),
    };
    for (const [key, text] of Object.entries(loop) as [keyof typeof loop, string | null][]) {
      this.loopItems[key].hidden = text === null;
      setText(this.t[key], text ?? "");
    }
    setText(this.t.autotune, s.autotuneText(row) ?? "");
    this.fillTimes(row, now);
  }

  private fillTimes(row: WireRow, now: number): void {
    const deadline = s.deadlineText(row, now);
    if (deadline !== null) setText(this.t.deadline, deadline);
    setText(this.t.window, s.windowText(row, now));
    setText(this.t.eta, etaLine(row.eta, now));
    setText(this.t.etaObserved, row.eta?.observedFinishAt ? f.when(row.eta.observedFinishAt, now) : "–");
    setText(this.t.nextTick, row.status === "running" ? `next tick ${f.when(row.tick.nextTickAt, now)}` : "");
    const ended = row.finishedAt !== null && !OPEN.has(row.status);
    setText(this.t.started, `${f.when(row.startedAt, now)}${ended ? `, ended ${f.when(row.finishedAt!, now)}` : ""}`);
    setText(this.t.rows, s.rowsText(row, now) ?? "not counted (no id source given)");
  }

  /* ------------------------------------------------------------ controls */

  private refreshControls(): void {
    const row = this.detail?.row;
    const readOnly = this.ctx.session.readOnly;
    const why: string[] = [];
    const set = (key: keyof DetailView["buttons"], stateOk: boolean, stateWhy: string) => {
      const permitted = this.can[key === "restart" ? "start" : key];
      const ok = row !== undefined && permitted && stateOk;
      this.buttons[key].disabled = !ok;
      const reason = !permitted ? (readOnly ? "read-only dashboard (no authorize hook)" : `you may not ${key}`) : stateOk ? null : stateWhy;
      attr(this.buttons[key], "title", reason);
      if (reason && !this.buttons[key].hidden && !why.includes(reason)) why.push(reason);
    };
    const status = row?.status ?? "";
    set("pause", status === "running" || status === "held", "only a running backfill can be paused");
    set("resume", status === "paused" || status === "held", "only a paused or held backfill can be resumed");
    set("retry", (row?.failedRanges ?? 0) > 0 && status !== "cancelled", "no failed range to retry");
    for (const b of this.failedEl.querySelectorAll<HTMLButtonElement>('button[data-action="retry-group"]')) b.disabled = this.buttons.retry.disabled;
    set("cancel", OPEN.has(status), "the run already ended");
    set("repair", OPEN.has(status), "the run already ended");
    set("restart", ENDED.has(status), "the run has not ended");
    const pinnable = row !== undefined && this.can.edit && OPEN.has(status);
    this.pinButtons.pin.disabled = !pinnable;
    this.pinButtons.unpin.disabled = !pinnable || row?.control === null || (row?.control?.pins.perSecond === null && row.control.pins.batchSize === null);
    this.form?.setEnabled(row !== undefined && this.can.edit, readOnly ? "read-only dashboard (no authorize hook)" : "you may not edit the config");
    setText(this.whyDisabled, readOnly ? "Read-only: the host gave no authorize hook, so controls are off." : "");
  }

  /** Pins what the fields hold (empty: left as is), or unpins what they name (both when empty). */
  private async pin(unpin: boolean): Promise<void> {
    const row = this.detail?.row;
    if (!row) return;
    const rate = this.pinRate.value.trim();
    const size = this.pinBatch.value.trim();
    const body: Record<string, unknown> = { reason: this.reason.value };
    if (unpin) {
      if (rate !== "" || size === "") body.perSecond = null;
      if (size !== "" || rate === "") body.batchSize = null;
    } else {
      if (rate !== "") body.perSecond = Number(rate);
      if (size !== "") body.batchSize = Number(size);
    }
    try {
      const { body: answer } = await send<{ row?: WireRow }>("POST", backfillPath(this.name, "/pin"), body, row.etag);
      if (answer.row) this.ctx.row(answer.row);
      this.reason.value = "";
      this.ctx.notify("ok", unpin ? `Unpinned ${this.name}.` : `Pinned ${this.name}: ${(answer.row && s.pinsText(answer.row)) ?? "nothing"}.`);
    } catch (error) {
      const problem = error instanceof ApiError ? error.problem : null;
      if (problem?.current) this.ctx.row(problem.current);
      this.ctx.notify("error", `${unpin ? "unpin" : "pin"} failed (${error instanceof ApiError ? error.status : "error"}): ${problem?.detail ?? String((error as Error).message)}`);
    } finally {
      this.refreshControls();
    }
  }

  private openConfirm(): void {
    this.confirm.hidden = false;
    this.confirmInput.value = "";
    this.confirmButton.disabled = true;
    this.confirmInput.focus();
  }

  private async act(key: "pause" | "resume" | "retry" | "cancel" | "repair" | "restart"): Promise<void> {
    const row = this.detail?.row;
    if (!row) return;
    const body: Record<string, unknown> = { reason: this.reason.value };
    if (key === "cancel") body.confirm = this.confirmInput.value;
    if (key === "restart") body.restart = true;
    const button = key === "cancel" ? this.confirmButton : this.buttons[key];
    button.disabled = true;
    try {
      const path = backfillPath(this.name, `/${key === "restart" ? "start" : key}`);
      const { body: answer } = await send<{ row?: WireRow; requeued?: number; runId?: string; requested?: boolean }>("POST", path, body, row.etag);
      if (answer.row) this.ctx.row(answer.row);
      this.reason.value = "";
      this.confirm.hidden = true;
      const done = {
        pause: `Paused ${this.name}.`,
        resume: `Resumed ${this.name}.`,
        retry: `Queued ${answer.requeued ?? 0} failed ranges of ${this.name} again.`,
        cancel: `Cancelled ${this.name}.`,
        repair: `Repaired ${this.name}.`,
        restart: answer.requested ? `Asked the workers to start a new run of ${this.name}.` : `Started run ${answer.runId ?? ""} of ${this.name}.`,
      }[key];
      this.ctx.notify("ok", done);
    } catch (error) {
      const problem = error instanceof ApiError ? error.problem : null;
      if (problem?.current) this.ctx.row(problem.current);
      this.ctx.notify("error", `${key} failed (${error instanceof ApiError ? error.status : "error"}): ${problem?.detail ?? String((error as Error).message)}`);
    } finally {
      this.refreshControls();
    }
  }

  /* --------------------------------------------------------------- lists */

  private fillLists(detail: WireDetail): void {
    const now = detail.now;
    const failed = JSON.stringify(detail.ranges.failed);
    if (failed !== this.last.failed) {
      this.last.failed = failed;
      const groups = detail.ranges.failed.groups;
      replaceChildren(
        this.failedEl,
        groups.length === 0 ? h("p", { class: "empty" }, "No failed range.") : null,
        groups.length > 1 ? h("p", { class: "hint" }, "Retrying queues every failed range of the run again, whichever group its button is in.") : null,
        ...groups.map((g) => this.group(g, now)),
      );
    }
    const open = JSON.stringify([detail.ranges.inFlight, detail.ranges.deferred, detail.ranges.notPlanned, detail.ranges.lost, detail.ranges.done]);
    if (open !== this.last.open) {
      this.last.open = open;
      const set = (label: string, r: WireRangeSet) =>
        h(
          "div",
          { class: "range-set" },
          h("h4", {}, `${label}: ${f.int(r.ranges)} range${r.ranges === 1 ? "" : "s"}, ${f.int(r.ids)} ids`),
          r.sample.length === 0 ? null : h("ul", { class: "ranges" }, ...r.sample.map((x) => h("li", {}, rangeText(x)))),
          r.ranges > r.sample.length ? h("p", { class: "sub" }, `… and ${f.int(r.ranges - r.sample.length)} more`) : null,
        );
      replaceChildren(
        this.openEl,
        h("p", {}, `Done: ${f.int(detail.ranges.done.ids)} ids in ${f.int(detail.ranges.done.ranges)} merged ranges.`),
        set("In flight", detail.ranges.inFlight),
        set("Deferred or retried (enqueued again by the next cycles)", detail.ranges.deferred),
        set("Not planned yet", detail.ranges.notPlanned),
        detail.ranges.lost.ranges > 0 ? set("Lost (enqueued, never recorded; repair queues them again)", detail.ranges.lost) : null,
      );
    }
    const plan = JSON.stringify(detail.plan);
    if (plan !== this.last.plan) {
      this.last.plan = plan;
      replaceChildren(this.planEl, ...this.planNodes(detail.plan));
    }
    const timeline = JSON.stringify([detail.timeline, detail.timelineProblem]);
    if (timeline !== this.last.timeline) {
      this.last.timeline = timeline;
      if (detail.timelineProblem !== null) replaceChildren(this.timelineEl, h("li", { class: "problem" }, detail.timelineProblem));
      else if (detail.timeline === null) replaceChildren(this.timelineEl, h("li", { class: "empty" }, "The host gave no store: the audit trail is not shown."));
      else if (detail.timeline.length === 0) replaceChildren(this.timelineEl, h("li", { class: "empty" }, "Nothing recorded yet."));
      else replaceChildren(this.timelineEl, ...detail.timeline.map((c) => this.change(c)));
    }
  }

  private group(g: WireErrorGroup, now: number): HTMLElement {
    const retry = h("button", { type: "button", "data-action": "retry-group", onclick: () => void this.act("retry") }, `Retry (${f.int(g.ranges)} here)`);
    retry.disabled = this.buttons.retry.disabled;
    return h(
      "article",
      { class: "group" },
      h("h4", {}, h("span", { class: "error-name" }, g.errorName), " ", h("span", { class: "sub" }, `${f.int(g.ranges)} ranges · ${f.int(g.ids)} ids`)),
      h("pre", { class: "message" }, g.message),
      h("p", { class: "sub" }, `first ${f.when(g.firstAt, now)} · last ${f.when(g.lastAt, now)}`),
      h(
        "details",
        {},
        h("summary", {}, "Ranges"),
        h("ul", { class: "ranges" }, ...g.sample.map((r) => h("li", {}, `${rangeText(r)} · ${r.attempts} attempts · ${f.relative(r.at, now)}`))),
      ),
      retry,
    );
  }

  private planNodes(plan: WirePlan): Node[] {
    if (!plan.available) return [h("p", { class: "empty" }, plan.reason)];
    const rows = plan.batches.map((b) =>
      h("tr", {}, h("td", { class: "nums" }, rangeText(b)), h("td", { class: "nums" }, f.int(b.ids)), h("td", {}, f.stamp(b.runAt)), h("td", {}, b.kind)),
    );
    return [
      h(
        "p",
        {},
        `Cycle ${f.int(plan.cycle)} at ${f.stamp(plan.beginAt)}: ${f.num(plan.perSecond)}/s ${plan.onPeak ? "on" : "off"} peak, ${f.int(plan.slots)} slots, ` +
          `cursor ${f.int(plan.cursorBefore)} → ${f.int(plan.cursorAfter)}, next tick ${f.stamp(plan.nextTickAt)}.`,
      ),
      h(
        "table",
        { class: "plan-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Range"), h("th", {}, "Ids"), h("th", {}, "Runs at"), h("th", {}, "Kind"))),
        h("tbody", {}, ...rows),
      ),
      plan.total > plan.batches.length ? h("p", { class: "sub" }, `… ${f.int(plan.total - plan.batches.length)} more batches`) : h("span"),
    ];
  }

  private change(c: WireChange): HTMLElement {
    return h(
      "li",
      { "data-kind": c.kind },
      h("p", {}, h("time", {}, f.stamp(c.at)), " · ", h("span", { class: "actor" }, c.actor), " · ", h("span", { class: "kind" }, c.kind)),
      c.reason === null ? null : h("p", { class: "reason" }, c.reason),
      h("ul", {}, ...c.changes.map((x) => h("li", {}, h("code", {}, x.field), `: ${x.from} → ${x.to}`))),
    );
  }
}
