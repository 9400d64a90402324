/**
 * Counting Redis commands for the ceiling benchmark: what clients send (MONITOR, on a server
 * used by nothing else meanwhile) and what Redis executes, scripts' inner calls included
 * (INFO commandstats before and after). EVALSHA calls are named by their script where the
 * SHA is known (BullMQ's and Bee-Queue's scripts, and those defined on the ioredis clients given).
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { connect, type Socket } from "node:net";
import { dirname, join } from "node:path";
import type { Redis } from "ioredis";

const require = createRequire(import.meta.url);
const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

/** SHA → script name for BullMQ's and Bee-Queue's Lua scripts. */
export async function libraryScriptNames(): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const bull = (await import("bullmq/dist/esm/scripts/index.js" as string)) as Record<string, { name: string; content: string }>;
  for (const script of Object.values(bull)) if (script?.content) names.set(sha1(script.content), `bullmq:${script.name}`);
  const luaDir = join(dirname(require.resolve("bee-queue/package.json")), "lib", "lua");
  for (const file of readdirSync(luaDir).filter((f) => f.endsWith(".lua"))) {
    names.set(sha1(readFileSync(join(luaDir, file), "utf8")), `bee-queue:${file.slice(0, -4)}`);
  }
  return names;
}

/** Adds the scripts defined (`defineCommand`) on ioredis clients, e.g. the state store's. */
export function addClientScripts(names: Map<string, string>, clients: readonly Redis[]): void {
  for (const client of clients) {
    const set = (client as unknown as { scriptsSet?: Record<string, { sha?: string }> }).scriptsSet ?? {};
    for (const [name, script] of Object.entries(set)) if (script.sha && !names.has(script.sha)) names.set(script.sha, name);
  }
}

/** Calls and µs of Redis time per command from `INFO commandstats` (subcommands folded into their command). */
export interface Stat {
  calls: number;
  usec: number;
}

export async function commandStats(admin: Redis): Promise<Map<string, Stat>> {
  const stats = new Map<string, Stat>();
  for (const line of (await admin.info("commandstats")).split("\n")) {
    const match = /^cmdstat_([^:|]+)(?:\|[^:]+)?:calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (!match) continue;
    const name = match[1] as string;
    const stat = stats.get(name) ?? { calls: 0, usec: 0 };
    stat.calls += Number(match[2]);
    stat.usec += Number(match[3]);
    stats.set(name, stat);
  }
  return stats;
}

/** `after − before`, without the admin commands the benchmark itself sends. */
export function diff(after: ReadonlyMap<string, Stat>, before: ReadonlyMap<string, Stat>): Map<string, Stat> {
  const out = new Map<string, Stat>();
  for (const [name, stat] of after) {
    if (/^(info|config|monitor|flushall)$/.test(name)) continue;
    const calls = stat.calls - (before.get(name)?.calls ?? 0);
    if (calls > 0) out.set(name, { calls, usec: stat.usec - (before.get(name)?.usec ?? 0) });
  }
  return out;
}

export const total = (counts: ReadonlyMap<string, number>) => [...counts.values()].reduce((a, b) => a + b, 0);

/** A MONITOR connection counting top-level commands (by name; EVALSHA by script) and commands run inside scripts. */
export interface Monitor {
  /** Commands clients sent, by name (`evalsha:<script>`). */
  readonly sent: Map<string, number>;
  /** Commands scripts executed (MONITOR's `[0 lua]` lines), by name. */
  readonly inScripts: Map<string, number>;
  stop(): Promise<void>;
}

/**
 * Starts MONITOR on `port` over a raw socket (cheap to parse: one line per command). Lines
 * from the client at `ignoreAddr` (the benchmark's admin connection) are not counted.
 */
export async function startMonitor(port: number, scripts: ReadonlyMap<string, string>, ignoreAddrs: readonly string[]): Promise<Monitor> {
  const sent = new Map<string, number>();
  const inScripts = new Map<string, number>();
  const socket: Socket = connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  let rest = "";
  let ok: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    ok = resolve;
  });
  const line = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"(?: "([^"]*)")?/;
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    const lines = (rest + chunk).split("\r\n");
    rest = lines.pop() ?? "";
    for (const text of lines) {
      if (text === "+OK") {
        ok();
        continue;
      }
      const m = line.exec(text);
      if (!m) continue;
      const [, from, rawName, first] = m;
      const name = (rawName as string).toLowerCase();
      if (from === "lua") {
        inScripts.set(name, (inScripts.get(name) ?? 0) + 1);
        continue;
      }
      if (ignoreAddrs.includes(from as string)) continue;
      const key = name === "evalsha" ? `evalsha ${scripts.get(first ?? "") ?? (first ?? "?").slice(0, 8)}` : name;
      sent.set(key, (sent.get(key) ?? 0) + 1);
    }
  });
  socket.write("MONITOR\r\n");
  await started;
  return {
    sent,
    inScripts,
    async stop() {
      // Let the last lines arrive.
      await new Promise((r) => setTimeout(r, 200));
      socket.destroy();
    },
  };
}
