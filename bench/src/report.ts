import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) throw new Error("median of nothing");
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Rounds to `digits` decimals (for JSON and printing). */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Milliseconds `run` takes (wall clock). */
export async function timeMs(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

/** Writes `bench/results/<file>.json` with the machine it ran on and the command that reruns it; returns its path. */
export function writeResult(file: string, script: string, result: Record<string, unknown>): string {
  const dir = fileURLToPath(new URL("../results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const path = `${dir}${file}.json`;
  const machine = { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "?", memGiB: round(totalmem() / 2 ** 30, 1) };
  const body = { benchmark: file, at: new Date().toISOString(), machine, command: `pnpm --filter @superspreader/bench ${script}`, ...result };
  writeFileSync(path, `${JSON.stringify(body, null, 2)}\n`);
  return path;
}

/** A random suffix for queue names and key prefixes. */
export function suffix(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}
