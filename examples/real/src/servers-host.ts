// Runs the example's throwaway PostgreSQL and redis-server, forked by servers.ts in a
// process group of its own: Ctrl-C in the terminal signals the example's process group,
// which would otherwise include the servers and stop them under the running backfill.
// It stops them when told to, and also when the example goes away however it ended.
import { startPostgres, startRedis } from "../../../scripts/servers/servers.js";
import type { RunningServer } from "../../../scripts/servers/servers.js";
import { ARGS_VARIABLE } from "./protocol.js";
import type { HostMessage, ServerKind } from "./protocol.js";

const kinds = JSON.parse(process.env[ARGS_VARIABLE] ?? "[]") as ServerKind[];
// Once the parent is gone there is nobody to tell (and sending would throw).
const send = (message: HostMessage) => {
  if (process.connected) process.send?.(message);
};
const servers: RunningServer[] = [];

let stopping: Promise<void> | undefined;
const stop = () => {
  stopping ??= (async () => {
    await Promise.allSettled(servers.map((server) => server.stop()));
    process.exit(0);
  })();
  return stopping;
};
process.on("message", (message: { type?: string }) => {
  if (message.type === "stop") void stop();
});
process.on("disconnect", () => void stop());
process.on("SIGTERM", () => void stop());

const results = await Promise.allSettled(kinds.map((kind) => (kind === "postgres" ? startPostgres() : startRedis())));
for (const result of results) if (result.status === "fulfilled") servers.push(result.value);
const failure = results.find((result) => result.status === "rejected");
if (failure) {
  const reason: unknown = failure.reason;
  send({ type: "failed", message: reason instanceof Error ? reason.message : String(reason) });
  await stop();
} else {
  const url = (kind: RunningServer["kind"]) => servers.find((s) => s.kind === kind)?.url ?? null;
  send({ type: "started", postgres: url("postgres"), redis: url("redis") });
}
