/**
 * Starts real redis-server, PostgreSQL and MariaDB on 127.0.0.1, each on a free
 * port in a temporary directory, and stops them again. Used by the test suite's
 * global setup and by the examples/bench scripts. A missing binary is an error,
 * never a skip: `npm test` installs them first (scripts/ensure-servers.sh).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, chownSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RunningServer {
  readonly kind: "redis" | "postgres" | "mariadb";
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const PG_BIN = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"].find((d) =>
  existsSync(join(d, "postgres")),
);

function which(binary: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/bin", "/sbin"])) {
    const full = join(dir, binary);
    if (dir && existsSync(full)) return full;
  }
  return null;
}

/** The binary's path, or an error saying which Debian package installs it. */
export function requireBinary(binary: string, pkg: string): string {
  const found = which(binary);
  if (!found) {
    throw new Error(
      `[superspreader tests] ${binary} not found. Install it with: apt-get install -y ${pkg} (npm test does this when run as root).`,
    );
  }
  return found;
}

/** A free TCP port on 127.0.0.1 (asks the kernel, then releases it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`[superspreader tests] ${what} did not become ready within ${timeoutMs} ms`);
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

const isRoot = typeof process.getuid === "function" && process.getuid() === 0;

export async function startRedis(): Promise<RunningServer> {
  const bin = requireBinary("redis-server", "redis-server");
  const dir = mkdtempSync(join(tmpdir(), "ss-redis-"));
  const port = await freePort();
  const child = spawn(
    bin,
    ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no", "--hz", "100"],
    { stdio: "ignore" },
  );
  await waitFor(`redis-server on port ${port}`, () => tcpOpen(port));
  return {
    kind: "redis",
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => stopChild(child, dir),
  };
}

export async function startPostgres(): Promise<RunningServer> {
  if (!PG_BIN) throw new Error("[superspreader tests] PostgreSQL binaries not found. Install them with: apt-get install -y postgresql");
  const dir = mkdtempSync(join(tmpdir(), "ss-pg-"));
  const port = await freePort();
  const asPostgres = (cmd: string, args: string[]) =>
    isRoot ? execFileSync("runuser", ["-u", "postgres", "--", cmd, ...args], { stdio: "pipe" }) : execFileSync(cmd, args, { stdio: "pipe" });
  if (isRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(dir, uid, gid);
  }
  asPostgres(join(PG_BIN, "initdb"), ["-D", join(dir, "data"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  const args = [
    "-D", join(dir, "data"), "-p", String(port), "-k", dir,
    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
    "-c", "max_connections=200",
  ];
  const child = isRoot
    ? spawn("runuser", ["-u", "postgres", "--", join(PG_BIN, "postgres"), ...args], { stdio: "ignore" })
    : spawn(join(PG_BIN, "postgres"), args, { stdio: "ignore" });
  await waitFor(`PostgreSQL on port ${port}`, () => {
    try {
      execFileSync(join(PG_BIN, "pg_isready"), ["-h", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  });
  return {
    kind: "postgres",
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: () => stopChild(child, dir),
  };
}

export async function startMariaDB(): Promise<RunningServer> {
  const installDb = requireBinary("mariadb-install-db", "mariadb-server");
  const mariadbd = requireBinary("mariadbd", "mariadb-server");
  const client = requireBinary("mariadb", "mariadb-client");
  const dir = mkdtempSync(join(tmpdir(), "ss-maria-"));
  const port = await freePort();
  // A temporary directory of its own: with the shared /tmp, two installs at once (or a cleanup of /tmp)
  // can take the bootstrap's temporary tables away ("Unknown table 'mysql.tmp_user_sys'").
  const tmp = join(dir, "tmp");
  mkdirSync(tmp);
  execFileSync(
    installDb,
    ["--user=root", `--datadir=${join(dir, "data")}`, "--auth-root-authentication-method=normal", "--skip-test-db", `--tmpdir=${tmp}`],
    { stdio: "pipe" },
  );
  const child = spawn(
    mariadbd,
    [
      "--no-defaults",
      "--user=root",
      `--datadir=${join(dir, "data")}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--socket=${join(dir, "sock")}`,
      `--pid-file=${join(dir, "pid")}`,
      `--tmpdir=${tmp}`,
      "--innodb-flush-log-at-trx-commit=0",
      "--skip-log-bin",
      "--max-connections=300",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor(
    `MariaDB on port ${port}`,
    () => {
      if (child.exitCode !== null) throw new Error(`[superspreader tests] mariadbd exited: ${stderr.slice(-2000)}`);
      try {
        execFileSync(client, ["--protocol=tcp", "-h127.0.0.1", `-P${port}`, "-uroot", "-e", "CREATE DATABASE IF NOT EXISTS test"], {
          stdio: "ignore",
        });
        return true;
      } catch {
        return false;
      }
    },
    60_000,
  );
  return {
    kind: "mariadb",
    port,
    url: `mysql://root@127.0.0.1:${port}/test`,
    stop: () => stopChild(child, dir),
  };
}

/** SIGTERM (SIGKILL after 10 s) unless already gone, then removes the server's directory. */
export async function stopChild(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Which servers to start: SUPERSPREADER_SERVERS=redis,postgres,mariadb (default: all). */
export function requestedServers(): Set<RunningServer["kind"]> {
  const raw = process.env.SUPERSPREADER_SERVERS ?? "redis,postgres,mariadb";
  const kinds = new Set<RunningServer["kind"]>();
  for (const part of raw.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (part === "redis" || part === "postgres" || part === "mariadb") kinds.add(part);
    else if (part !== "none") throw new Error(`[superspreader tests] SUPERSPREADER_SERVERS: unknown server ${JSON.stringify(part)}`);
  }
  return kinds;
}

