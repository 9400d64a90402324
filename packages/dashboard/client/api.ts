import type { WireProblem } from "../src/wire.js";

/** An API answer other than 2xx, with its problem+json body when there is one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: WireProblem | null,
  ) {
    super(problem?.detail ?? `the server answered ${status}`);
  }
}

export interface Answer<T> {
  readonly body: T;
  readonly etag: string | null;
}

/** The entity tag without quotes: what the API puts in rows and expects back in If-Match. */
const unquote = (etag: string | null) => (etag === null ? null : etag.replace(/^"|"$/g, ""));

async function answer<T>(response: Response): Promise<Answer<T>> {
  const type = response.headers.get("content-type") ?? "";
  const body: unknown = type.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, type.includes("problem+json") ? (body as WireProblem) : null);
  return { body: body as T, etag: unquote(response.headers.get("etag")) };
}

/** GET a JSON document (paths are relative to the page, which is served at the mount path). */
export async function get<T>(path: string): Promise<Answer<T>> {
  return answer<T>(await fetch(path, { headers: { accept: "application/json" }, credentials: "same-origin", cache: "no-store" }));
}

/** A change: JSON body, If-Match with the version the operator saw. */
export async function send<T>(method: "POST" | "PATCH", path: string, body: unknown, etag: string | null): Promise<Answer<T>> {
  const headers: Record<string, string> = { accept: "application/json", "content-type": "application/json" };
  if (etag !== null) headers["if-match"] = `"${etag}"`;
  return answer<T>(await fetch(path, { method, headers, body: JSON.stringify(body), credentials: "same-origin", cache: "no-store" }));
}

/** The path of a backfill's API. */
export const backfillPath = (name: string, rest = "") => `api/backfills/${encodeURIComponent(name)}${rest}`;
