import type { IncomingMessage, ServerResponse } from "node:http";
import { toNodeListener, type FetchHandler } from "./node.js";

/*
 * Framework adapters, typed structurally: the package imports no framework, so hosts without
 * Fastify or Hono install nothing extra and no framework type leaks into the declarations.
 */

/** The part of a Fastify instance the plugin uses. */
export interface FastifyInstanceLike {
  removeAllContentTypeParsers(): unknown;
  addContentTypeParser(contentType: string, parser: (request: unknown, payload: unknown, done: (error: Error | null, body?: unknown) => void) => void): unknown;
  all(path: string, handler: (request: { readonly raw: IncomingMessage }, reply: { readonly raw: ServerResponse; hijack(): unknown }) => unknown): unknown;
}

/**
 * A Fastify plugin serving the dashboard. Register it with the dashboard's `basePath` as `prefix`.
 * Inside the plugin's scope request bodies are left unparsed, so the dashboard reads (and size-limits) them itself.
 *
 * @example
 * ```ts
 * const app = Fastify();
 * const dashboard = createDashboard({ spreader, store, basePath: "/admin/backfills", authorize });
 * await app.register(fastifyDashboard(dashboard), { prefix: "/admin/backfills" });
 * ```
 */
export function fastifyDashboard(dashboard: FetchHandler): (instance: FastifyInstanceLike, options: unknown) => Promise<void> {
  const listener = toNodeListener(dashboard);
  return async function superspreaderDashboard(instance) {
    instance.removeAllContentTypeParsers();
    instance.addContentTypeParser("*", (_request, _payload, done) => done(null));
    const handler = (request: { readonly raw: IncomingMessage }, reply: { readonly raw: ServerResponse; hijack(): unknown }) => {
      // The dashboard writes the response itself (live streams included).
      reply.hijack();
      listener(request.raw, reply.raw);
    };
    instance.all("/", handler);
    instance.all("/*", handler);
  };
}

/**
 * A Hono handler serving the dashboard (Hono speaks Fetch, so this only hands the request on).
 * Route both the mount path and everything below it to it.
 *
 * @example
 * ```ts
 * const app = new Hono();
 * const dashboard = createDashboard({ spreader, store, basePath: "/admin/backfills", authorize });
 * app.all("/admin/backfills", honoDashboard(dashboard));
 * app.all("/admin/backfills/*", honoDashboard(dashboard));
 * ```
 */
export function honoDashboard(dashboard: FetchHandler): (context: { readonly req: { readonly raw: Request } }) => Promise<Response> {
  return async (context) => dashboard.fetch(context.req.raw);
}
