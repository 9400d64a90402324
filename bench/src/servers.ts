import { startPostgres, startRedis } from "../../scripts/servers/servers.js";
import type { RunningServer } from "../../scripts/servers/servers.js";

/** Server URLs for one benchmark run, and how to stop the servers it started. */
export interface BenchServers {
  readonly urls: Partial<Record<ServerKind, string>>;
  /** Stops the servers this run started (never ones given by URL). */
  stop(): Promise<void>;
}

/** `redis`: queues (and the store, unless told otherwise); `store-redis`: a Redis for the state store only; `postgres`. */
export type ServerKind = "redis" | "store-redis" | "postgres";

const ENV: Record<ServerKind, string> = {
  redis: "SUPERSPREADER_REDIS_URL",
  "store-redis": "SUPERSPREADER_STORE_REDIS_URL",
  postgres: "SUPERSPREADER_PG_URL",
};

/**
 * The servers a benchmark needs: each one's URL from the environment when given,
 * otherwise a fresh server on a free loopback port (scripts/servers), stopped by `stop()`.
 *
 * @example
 * ```ts
 * const servers = await useServers(["redis", "postgres"]);
 * try { … servers.urls.redis … } finally { await servers.stop(); }
 * ```
 */
export async function useServers(kinds: readonly ServerKind[]): Promise<BenchServers> {
  const started: RunningServer[] = [];
  const urls: Partial<Record<ServerKind, string>> = {};
  const stop = async () => {
    await Promise.allSettled(started.map((server) => server.stop()));
  };
  try {
    for (const kind of kinds) {
      const given = process.env[ENV[kind]];
      if (given) {
        urls[kind] = given;
        continue;
      }
      const server = kind === "postgres" ? await startPostgres() : await startRedis();
      started.push(server);
      urls[kind] = server.url;
    }
  } catch (error) {
    await stop();
    throw error;
  }
  for (const kind of kinds) console.log(`${kind}: ${urls[kind]}${process.env[ENV[kind]] ? " (given)" : " (started)"}`);
  return { urls, stop };
}

/** The URL of a server `useServers` provided. */
export function urlOf(servers: BenchServers, kind: ServerKind): string {
  const url = servers.urls[kind];
  if (!url) throw new Error(`no ${kind} server: pass "${kind}" to useServers`);
  return url;
}
