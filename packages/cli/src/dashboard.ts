import { serveDashboard } from "@superspreader/dashboard";
import type { Command } from "./commands.js";
import { CliError, EXIT } from "./errors.js";

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/**
 * `superspreader dashboard`: serves the operator page and HTTP API on the connection's store until the CLI is
 * interrupted (Ctrl-C, SIGTERM), then closes it. Read-only unless `--allow-control`; loopback unless `--host`.
 */
export const dashboard: Command = async (context) => {
  const { app, options } = context;
  if (context.args.length > 0) throw new CliError(EXIT.USAGE, `unexpected argument ${JSON.stringify(context.args[0])}: superspreader dashboard [--port N] [--host ADDR]`);
  const port = options.port === undefined ? 7420 : Number(options.port);
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) {
    throw new CliError(EXIT.USAGE, `--port must be a whole number from 0 to 65535, got ${JSON.stringify(options.port)}`);
  }
  const host = options.host ?? "127.0.0.1";
  const allowControl = options["allow-control"] === true;
  if (allowControl && !LOOPBACK.has(host)) {
    context.note(`superspreader: warning: --allow-control on ${host}: anyone who reaches this port can pause, cancel and re-tune backfills`);
  }
  const served = await serveDashboard({
    spreader: app.spreader,
    ...(app.store ? { store: app.store } : {}),
    sources: app.sources,
    port,
    host,
    ...(allowControl ? { authorize: () => ({ actor: context.actor }) } : {}),
  });
  context.note(
    `superspreader dashboard on ${served.url}${allowControl ? ` (controls on; changes recorded as ${context.actor})` : " (read-only; --allow-control turns the controls on)"}`,
  );
  await new Promise<void>((resolve) => {
    if (context.signal.aborted) resolve();
    context.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await served.close();
  return { json: { url: served.url, stopped: true }, text: `dashboard on ${served.url} stopped` };
};
