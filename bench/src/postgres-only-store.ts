/**
 * What `postgres-only.ts` needs: store-drizzle, and a pool that counts and times every statement it runs.
 */
import pg from "pg";

export { createDrizzleStateStore, migrateStateStore } from "@superspreader/store-drizzle";

/** Statements a {@link CountingPool} ran, split into the handler's (matched by `isHandler`) and the rest (the store's). */
export interface StatementCounts {
  store: number;
  storeMs: number;
  handler: number;
  handlerMs: number;
  /** The store's statements by their first words (`INSERT INTO "superspreader_claims"`, `BEGIN`, …): how many, and their summed ms. */
  readonly byKind: Map<string, { n: number; ms: number }>;
}

/** A `pg.Pool` whose clients count and time every query (including BEGIN/COMMIT of drizzle's transactions). */
export interface CountingPool {
  readonly pool: pg.Pool;
  readonly counts: StatementCounts;
  reset(): void;
}

function textOf(query: unknown): string {
  if (typeof query === "string") return query;
  if (query && typeof query === "object" && "text" in query && typeof query.text === "string") return query.text;
  return "";
}

/** The kind of a statement: its first three words, table names kept. */
function kindOf(text: string): string {
  return text.trim().replace(/\s+/g, " ").split(" ").slice(0, 3).join(" ").slice(0, 60);
}

export function countingPool(config: pg.PoolConfig, isHandler: (text: string) => boolean): CountingPool {
  const pool = new pg.Pool(config);
  const counts: StatementCounts = { store: 0, storeMs: 0, handler: 0, handlerMs: 0, byKind: new Map() };
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const text = textOf(args[0]);
      const started = performance.now();
      const handler = isHandler(text);
      const note = () => {
        const ms = performance.now() - started;
        if (handler) {
          counts.handler += 1;
          counts.handlerMs += ms;
        } else {
          counts.store += 1;
          counts.storeMs += ms;
          const kind = kindOf(text);
          const seen = counts.byKind.get(kind) ?? { n: 0, ms: 0 };
          counts.byKind.set(kind, { n: seen.n + 1, ms: seen.ms + ms });
        }
      };
      const last = args.length - 1;
      const callback = args[last];
      if (typeof callback === "function") {
        // pg.Pool#query hands its client a callback.
        args[last] = (...results: unknown[]) => {
          note();
          return (callback as (...a: unknown[]) => unknown)(...results);
        };
        return query(...args);
      }
      const result = query(...args);
      if (result && typeof (result as Promise<unknown>).then === "function") (result as Promise<unknown>).then(note, note);
      else note();
      return result;
    };
  });
  return {
    pool,
    counts,
    reset() {
      counts.store = counts.storeMs = counts.handler = counts.handlerMs = 0;
      counts.byKind.clear();
    },
  };
}
