// What the quickstart's tests (and the release test, which runs the quickstart from installed
// tarballs) need around the program: a database and a Redis db of their own on the test
// servers, child processes with their output, and a check of every row.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { decrypt } from "../src/crypto.js";

/** A test server's URL from the global setup; a missing one fails the test rather than skipping it. */
export function serverUrl(name: "SUPERSPREADER_PG_URL" | "SUPERSPREADER_REDIS_URL"): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run through the root vitest config with SUPERSPREADER_SERVERS=redis,postgres`);
  return value;
}

/** A PostgreSQL database of its own on the test server. */
export interface TestDatabase {
  readonly url: string;
  /** Drops it (with FORCE, so connections left behind by a failed run do not block it). */
  drop(): Promise<void>;
}

/** Creates a fresh database `<prefix>_<random>` on the test server, so the program's table `messages` is its alone. */
export async function createDatabase(prefix: string): Promise<TestDatabase> {
  const server = serverUrl("SUPERSPREADER_PG_URL");
  const name = `${prefix}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: server });
      await client.connect();
      try {
        await client.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * A numbered Redis database of the test server for one test alone. The quickstart uses the
 * default queue name and key prefix, as a reader's app would, so tests that run it at the same
 * time keep apart by database number; other tests use db 0 with random prefixes.
 */
export interface TestRedis {
  readonly url: string;
  /** Removes every key of this database (it is this test's alone). */
  flush(): Promise<void>;
}

/** Redis database `index` (1–15) of the test server, emptied now. */
export async function redisDatabase(index: number): Promise<TestRedis> {
  const url = `${serverUrl("SUPERSPREADER_REDIS_URL").replace(/\/\d*$/, "")}/${index}`;
  const flush = async () => {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      await redis.flushdb();
    } finally {
      redis.disconnect();
    }
  };
  await flush();
  return { url, flush };
}

/** A child process whose output (stdout and stderr, interleaved) is kept. */
export interface Running {
  readonly child: ChildProcess;
  output(): string;
  /** Settles when it exits, with its exit code or signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `command` in `cwd` with `env` added to this process's environment. */
export function start(command: string, args: readonly string[], options: { cwd: string; env?: Record<string, string | undefined> }): Running {
  const child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
  return { child, output: () => output, exited };
}

/** Runs `command` to its end; throws with its output unless it exits 0 within `timeoutMs`. Returns the output. */
export async function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string | undefined>; timeoutMs: number },
): Promise<string> {
  const running = start(command, args, options);
  const timer = setTimeout(() => running.child.kill("SIGKILL"), options.timeoutMs);
  try {
    const { code, signal } = await running.exited;
    if (code !== 0) {
      const why = signal === "SIGKILL" ? `was killed after ${options.timeoutMs} ms` : `exited with ${code ?? signal}`;
      throw new Error(`${command} ${args.join(" ")} (in ${options.cwd}) ${why}:\n${running.output()}`);
    }
    return running.output();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `check` every 50 ms until it returns true; throws after `timeoutMs`, or as soon as
 * `running` exits first (with its output, which says why).
 */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, running?: Running): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | null = null;
  void running?.exited.then(({ code, signal }) => (exited = String(code ?? signal)));
  const output = () => (running ? `; its output:\n${running.output()}` : "");
  while (!(await check())) {
    if (exited !== null) throw new Error(`the program exited (${exited}) before ${what}${output()}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A message row as the quickstart's table holds it. */
export interface MessageRow {
  readonly id: string;
  readonly body: string;
  readonly keyVersion: number;
}

/** Every row of `messages`, by id. */
export async function readMessages(databaseUrl: string): Promise<MessageRow[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; body: string; key_version: number }>(
      "select id::text as id, body, key_version from messages order by id",
    );
    return rows.map((r) => ({ id: r.id, body: r.body, keyVersion: r.key_version }));
  } finally {
    await client.end();
  }
}

/** How many rows are on key 2 already. */
export async function countReencrypted(databaseUrl: string): Promise<number> {
  return (await readMessages(databaseUrl)).filter((row) => row.keyVersion === 2).length;
}

/** The plain text of every row, read with key 1 (right after seeding). */
export async function plainTexts(databaseUrl: string): Promise<Map<string, string>> {
  return new Map((await readMessages(databaseUrl)).map((row) => [row.id, decrypt(row.body, 1)]));
}

/** Rows that are not on key 2, or whose key-2 body is not their original text: empty when the backfill did its work. */
export async function wrongRows(databaseUrl: string, before: Map<string, string>): Promise<string[]> {
  const rows = await readMessages(databaseUrl);
  const wrong = rows.filter((row) => row.keyVersion !== 2 || decrypt(row.body, 2) !== before.get(row.id)).map((row) => row.id);
  if (rows.length !== before.size) wrong.push(`${before.size} rows before, ${rows.length} after`);
  return wrong;
}
