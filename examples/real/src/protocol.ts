import type { BackfillConfigInput } from "@superspreader/core";
import type { WorkStats } from "@superspreader/example-demo";

/** The environment variable that carries a child's arguments, as JSON. */
export const ARGS_VARIABLE = "SUPERSPREADER_EXAMPLE_ARGS";

/** What the parent tells a worker process (as JSON in {@link ARGS_VARIABLE}). */
export interface WorkerArgs {
  readonly databaseUrl: string;
  readonly redisUrl: string;
  /** BullMQ queue name shared by the parent and every worker. */
  readonly queueName: string;
  /** Key prefix of the Redis state store. */
  readonly storePrefix: string;
  /** The accounts table. */
  readonly table: string;
  /** Batches processed at once by this worker. */
  readonly concurrency: number;
  /** The definition's config (workers must define the backfill; the run's config is the stored one). */
  readonly config: BackfillConfigInput;
}

/** Messages a worker sends its parent over IPC. */
export type WorkerMessage =
  | { readonly type: "ready"; readonly pid: number }
  | { readonly type: "stopped"; readonly pid: number; readonly stats: WorkStats };

/** Messages the parent sends a worker. */
export type ParentMessage = { readonly type: "stop" };

/** A throwaway server the example can start. */
export type ServerKind = "postgres" | "redis";

/** Messages the servers host sends the example. */
export type HostMessage =
  | { readonly type: "started"; readonly postgres: string | null; readonly redis: string | null }
  | { readonly type: "failed"; readonly message: string };
