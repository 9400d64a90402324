/**
 * Vitest global setup: starts the real servers once for the whole test run and
 * publishes their URLs in the environment that test workers (and the child
 * processes they spawn) inherit:
 *   SUPERSPREADER_REDIS_URL, SUPERSPREADER_PG_URL, SUPERSPREADER_MYSQL_URL.
 * A URL already set in the environment is used as is (no server is started).
 */
import { requestedServers, startMariaDB, startPostgres, startRedis, type RunningServer } from "./servers.js";

const ENV = { redis: "SUPERSPREADER_REDIS_URL", postgres: "SUPERSPREADER_PG_URL", mariadb: "SUPERSPREADER_MYSQL_URL" } as const;

export default async function setup(): Promise<() => Promise<void>> {
  const started: RunningServer[] = [];
  const starters = { redis: startRedis, postgres: startPostgres, mariadb: startMariaDB };
  try {
    await Promise.all(
      [...requestedServers()].map(async (kind) => {
        if (process.env[ENV[kind]]) return;
        const server = await starters[kind]();
        started.push(server);
        process.env[ENV[kind]] = server.url;
      }),
    );
  } catch (error) {
    await Promise.allSettled(started.map((s) => s.stop()));
    throw error;
  }
  return async () => {
    await Promise.allSettled(started.map((s) => s.stop()));
  };
}
