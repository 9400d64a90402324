import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** A message a child sent over IPC: `{ type, ... }`. */
export type ChildMessage = { readonly type: string } & Record<string, unknown>;

/** A forked TypeScript child process and what it said. */
export interface TsChild {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Resolves once the child sent `{ type: "ready" }`; rejects if it exits first. */
  readonly ready: Promise<void>;
  /** Resolves with the time (epoch ms) the child was seen gone. */
  readonly exited: Promise<number>;
  /** Resolves with the next message of this type sent from now on; rejects after `timeoutMs` or when the child exits. */
  next(type: string, timeoutMs: number): Promise<ChildMessage>;
  /** The messages of this type received so far. */
  received(type: string): ChildMessage[];
  /** SIGKILLs the child; resolves with the time it was seen gone. */
  kill(): Promise<number>;
}

/**
 * Forks a TypeScript file through tsx with workspace packages resolved to their
 * sources (the `@superspreader/source` condition), so no build is needed.
 *
 * @example
 * ```ts
 * const child = forkTs(new URL("./fixtures/worker.ts", import.meta.url), ["worker"]);
 * await child.ready;
 * await child.kill();
 * ```
 */
export function forkTs(file: URL, args: readonly string[]): TsChild {
  const child = fork(fileURLToPath(file), [...args], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    execArgv: ["--import", "tsx", "--conditions", "@superspreader/source"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const messages: ChildMessage[] = [];
  const waiters = new Set<(message: ChildMessage | null) => void>();
  const exited = new Promise<number>((resolve) =>
    child.once("exit", () => {
      for (const waiter of waiters) waiter(null);
      resolve(Date.now());
    }),
  );
  child.on("message", (raw) => {
    const message = raw as ChildMessage;
    messages.push(message);
    for (const waiter of waiters) waiter(message);
  });

  const next = (type: string, timeoutMs: number): Promise<ChildMessage> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => settle(null, `no "${type}" message within ${timeoutMs} ms`), timeoutMs);
      const settle = (message: ChildMessage | null, failure?: string) => {
        if (message !== null && message.type !== type) return;
        clearTimeout(timer);
        waiters.delete(settle);
        if (message !== null) resolve(message);
        else reject(new Error(`child ${child.pid} (${args[0] ?? ""}): ${failure ?? `exited while waiting for "${type}"`}`));
      };
      if (child.exitCode !== null || child.signalCode !== null) settle(null);
      else waiters.add(settle);
    });

  const ready = messages.some((m) => m.type === "ready") ? Promise.resolve() : next("ready", 60_000).then(() => undefined);
  ready.catch(() => {}); // observed by whoever awaits it; a child killed before it was ready is not an error here
  return {
    process: child,
    pid: child.pid ?? -1,
    ready,
    exited,
    next,
    received: (type) => messages.filter((m) => m.type === type),
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      return exited;
    },
  };
}
