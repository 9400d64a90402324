import { HttpProblem } from "./http.js";
import { ACTIONS, type Capabilities, type DashboardAction } from "./wire.js";

/**
 * What `authorize` answers: `false` refuses, `true` allows (recorded as actor "dashboard"),
 * `{ actor }` allows and names who acts in the audit trail.
 */
export type AuthorizeResult = boolean | { readonly actor: string };

/**
 * The host's access check, called for every request with the action it needs and the backfill it is
 * about (`null` for the page itself, the list and the session). `view` guards every read: a backfill
 * the viewer may not view is left out of the list and answers 404.
 *
 * @example
 * ```ts
 * const authorize: Authorize = async (request, action) => {
 *   const user = await sessions.userOf(request.headers.get("cookie"));
 *   if (!user) return false;
 *   return action === "view" || user.roles.includes("backfill-operator") ? { actor: user.email } : false;
 * };
 * ```
 */
export type Authorize = (request: Request, action: DashboardAction, backfill: string | null) => AuthorizeResult | Promise<AuthorizeResult>;

/** Who may do what, for one request. */
export interface Access {
  readonly readOnly: boolean;
  /** The actor name for the audit trail, or null when the action is refused. */
  allowed(action: DashboardAction, backfill: string | null): Promise<string | null>;
  /** Throws 403 unless the action is allowed; returns the actor. */
  require(action: DashboardAction, backfill: string | null): Promise<string>;
  capabilities(backfill: string | null): Promise<Capabilities>;
}

const MAX_ACTOR = 200;

/** Access for one request. Without a hook everyone may view and nobody may change anything. */
export function accessFor(request: Request, authorize: Authorize | undefined): Access {
  const cache = new Map<string, Promise<string | null>>();
  const ask = async (action: DashboardAction, backfill: string | null): Promise<string | null> => {
    if (!authorize) return action === "view" ? "anonymous" : null;
    const answer = await authorize(request, action, backfill);
    if (answer === true) return "dashboard";
    if (answer && typeof answer === "object" && typeof answer.actor === "string" && answer.actor.trim() !== "") {
      return answer.actor.trim().slice(0, MAX_ACTOR);
    }
    return null;
  };
  const access: Access = {
    readOnly: authorize === undefined,
    allowed(action, backfill) {
      const key = `${action}\u0000${backfill ?? ""}`;
      let answer = cache.get(key);
      if (!answer) {
        answer = ask(action, backfill);
        cache.set(key, answer);
      }
      return answer;
    },
    async require(action, backfill) {
      const actor = await access.allowed(action, backfill);
      if (actor !== null) return actor;
      const what = backfill === null ? action : `${action} backfill "${backfill}"`;
      throw new HttpProblem(
        403,
        authorize
          ? `not allowed to ${what}: the host's authorize hook refused it`
          : `not allowed to ${what}: this dashboard is read-only because no authorize hook was given (pass authorize to createDashboard to allow controls)`,
        { field: "authorization" },
      );
    },
    async capabilities(backfill) {
      const entries = await Promise.all(ACTIONS.map(async (action) => [action, (await access.allowed(action, backfill)) !== null] as const));
      return Object.fromEntries(entries) as Record<DashboardAction, boolean>;
    },
  };
  return access;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Cross-site request forgery check, without tokens or sessions. Browsers mark every request with
 * `Sec-Fetch-Site`, but only towards trustworthy origins (HTTPS, localhost): on plain HTTP to
 * another host name Chromium sends none, so `Origin` (sent with every cross-origin request and
 * with same-origin POSTs) decides then. A request with neither is refused: browsers always send
 * one of them on a POST, and scripts (curl, CI) can add `Origin` themselves.
 *
 * @param ownOrigin the origin this request was addressed to (from its URL)
 * @param trustedOrigins further origins allowed, e.g. a reverse proxy's public origin
 */
export function checkCsrf(request: Request, ownOrigin: string, trustedOrigins: ReadonlySet<string>): void {
  if (SAFE_METHODS.has(request.method)) return;
  const site = request.headers.get("sec-fetch-site");
  const origin = request.headers.get("origin");
  if (site !== null) {
    if (site === "same-origin") return;
    // Behind a proxy the page's origin is the proxy's: it is same-site at best, so trust it by name.
    if (origin !== null && trustedOrigins.has(origin)) return;
    throw new HttpProblem(403, `cross-origin request refused: Sec-Fetch-Site is ${JSON.stringify(site)}, changes must come from this dashboard's own page`, {
      field: "Sec-Fetch-Site",
    });
  }
  if (origin === null) {
    throw new HttpProblem(403, "request refused: it carries neither Sec-Fetch-Site nor Origin; send Origin with the dashboard's own origin", {
      field: "Origin",
    });
  }
  if (origin !== ownOrigin && !trustedOrigins.has(origin)) {
    throw new HttpProblem(
      403,
      `cross-origin request refused: Origin ${JSON.stringify(origin)} is not this dashboard's origin ${JSON.stringify(ownOrigin)} (behind a proxy, list the public origin in trustedOrigins)`,
      { field: "Origin" },
    );
  }
}
