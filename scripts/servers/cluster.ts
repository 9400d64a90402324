/**
 * A real Redis Cluster on 127.0.0.1 for tests: N primaries with one replica each, every node a
 * redis-server in cluster mode on a free port in a temporary directory, joined with
 * `redis-cli --cluster create`. Each test file that needs one starts its own (the suite's shared
 * redis-server stays a single node) and stops it in `afterAll`. A missing binary is an error,
 * never a skip.
 *
 * It talks to the nodes through redis-cli only, so scripts/ needs no Redis client package.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, requireBinary, stopChild } from "./servers.js";

const run = promisify(execFile);

/*
 * Small helpers servers.ts has too but does not export. `until` differs on purpose: a node that is
 * not up yet makes redis-cli fail, which is "not yet" here, not an error.
 */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`[superspreader tests] ${what} did not happen within ${timeoutMs} ms`, { cause: last });
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One redis-server of the cluster. */
export interface ClusterNode {
  readonly host: "127.0.0.1";
  readonly port: number;
  /** The node's cluster id (40 hex characters), from `CLUSTER MYID`. */
  readonly id: string;
}

/** What {@link RedisCluster.killPrimary} measured, in ms from the SIGKILL. */
export interface Failover {
  /** The primary that was killed. */
  readonly killed: ClusterNode;
  /** Its replica, now the primary of its slots. */
  readonly promoted: ClusterNode;
  /** Until the replica answered `ROLE` as master. */
  readonly promotedAfterMs: number;
  /** Until every live node reported `cluster_state:ok` again. */
  readonly okAfterMs: number;
}

export interface RedisCluster {
  /** Every node, primaries first (as created); give them all to an ioredis `Cluster` as startup nodes. */
  readonly nodes: readonly ClusterNode[];
  /** The nodes alive now. */
  live(): ClusterNode[];
  /** The live primary serving `slot` (0–16383), from `CLUSTER SHARDS` of a live node. */
  primaryOf(slot: number): Promise<ClusterNode>;
  /** The hash slot of `key` (`CLUSTER KEYSLOT`). */
  keySlot(key: string): Promise<number>;
  /** Resolves once every live replica has received everything its primary had when this was called. */
  replicated(timeoutMs?: number): Promise<void>;
  /**
   * SIGKILLs the primary `node` (no shutdown: what a crashed machine does) and resolves once its
   * replica took over its slots and every live node reports `cluster_state:ok`. The killed node
   * stays down.
   */
  killPrimary(node: ClusterNode, timeoutMs?: number): Promise<Failover>;
  /** Stops every node and removes their directories. */
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** @default 3 */
  readonly primaries?: number;
  /**
   * `cluster-node-timeout`: how long a primary may be unreachable before it is failed over. Small
   * in tests so a failover takes seconds; Redis's default is 15000.
   * @default 2000
   */
  readonly nodeTimeoutMs?: number;
}

interface Process {
  readonly node: ClusterNode;
  readonly child: ChildProcess;
  readonly dir: string;
}

/** Runs redis-cli against one node; resolves with its stdout. */
async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], { timeout: 10_000 });
  return stdout;
}

async function spawnNode(nodeTimeoutMs: number): Promise<Process> {
  const dir = mkdtempSync(join(tmpdir(), "ss-redis-cluster-"));
  const port = await freePort();
  const child = spawn(
    "redis-server",
    [
      "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no",
      "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", String(nodeTimeoutMs),
      // Without it a node reports an empty IP in CLUSTER SLOTS and clients cannot follow it.
      "--cluster-announce-ip", "127.0.0.1",
      // A replica may always take over, however long it was cut off (the default lets a replica that
      // lost its link 10 node timeouts ago refuse, which would make a test depend on timing).
      "--cluster-replica-validity-factor", "0",
      // Full syncs of a new replica start at once, not after the default 5 s wait for more replicas.
      "--repl-diskless-sync-delay", "0",
      // As the suite's single redis-server: BullMQ's blocked waits wake every 10 ms, not 100.
      "--hz", "100",
    ],
    { stdio: "ignore" },
  );
  let id = "";
  try {
    await until(`redis-server (cluster mode) on port ${port} to start`, async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
      id = (await cli(port, "CLUSTER", "MYID")).trim();
      return /^[0-9a-f]{40}$/.test(id);
    });
  } catch (error) {
    await stopChild(child, dir);
    throw error;
  }
  return { node: { host: "127.0.0.1", port, id }, child, dir };
}

