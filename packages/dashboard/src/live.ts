import type { SuperSpreaderEventName } from "@superspreader/core";
import type { DashboardSpreader } from "./compat.js";
import { toJson } from "./http.js";
import { problemOfCore, type Reader } from "./reader.js";
import type { Access } from "./security.js";
import type { WireEvents, WireListRow, WireProblem } from "./wire.js";

/** A comment line this often keeps proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;
/** How long the browser waits before reconnecting a dropped stream. */
const RETRY_MS = 3_000;
/** Events of this process that change what the page shows at once (the rest shows at the next refresh). */
const PROMPT_EVENTS: readonly SuperSpreaderEventName[] = ["started", "paused", "resumed", "held", "cancelled", "completed", "configChanged"];

interface Subscriber {
  readonly access: Access;
  readonly focus: string | null;
  /** JSON of each row as last sent, to send only what changed. */
  readonly sent: Map<string, string>;
  /** Whether the viewer may see each backfill (asked once per name). */
  readonly visible: Map<string, boolean>;
  lastDetail: string | null;
  /** Whether the first (full) list went out. */
  started: boolean;
  send(event: keyof WireEvents, data: unknown): void;
  close(): void;
}

/**
 * Live updates: one Server-Sent Events stream per tab. One loop reads every backfill once per
 * interval through the shared {@link Reader} and fans the result out, so ten tabs cost the store
 * what one does. The loop runs only while a stream is open.
 */
export class LiveHub {
  private readonly subscribers = new Set<Subscriber>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  private again = false;
  private closed = false;
  private seq = 0;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(
    private readonly reader: Reader,
    spreader: DashboardSpreader,
    private readonly refreshMs: number,
  ) {
    // A change made in this process shows at once instead of at the next refresh.
    for (const event of PROMPT_EVENTS) {
      this.unsubscribe.push(
        spreader.on(event, (e: { backfill: string }) => {
          reader.invalidate(e.backfill);
          this.soon();
        }),
      );
    }
  }

  /** Runs a refresh now (debounced), e.g. after a change made through the dashboard. */
  soon(): void {
    if (this.subscribers.size === 0 || this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule(20);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.loop(), ms);
    this.timer.unref?.();
  }

  private async loop(): Promise<void> {
    this.timer = null;
    if (this.subscribers.size === 0 || this.closed) return;
    this.running = true;
    try {
      await this.refresh([...this.subscribers]);
    } finally {
      this.running = false;
    }
    if (this.subscribers.size > 0 && !this.closed) this.schedule(this.again ? 20 : this.refreshMs);
    this.again = false;
  }

  private async refresh(subscribers: readonly Subscriber[]): Promise<void> {
    let rows: WireListRow[];
    let now: number;
    try {
      const names = await this.reader.names();
      rows = (await Promise.all(names.map((name) => this.reader.listRow(name)))).filter((r): r is WireListRow => r !== null);
      now = Date.now();
    } catch {
      return; // the store is unreachable: keep the streams, try again at the next interval
    }
    const foci = new Map<string, Promise<{ json: string } | { problem: WireProblem }>>();
    await Promise.all(
      subscribers.map(async (sub) => {
        await this.sendRows(sub, rows, now);
        if (sub.focus === null) return;
        let detail = foci.get(sub.focus);
        if (!detail) {
          detail = this.reader.detail(sub.focus).then(
            (d) => ({ json: toJson(d) }),
            (error: unknown) => {
              const p = problemOfCore(error);
              return { problem: { type: "about:blank", title: "Error", status: p?.status ?? 500, detail: p?.message ?? String((error as Error)?.message ?? error) } };
            },
          );
          foci.set(sub.focus, detail);
        }
        const result = await detail;
        if (!(await this.visible(sub, sub.focus))) return;
        if ("json" in result) {
          if (result.json !== sub.lastDetail) {
            sub.lastDetail = result.json;
            sub.send("detail", result.json);
          }
        } else if (sub.lastDetail !== "error") {
          sub.lastDetail = "error";
          sub.send("detailError", result.problem);
        }
      }),
    );
  }

  private async visible(sub: Subscriber, name: string): Promise<boolean> {
    let ok = sub.visible.get(name);
    if (ok === undefined) {
      ok = (await sub.access.allowed("view", name)) !== null;
      sub.visible.set(name, ok);
    }
    return ok;
  }

  private async sendRows(sub: Subscriber, rows: readonly WireListRow[], now: number): Promise<void> {
    const full = !sub.started;
    sub.started = true;
    const changed: WireListRow[] = [];
    const present = new Set<string>();
    for (const row of rows) {
      if (!(await this.visible(sub, row.name))) continue;
      present.add(row.name);
      const json = toJson(row);
      if (sub.sent.get(row.name) !== json) {
        sub.sent.set(row.name, json);
        changed.push(row);
      }
    }
    const removed = [...sub.sent.keys()].filter((name) => !present.has(name));
    for (const name of removed) sub.sent.delete(name);
    // The first message goes out even when empty: the page learns the list is empty.
    if (full || changed.length > 0 || removed.length > 0) sub.send("rows", { now, full, rows: changed, removed } satisfies WireEvents["rows"]);
  }

  /** Opens a stream for one tab; it ends when the request is aborted (the tab closed or hid it). */
  stream(request: Request, access: Access, focus: string | null): Response {
    const encoder = new TextEncoder();
    let sub: Subscriber | null = null;
    let heartbeat: ReturnType<typeof setInterval> | null = null;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const write = (chunk: string) => {
          try {
            controller.enqueue(encoder.encode(chunk));
          } catch {
            // the stream closed meanwhile
          }
        };
        const close = () => {
          if (!sub) return;
          this.subscribers.delete(sub);
          sub = null;
          if (heartbeat) clearInterval(heartbeat);
          try {
            controller.close();
          } catch {
            // already closed
          }
        };
        sub = {
          access,
          focus,
          sent: new Map(),
          visible: new Map(),
          lastDetail: null,
          started: false,
          send: (event, data) => write(`id: ${++this.seq}\nevent: ${event}\ndata: ${typeof data === "string" ? data : toJson(data)}\n\n`),
          close,
        };
        write(`retry: ${RETRY_MS}\n: superspreader dashboard\n\n`);
        this.subscribers.add(sub);
        heartbeat = setInterval(() => write(": ping\n\n"), HEARTBEAT_MS);
        heartbeat.unref?.();
        request.signal.addEventListener("abort", close, { once: true });
        if (focus !== null) {
          const s = sub;
          void access.capabilities(focus).then((can) => s.send("can", can));
        }
        this.soon();
      },
      cancel: () => sub?.close(),
    });
    return new Response(body, {
      status: 200,
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  }

  /** How many streams are open (for tests and metrics). */
  get size(): number {
    return this.subscribers.size;
  }

  /** Ends every stream and stops the loop. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const sub of [...this.subscribers]) sub.close();
    for (const off of this.unsubscribe) off();
  }
}
