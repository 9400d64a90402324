import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { SuperSpreaderError } from "@superspreader/core";
import { createDashboard, type Dashboard, type DashboardOptions } from "./dashboard.js";
import { toNodeListener } from "./node.js";

/** Options of {@link serveDashboard}: the dashboard's, and where to listen. */
export interface ServeDashboardOptions extends DashboardOptions {
  /**
   * TCP port; 0 picks a free one (read it from the result).
   * @default 0
   */
  port?: number;
  /**
   * Address to listen on. Loopback by default: the page steers production backfills, so exposing it
   * is a decision (put an authenticating proxy in front, and pass `trustedOrigins`).
   * @default "127.0.0.1"
   */
  host?: string;
}

/** A running standalone dashboard. */
export interface ServedDashboard {
  /** The page's address, e.g. `http://127.0.0.1:7420/`. */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  readonly dashboard: Dashboard;
  /** Ends live streams, stops listening and closes open connections. Never closes the spreader's clients. */
  close(): Promise<void>;
}

/**
 * Serves the dashboard on its own node:http server (what `superspreader dashboard` runs).
 *
 * @example
 * ```ts
 * const redis = new Redis(process.env.REDIS_URL!);
 * const store = createRedisStateStore({ client: redis });
 * const spreader = createSuperSpreader({ queue, store });
 * const served = await serveDashboard({ spreader, store, port: 7420 });
 * console.log(`dashboard on ${served.url}`);
 * process.once("SIGINT", () => void served.close().then(() => redis.quit()));
 * ```
 */
export async function serveDashboard(options: ServeDashboardOptions): Promise<ServedDashboard> {
  const { port = 0, host = "127.0.0.1", ...dashboardOptions } = options;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) {
    throw new SuperSpreaderError("INVALID_ARGUMENT", `port must be a whole number from 0 to 65535, got ${String(port)}`, { field: "port" });
  }
  const dashboard = createDashboard(dashboardOptions);
  const server = createServer(toNodeListener(dashboard));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shown}:${address.port}${dashboard.basePath}/`,
    port: address.port,
    host: address.address,
    dashboard,
    close() {
      closing ??= (async () => {
        await dashboard.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}