/** `INFO <section>` of a node as a map of its `field:value` lines. */
async function info(port: number, section: string): Promise<Map<string, string>> {
  const fields = new Map<string, string>();
  for (const line of (await cli(port, section === "cluster" ? "CLUSTER" : "INFO", section === "cluster" ? "INFO" : section)).split(/\r?\n/)) {
    const at = line.indexOf(":");
    if (at > 0) fields.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return fields;
}

/** `CLUSTER NODES` as a node sees it: id, flags, primary id ("-" for a primary) and slot ranges of every node. */
async function clusterNodes(port: number) {
  return (await cli(port, "CLUSTER", "NODES"))
    .trim()
    .split(/\r?\n/)
    .map((line) => {
      const [id = "", address = "", flags = "", primaryId = "-", , , , , ...slots] = line.split(" ");
      return { id, port: Number(address.split("@")[0]?.split(":").pop()), flags: flags.split(","), primaryId, slots };
    });
}

const BAD_FLAGS = new Set(["handshake", "noaddr", "fail?", "fail"]);

const clusterOk = async (port: number) => (await info(port, "cluster")).get("cluster_state") === "ok";

/**
 * Starts `primaries` primaries and as many replicas, creates the cluster (slots split evenly, one
 * replica per primary) and resolves once every node reports `cluster_state:ok`, knows all the
 * others, and every replica's link to its primary is up (so a failover loses nothing written
 * before the test began).
 *
 * @example
 * ```ts
 * const cluster = await startRedisCluster();
 * const client = new Cluster(cluster.nodes.map(({ host, port }) => ({ host, port })));
 * const failover = await cluster.killPrimary(await cluster.primaryOf(0));
 * await cluster.stop();
 * ```
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  requireBinary("redis-server", "redis-server");
  requireBinary("redis-cli", "redis-tools");
  const primaries = options.primaries ?? 3;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000;
  if (!Number.isInteger(primaries) || primaries < 3) throw new Error(`[superspreader tests] a Redis Cluster needs at least 3 primaries, got ${primaries}`);

  const started = await Promise.allSettled(Array.from({ length: primaries * 2 }, () => spawnNode(nodeTimeoutMs)));
  const processes = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const stop = async () => {
    await Promise.allSettled(processes.map((p) => stopChild(p.child, p.dir)));
  };
  const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) {
    await stop();
    throw failed.reason;
  }
  const dead = new Set<number>();
  const live = () => processes.filter((p) => !dead.has(p.node.port) && p.child.exitCode === null && p.child.signalCode === null);

  try {
    // redis-cli makes the first `primaries` addresses primaries and pairs each of the rest with one of them.
    await run("redis-cli", ["--cluster", "create", ...processes.map((p) => `127.0.0.1:${p.node.port}`), "--cluster-replicas", "1", "--cluster-yes"], {
      timeout: 60_000,
    });
    // redis-cli returns once the nodes met; replicas switch roles a moment later, and only once every
    // node sees the final layout and every replica is in sync is a failover meaningful.
    await until(
      "the Redis Cluster (cluster_state:ok, the same layout on every node, replicas in sync)",
      async () => {
        for (const p of processes) {
          const cluster = await info(p.node.port, "cluster");
          if (cluster.get("cluster_state") !== "ok" || cluster.get("cluster_known_nodes") !== String(processes.length)) return false;
          const view = await clusterNodes(p.node.port);
          // A node still in handshake, or not yet known by its address, shows port 0: clients would
          // take it for 127.0.0.1:6379.
          if (view.some((e) => !processes.some((q) => q.node.id === e.id && q.node.port === e.port) || e.flags.some((f) => BAD_FLAGS.has(f)))) return false;
          if (view.filter((e) => e.flags.includes("slave")).length !== primaries) return false;
          if (view.filter((e) => e.flags.includes("master") && e.slots.length > 0).length !== primaries) return false;
          const replication = await info(p.node.port, "replication");
          if (replication.get("role") === "slave" && replication.get("master_link_status") !== "up") return false;
        }
        return true;
      },
      60_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }

  const anyLive = (): Process => {
    const p = live()[0];
    if (!p) throw new Error("[superspreader tests] no node of the Redis Cluster is alive");
    return p;
  };
  const byId = (id: string): ClusterNode => {
    const p = processes.find((q) => q.node.id === id);
    if (!p) throw new Error(`[superspreader tests] the Redis Cluster has no node ${id}`);
    return p.node;
  };

  return {
    nodes: processes.map((p) => p.node),
    live: () => live().map((p) => p.node),
    async primaryOf(slot) {
      for (const entry of await clusterNodes(anyLive().node.port)) {
        if (!entry.flags.includes("master") || entry.flags.includes("fail")) continue;
        const serves = entry.slots.some((range) => {
          const [from = "", to = from] = range.split("-");
          return Number(from) <= slot && slot <= Number(to);
        });
        if (serves) return byId(entry.id);
      }
      throw new Error(`[superspreader tests] no live primary serves slot ${slot}`);
    },
    async keySlot(key) {
      return Number((await cli(anyLive().node.port, "CLUSTER", "KEYSLOT", key)).trim());
    },
    async replicated(timeoutMs = 10_000) {
      const view = await clusterNodes(anyLive().node.port);
      const targets = await Promise.all(
        view
          .filter((e) => e.flags.includes("slave") && !e.flags.includes("fail"))
          .map(async (e) => ({ replica: byId(e.id), offset: Number((await info(byId(e.primaryId).port, "replication")).get("master_repl_offset")) })),
      );
      for (const { replica, offset } of targets) {
        await until(
          `replica ${replica.port} to catch up with offset ${offset}`,
          async () => Number((await info(replica.port, "replication")).get("slave_repl_offset")) >= offset,
          timeoutMs,
        );
      }
    },
    async killPrimary(node, timeoutMs = 30_000) {
      const victim = processes.find((p) => p.node.port === node.port);
      if (!victim || dead.has(node.port)) throw new Error(`[superspreader tests] node ${node.port} is not a live node of the cluster`);
      const replicaEntry = (await clusterNodes(anyLive().node.port)).find((entry) => entry.primaryId === node.id && !entry.flags.includes("fail"));
      if (!replicaEntry) throw new Error(`[superspreader tests] node ${node.port} is not a primary with a live replica`);
      const replica = byId(replicaEntry.id);

      const exited = new Promise<void>((resolve) => victim.child.once("exit", () => resolve()));
      const killedAt = Date.now();
      victim.child.kill("SIGKILL");
      await exited;
      dead.add(node.port);

      await until(`node ${replica.port} to take over from ${node.port}`, async () => (await cli(replica.port, "ROLE")).startsWith("master"), timeoutMs);
      const promotedAfterMs = Date.now() - killedAt;
      await until("cluster_state:ok on every live node after the failover", async () => (await Promise.all(live().map((p) => clusterOk(p.node.port)))).every(Boolean), timeoutMs);
      return { killed: node, promoted: replica, promotedAfterMs, okAfterMs: Date.now() - killedAt };
    },
    stop,
  };
}
