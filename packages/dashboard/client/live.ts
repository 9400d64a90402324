import type { Capabilities, WireDetail, WireEvents, WireList, WireProblem } from "../src/wire.js";
import { ApiError, backfillPath, get } from "./api.js";

/** How the page gets its data right now. */
export type LiveMode = "connecting" | "live" | "polling" | "hidden" | "paused" | "offline";

export interface LiveHandlers {
  rows(message: WireEvents["rows"]): void;
  detail(detail: WireDetail): void;
  detailError(problem: WireProblem): void;
  can(can: Capabilities): void;
  mode(mode: LiveMode, lastUpdate: number | null): void;
}

/** Errors in a row before the stream is given up for polling (a proxy that buffers, a server without streams). */
const MAX_STREAM_ERRORS = 3;

/**
 * One live connection per tab: a Server-Sent Events stream (browsers allow only six connections per
 * origin over HTTP/1.1, so never one per panel), closed while the tab is hidden, and polling when
 * streams do not get through.
 */
export class Live {
  private source: EventSource | null = null;
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
  private focus: string | null = null;
  private errors = 0;
  private polling = typeof EventSource === "undefined";
  private paused = false;
  private lastUpdate: number | null = null;
  private current: LiveMode = "connecting";
  /** Bumped by every restart, so a poll under way when the focus changes does not schedule a second loop. */
  private generation = 0;

  constructor(
    private readonly handlers: LiveHandlers,
    private readonly pollMs: number,
  ) {
    document.addEventListener("visibilitychange", () => this.restart());
  }

  /** Follows another backfill (or none): the one stream is reopened with the new focus. */
  setFocus(name: string | null): void {
    this.focus = name;
    this.restart();
  }

  /** Stops or restarts updates (the header's toggle). */
  setPaused(paused: boolean): void {
    this.paused = paused;
    this.restart();
  }

  get mode(): LiveMode {
    return this.current;
  }

  private setMode(mode: LiveMode): void {
    this.current = mode;
    this.handlers.mode(mode, this.lastUpdate);
  }

  private touched(): void {
    this.lastUpdate = Date.now();
    this.errors = 0;
    this.handlers.mode(this.current, this.lastUpdate);
  }

  private stop(): void {
    this.source?.close();
    this.source = null;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  /** (Re)opens the connection as the tab's state asks. */
  restart(): void {
    this.stop();
    this.generation++;
    if (document.visibilityState === "hidden") return this.setMode("hidden");
    if (this.paused) return this.setMode("paused");
    if (this.polling) return void this.poll(this.generation);
    this.open();
  }

  private open(): void {
    const url = `api/events${this.focus === null ? "" : `?focus=${encodeURIComponent(this.focus)}`}`;
    const source = new EventSource(url);
    this.source = source;
    this.setMode("connecting");
    const on = <E extends keyof WireEvents>(event: E, handle: (data: WireEvents[E]) => void) =>
      source.addEventListener(event, (e) => {
        if (this.source !== source) return;
        this.touched();
        handle(JSON.parse((e as MessageEvent<string>).data) as WireEvents[E]);
      });
    source.addEventListener("open", () => {
      if (this.source === source) this.setMode("live");
    });
    on("rows", (m) => this.handlers.rows(m));
    on("detail", (d) => this.handlers.detail(d));
    on("detailError", (p) => this.handlers.detailError(p));
    on("can", (c) => this.handlers.can(c));
    source.addEventListener("error", () => {
      if (this.source !== source) return;
      this.errors++;
      if (source.readyState === EventSource.CLOSED || this.errors >= MAX_STREAM_ERRORS) {
        // The stream does not get through: poll instead (until the page is reloaded).
        this.polling = true;
        this.restart();
      } else {
        this.setMode("offline");
      }
    });
  }

  private async poll(generation: number): Promise<void> {
    this.setMode("polling");
    try {
      const { body } = await get<WireList>("api/backfills");
      if (generation !== this.generation) return;
      this.touched();
      this.handlers.rows({ now: body.now, full: true, rows: body.rows, removed: [] });
      if (this.focus !== null) {
        try {
          const detail = await get<WireDetail>(backfillPath(this.focus));
          if (generation !== this.generation) return;
          this.handlers.detail(detail.body);
          if (detail.body.can) this.handlers.can(detail.body.can);
        } catch (error) {
          if (error instanceof ApiError && error.problem) this.handlers.detailError(error.problem);
          else throw error;
        }
      }
      this.setMode("polling");
    } catch {
      if (generation !== this.generation) return;
      this.setMode("offline");
    }
    if (generation === this.generation && !this.paused && document.visibilityState !== "hidden") {
      this.pollTimer = setTimeout(() => void this.poll(generation), this.pollMs);
    }
  }
}
