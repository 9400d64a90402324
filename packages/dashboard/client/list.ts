import type { WireListRow, WireRow } from "../src/wire.js";
import { attr, h, setText } from "./dom.js";
import * as f from "./format.js";
import * as s from "./summary.js";

/** The cells of one row, kept so an update only sets texts (no re-render, selections survive). */
interface RowNodes {
  readonly tr: HTMLTableRowElement;
  readonly link: HTMLAnchorElement;
  readonly run: HTMLElement;
  readonly state: HTMLElement;
  readonly bar: HTMLProgressElement;
  readonly progress: HTMLElement;
  readonly rows: HTMLElement;
  readonly rate: HTMLElement;
  readonly observed: HTMLElement;
  readonly window: HTMLElement;
  readonly eta: HTMLElement;
  readonly etaObserved: HTMLElement;
  readonly failed: HTMLElement;
  readonly tick: HTMLElement;
  readonly error: HTMLElement;
  data: WireListRow;
}

export const hrefOf = (name: string) => `#/b/${encodeURIComponent(name)}`;

/** One row per backfill: state, progress over the id space, rates, window, ETAs, failures, tick health. */
export class ListView {
  readonly el: HTMLElement;
  private readonly body: HTMLTableSectionElement;
  private readonly counts: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly filter: HTMLInputElement;
  private readonly rows = new Map<string, RowNodes>();
  private now = Date.now();

  constructor() {
    this.filter = h("input", {
      type: "search",
      placeholder: "Filter by name",
      "aria-label": "Filter backfills by name",
      class: "filter",
      oninput: () => this.applyFilter(),
    });
    this.counts = h("p", { class: "counts", "aria-live": "polite" });
    this.empty = h("p", { class: "empty" }, "No backfill is stored yet.");
    this.body = h("tbody");
    const head = ["Backfill", "State", "Progress", "Rate", "Window", "ETA", "Failed", "Tick"].map((label) => h("th", { scope: "col" }, label));
    this.el = h(
      "section",
      { class: "list", "aria-label": "Backfills" },
      h("div", { class: "list-tools" }, this.filter, this.counts),
      this.empty,
      h("table", { class: "rows" }, h("thead", {}, h("tr", {}, ...head)), this.body),
    );
  }

  /** Applies a live message: changed rows, removed names, or the full list. */
  update(rows: readonly WireListRow[], removed: readonly string[], full: boolean, now: number): void {
    this.now = now;
    if (full) {
      const keep = new Set(rows.map((r) => r.name));
      for (const name of this.rows.keys()) if (!keep.has(name)) this.remove(name);
    }
    for (const name of removed) this.remove(name);
    for (const row of rows) this.upsert(row);
    this.refreshTimes(now);
    this.summarise();
  }

  /** Relative times ("in 3m") move on between messages. */
  refreshTimes(now: number): void {
    this.now = now;
    for (const nodes of this.rows.values()) if (nodes.data.readable) this.fillTimes(nodes, nodes.data);
  }

  row(name: string): WireListRow | undefined {
    return this.rows.get(name)?.data;
  }

  /** Every readable row (a budget's members are found among them). */
  readable(): WireRow[] {
    return [...this.rows.values()].map((n) => n.data).filter((d): d is WireRow => d.readable);
  }

  private remove(name: string): void {
    this.rows.get(name)?.tr.remove();
    this.rows.delete(name);
  }

  private upsert(row: WireListRow): void {
    let nodes = this.rows.get(row.name);
    if (!nodes) {
      nodes = this.create(row);
      this.rows.set(row.name, nodes);
      // Keep the order the server lists (by name); rows mostly arrive in that order, so appending is the usual case.
      const last = this.body.lastElementChild?.getAttribute("data-name");
      let before: Element | null = null;
      if (last !== undefined && last !== null && last > row.name) {
        const next = [...this.rows.keys()].filter((n) => n > row.name).sort()[0];
        before = next === undefined ? null : (this.rows.get(next)?.tr ?? null);
      }
      this.body.insertBefore(nodes.tr, before);
      this.applyFilterTo(nodes);
    }
    nodes.data = row;
    this.fill(nodes, row);
  }

