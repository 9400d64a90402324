import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { TLSSocket } from "node:tls";

/** Anything that answers Fetch requests: a {@link Dashboard}, a Hono app, … */
export interface FetchHandler {
  fetch(request: Request): Promise<Response> | Response;
}

/** A node:http request listener that also works as Express (and Connect) middleware. */
export type NodeListener = (request: IncomingMessage, response: ServerResponse, next?: (error?: unknown) => void) => void;

/** Express adds these to the request; a body parser that ran first leaves the parsed body here. */
interface ExpressExtras {
  readonly originalUrl?: string;
  readonly body?: unknown;
}

function requestOf(req: IncomingMessage & ExpressExtras, signal: AbortSignal): Request {
  const protocol = (req.socket as TLSSocket | undefined)?.encrypted ? "https" : "http";
  // Express strips its mount path from req.url and keeps the full path in originalUrl.
  const url = new URL(req.originalUrl ?? req.url ?? "/", `${protocol}://${req.headers.host ?? "localhost"}`);
  const headers = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined || key.startsWith(":")) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(key, v);
    else headers.set(key, value);
  }
  const method = req.method ?? "GET";
  let body: string | Uint8Array | ReadableStream<Uint8Array> | null = null;
  if (method !== "GET" && method !== "HEAD") {
    if (req.body !== undefined && req.readableEnded) {
      // A body parser (express.json()) consumed the stream: pass on what it parsed.
      body = typeof req.body === "string" || req.body instanceof Uint8Array ? (req.body as string | Uint8Array) : JSON.stringify(req.body);
      headers.delete("content-length");
    } else {
      body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    }
  }
  return new Request(url, { method, headers, body, signal, ...(body === null ? {} : { duplex: "half" }) } as RequestInit);
}

/** Writes chunks respecting backpressure; resolves false when the client went away. */
function writeChunk(res: ServerResponse, chunk: Uint8Array): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  if (res.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on("drain", onDrain);
    res.on("close", onClose);
  });
}

async function serve(handler: FetchHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const controller = new AbortController();
  // "close" also fires after a normal end; aborting then is harmless. It ends live streams when a tab goes.
  res.once("close", () => controller.abort());
  let request: Request;
  try {
    request = requestOf(req, controller.signal);
  } catch {
    res.writeHead(400, { "content-type": "text/plain; charset=utf-8" }).end("bad request: unreadable URL or Host header\n");
    return;
  }
  const response = await handler.fetch(request);
  res.statusCode = response.status;
  const cookies = response.headers.getSetCookie();
  response.headers.forEach((value, key) => {
    if (key !== "set-cookie") res.setHeader(key, value);
  });
  if (cookies.length > 0) res.setHeader("set-cookie", cookies);
  if (!response.body) {
    res.end();
    return;
  }
  // Headers go out now, so a live stream opens at once in the browser.
  res.flushHeaders();
  const reader = response.body.getReader();
  const stop = () => void reader.cancel().catch(() => {});
  controller.signal.addEventListener("abort", stop, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!(await writeChunk(res, value))) {
        stop();
        break;
      }
    }
  } finally {
    controller.signal.removeEventListener("abort", stop);
    if (!res.writableEnded) res.end();
  }
}

/**
 * Serves a Fetch handler from node:http, or from Express (or Connect) as middleware. Under Express the
 * full path (`req.originalUrl`) is passed on, so mount the dashboard with the same path as its `basePath`.
 * Mount it before body parsers where you can; after `express.json()` the parsed body is passed on.
 *
 * @example
 * ```ts
 * const dashboard = createDashboard({ spreader, store, basePath: "/admin/backfills", authorize });
 * // node:http
 * createServer(toNodeListener(dashboard)).listen(8080, "127.0.0.1");
 * // Express
 * app.use("/admin/backfills", requireLogin, toNodeListener(dashboard));
 * ```
 */
export function toNodeListener(handler: FetchHandler): NodeListener {
  if (!handler || typeof handler.fetch !== "function") throw new TypeError("[superspreader] toNodeListener needs a dashboard (createDashboard(...))");
  return (req, res, next) => {
    serve(handler, req, res).catch((error: unknown) => {
      if (next) return next(error);
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end();
    });
  };
}
