import type { WireDetail, WireRow, WireSession } from "../src/wire.js";
import { ApiError, backfillPath, get } from "./api.js";
import { DetailView } from "./detail.js";
import { attr, h, replaceChildren, setText } from "./dom.js";
import * as f from "./format.js";
import { ListView } from "./list.js";
import { Live, type LiveMode } from "./live.js";

const MODE_TEXT: Record<LiveMode, string> = {
  connecting: "connecting…",
  live: "live",
  polling: "polling",
  hidden: "paused while hidden",
  paused: "updates paused",
  offline: "reconnecting…",
};

/** The page: a header, the list or one backfill (by the URL's hash), and messages. */
async function main(): Promise<void> {
  const root = document.getElementById("app");
  if (!root) return;
  const messages = h("div", { class: "messages", role: "status", "aria-live": "polite" });
  const view = h("main", { class: "view" });
  let session: WireSession;
  try {
    session = (await get<WireSession>("api/session")).body;
  } catch (error) {
    replaceChildren(root, h("p", { class: "problem", role: "alert" }, `The dashboard cannot load: ${(error as Error).message}`));
    return;
  }
  document.title = session.title;

  const freshness = h("span", { class: "freshness", "data-mode": "connecting" }, "connecting…");
  const pauseToggle = h("input", { type: "checkbox", name: "pauseUpdates" });
  const header = h(
    "header",
    { class: "top" },
    h("h1", {}, h("a", { href: "#/" }, session.title)),
    session.environment === null ? null : h("span", { class: "env" }, session.environment),
    h("span", { class: "viewer" }, session.readOnly ? "read-only" : `as ${session.actor}`),
    h("span", { class: "spacer" }),
    freshness,
    h("label", { class: "toggle" }, pauseToggle, " pause updates"),
  );
  replaceChildren(root, header, messages, view);

  const notify = (kind: "ok" | "error", text: string) => {
    const note = h("p", { class: `note note-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
    messages.appendChild(note);
    while (messages.childElementCount > 3) messages.firstElementChild?.remove();
    setTimeout(() => note.remove(), kind === "error" ? 15_000 : 6_000);
  };

  const list = new ListView();
  let detail: DetailView | null = null;
  let lastUpdate: number | null = null;
  let mode: LiveMode = "connecting";

  const showRow = (row: WireRow) => {
    list.update([row], [], false, Date.now());
    detail?.updateRow(row);
  };

  let shown = false;
  const live = new Live(
    {
      rows: (m) => {
        list.update(m.rows, m.removed, m.full, m.now);
        if (!shown) {
          shown = true;
          // For `pnpm measure`: when the first rows are on screen, since navigation started.
          performance.mark("superspreader:rows");
        }
        if (detail) for (const row of m.rows) if (row.readable && row.name === detail.name) detail.updateRow(row);
      },
      detail: (d) => detail?.update(d),
      detailError: (p) => detail?.showProblem(p),
      can: (c) => detail?.setCan(c),
      mode: (m, at) => {
        mode = m;
        lastUpdate = at;
        showFreshness();
      },
    },
    // Polling reads the server's shared cache, so a short interval costs the store nothing more.
    Math.max(2000, 2 * session.refreshMs),
  );
  pauseToggle.addEventListener("change", () => live.setPaused(pauseToggle.checked));

  const showFreshness = () => {
    const age = lastUpdate === null ? "" : ` · updated ${f.span(Date.now() - lastUpdate)} ago`;
    setText(freshness, `${MODE_TEXT[mode]}${age}`);
    attr(freshness, "data-mode", mode);
  };

  const route = () => {
    const match = /^#\/b\/(.+)$/.exec(location.hash);
    let name: string | null = null;
    if (match) {
      try {
        name = decodeURIComponent(match[1]!);
      } catch {
        name = null;
      }
    }
    if (name === null) {
      detail = null;
      replaceChildren(view, list.el);
      document.title = session.title;
      live.setFocus(null);
      return;
    }
    if (detail?.name !== name) {
      const d = new DetailView(name, { session, notify, row: showRow, rows: () => list.readable() });
      detail = d;
      replaceChildren(view, d.el);
      document.title = `${name} · ${session.title}`;
      const known = list.row(name);
      if (known?.readable) d.updateRow(known);
      get<WireDetail>(backfillPath(name)).then(
        ({ body }) => {
          if (detail === d) d.update(body);
        },
        (error: unknown) => {
          if (detail === d && error instanceof ApiError && error.problem) d.showProblem(error.problem);
        },
      );
    }
    live.setFocus(name);
  };
  window.addEventListener("hashchange", route);
  route();

  setInterval(() => {
    const now = Date.now();
    list.refreshTimes(now);
    detail?.refreshTimes(now);
    showFreshness();
  }, 1000);
}

void main();