  private create(row: WireListRow): RowNodes {
    const cell = (cls: string) => h("span", { class: cls });
    const nodes = {
      link: h("a", { href: hrefOf(row.name), class: "name" }),
      run: cell("sub"),
      state: cell("state"),
      bar: h("progress", { max: "1", value: "0", "aria-label": `Progress of ${row.name}` }),
      progress: cell("nums"),
      rows: cell("sub"),
      rate: cell("nums"),
      observed: cell("sub"),
      window: cell(""),
      eta: cell(""),
      etaObserved: cell("sub"),
      failed: cell("nums"),
      tick: cell(""),
      error: cell("error-text"),
    };
    const tr = h(
      "tr",
      { "data-name": row.name },
      h("th", { scope: "row" }, nodes.link, h("br"), nodes.run),
      h("td", {}, nodes.state),
      h("td", { class: "progress-cell" }, nodes.bar, nodes.progress, nodes.rows),
      h("td", {}, nodes.rate, h("br"), nodes.observed),
      h("td", {}, nodes.window),
      h("td", {}, nodes.eta, h("br"), nodes.etaObserved),
      h("td", {}, nodes.failed),
      h("td", {}, nodes.tick, nodes.error),
    );
    return { tr, ...nodes, data: row };
  }

  private fill(n: RowNodes, row: WireListRow): void {
    setText(n.link, row.name);
    setText(n.state, row.status);
    attr(n.state, "data-state", row.status);
    if (!row.readable) {
      setText(n.run, "");
      setText(n.error, `${row.error.code}: ${row.error.message}`);
      for (const el of [n.progress, n.rows, n.rate, n.observed, n.window, n.eta, n.etaObserved, n.failed, n.tick]) setText(el, "");
      n.bar.hidden = true;
      return;
    }
    setText(n.error, "");
    n.bar.hidden = false;
    setText(n.run, `run ${row.runId}`);
    attr(n.state, "title", s.stateTitle(row));
    n.bar.value = Math.min(1, Number(row.ids.percent) / 100);
    setText(n.progress, s.progressText(row));
    setText(n.rows, s.rowsText(row, this.now) ?? "");
    setText(n.rate, s.rateText(row));
    // The closed loop's one line (why the rate is where it is) on hover; the detail view has it in full.
    attr(n.rate, "title", row.control?.summary ?? null);
    setText(n.observed, s.observedText(row));
    setText(n.failed, row.failedRanges === null ? "…" : f.int(row.failedRanges));
    attr(n.failed, "data-count", row.failedRanges === null ? null : String(row.failedRanges));
    setText(n.tick, s.tickText(row));
    attr(n.tick, "data-stalled", row.tick.stalled ? "true" : null);
    this.fillTimes(n, row);
  }

  private fillTimes(n: RowNodes, row: WireRow): void {
    setText(n.rows, s.rowsText(row, this.now) ?? "");
    setText(n.window, s.windowText(row, this.now));
    setText(n.eta, s.etaText(row, this.now));
    setText(n.etaObserved, s.observedEtaText(row, this.now));
  }

  private applyFilterTo(n: RowNodes): void {
    const q = this.filter.value.trim().toLowerCase();
    n.tr.hidden = q !== "" && !n.data.name.toLowerCase().includes(q);
  }

  private applyFilter(): void {
    for (const n of this.rows.values()) this.applyFilterTo(n);
    this.summarise();
  }

  private summarise(): void {
    const by = new Map<string, number>();
    let shown = 0;
    for (const n of this.rows.values()) {
      by.set(n.data.status, (by.get(n.data.status) ?? 0) + 1);
      if (!n.tr.hidden) shown++;
    }
    const states = [...by.entries()].map(([state, count]) => `${count} ${state}`).join(" · ");
    const total = this.rows.size;
    setText(this.counts, total === 0 ? "" : `${f.int(total)} backfill${total === 1 ? "" : "s"}${shown < total ? ` (${f.int(shown)} shown)` : ""} · ${states}`);
    this.empty.hidden = total > 0;
  }
}
