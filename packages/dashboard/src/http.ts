import type { WireProblem } from "./wire.js";

/**
 * The page loads nothing but its own files: no inline script or style (so no nonce or hash
 * is needed), no frames, no other origin. Setting `element.style.width` from script and drawing
 * SVG are allowed under `style-src 'self'` (CSSOM is not inline style).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Sent with every response, assets and errors included. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "x-robots-tag": "noindex, nofollow",
};

/** JSON with bigints (ids) as decimal strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

function headersOf(extra: Readonly<Record<string, string>> | undefined, type: string, cache: string): Headers {
  const headers = new Headers(SECURITY_HEADERS);
  headers.set("content-type", type);
  headers.set("cache-control", cache);
  for (const [key, value] of Object.entries(extra ?? {})) headers.set(key, value);
  return headers;
}

/** A JSON response; data is never cached (it changes every second). */
export function json(status: number, body: unknown, extra?: Readonly<Record<string, string>>): Response {
  return new Response(toJson(body), { status, headers: headersOf(extra, "application/json; charset=utf-8", "no-store") });
}

/** A response with a text body of the given type. */
export function text(status: number, body: string, type: string, cache = "no-store", extra?: Readonly<Record<string, string>>): Response {
  return new Response(body, { status, headers: headersOf(extra, type, cache) });
}

/** A response without a body (204, 303, 308, …). */
export function empty(status: number, extra?: Readonly<Record<string, string>>): Response {
  const headers = new Headers(SECURITY_HEADERS);
  headers.set("cache-control", "no-store");
  for (const [key, value] of Object.entries(extra ?? {})) headers.set(key, value);
  return new Response(null, { status, headers });
}

const TITLES: Readonly<Record<number, string>> = {
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  410: "Gone",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  428: "Precondition Required",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

/** A problem the API answers with: an HTTP status, a sentence saying what to do, and the field at fault. */
export class HttpProblem extends Error {
  readonly status: number;
  readonly field: string | undefined;
  readonly extra: Partial<WireProblem>;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, detail: string, options: { field?: string; extra?: Partial<WireProblem>; headers?: Record<string, string> } = {}) {
    super(detail);
    this.status = status;
    this.field = options.field;
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
  }
}

/** A problem+json response (RFC 9457). */
export function problem(p: HttpProblem): Response {
  const body: WireProblem = {
    type: "about:blank",
    title: TITLES[p.status] ?? "Error",
    status: p.status,
    detail: p.message,
    ...(p.field === undefined ? {} : { field: p.field }),
    ...p.extra,
  };
  return new Response(toJson(body), { status: p.status, headers: headersOf(p.headers, "application/problem+json; charset=utf-8", "no-store") });
}

/** Request bodies are small JSON documents; anything larger is refused before it is read whole. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Reads a mutation's JSON body: `{}` when empty. Rejects a body that is not JSON (415 when the
 * content type says otherwise, 400 when it does not parse), not an object, or larger than 64 KiB.
 */
export async function readJsonBody(request: Request): Promise<Record<string, unknown>> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") {
    throw new HttpProblem(415, `send the body as JSON with "Content-Type: application/json", got ${JSON.stringify(type || "none")}`, {
      field: "Content-Type",
    });
  }
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw new HttpProblem(413, `the body may hold at most ${MAX_BODY_BYTES} bytes, got ${declared}`, { field: "body" });
  let raw = "";
  if (request.body) {
    const reader = request.body.getReader();
    const decoder = new TextDecoder();
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_BODY_BYTES) {
        await reader.cancel();
        throw new HttpProblem(413, `the body may hold at most ${MAX_BODY_BYTES} bytes`, { field: "body" });
      }
      raw += decoder.decode(value, { stream: true });
    }
    raw += decoder.decode();
  }
  if (raw.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new HttpProblem(400, `the body is not valid JSON: ${(error as Error).message}`, { field: "body" });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new HttpProblem(422, "the body must be a JSON object", { field: "body" });
  }
  return parsed as Record<string, unknown>;
}

/** An optional string field of a body (trimmed; empty means absent), at most `max` characters. */
export function optionalString(body: Record<string, unknown>, field: string, max = 1000): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new HttpProblem(422, `${field} must be a string, got ${typeof value}`, { field });
  const trimmed = value.trim();
  if (trimmed.length > max) throw new HttpProblem(422, `${field} may hold at most ${max} characters, got ${trimmed.length}`, { field });
  return trimmed === "" ? undefined : trimmed;
}

/** Strong entity tags listed in an `If-Match` header; `*` matches any. Weak tags never match (RFC 9110 §13.1.1). */
export function parseIfMatch(header: string): { any: boolean; tags: string[] } {
  if (header.trim() === "*") return { any: true, tags: [] };
  const tags: string[] = [];
  for (const match of header.matchAll(/(W\/)?"([^"]*)"/g)) if (match[1] === undefined) tags.push(match[2]!);
  return { any: false, tags };
}
